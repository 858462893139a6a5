"""Admin > Accounts: the list, a new account, and each account's page (profile, role,
access, password, sessions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tokenledger.auth import accounts, passwords, sessions
from tokenledger.clock import now_us
from tokenledger.web.admin.common import FormText, admin_page, changed
from tokenledger.web.auth_pages import session_policy
from tokenledger.web.deps import Ctx, PageAdmin, RowId, Viewer, client_address
from tokenledger.web.error_pages import error_page

router = APIRouter(prefix="/admin", include_in_schema=False)

NOTICES = {
    "created": "The account is created. Tell its owner the password through a safe channel.",
    "profile": "The display name is saved.",
    "role": "The role is changed. It applies to open sessions at once.",
    "disabled": "The account is disabled and signed out everywhere.",
    "enabled": "The account is enabled.",
    "password": "The password is reset and the account signed out everywhere.",
    "sessions": "The account is signed out everywhere.",
}


def _no_account(request: Request) -> Response:
    return error_page(
        request, status=404, title="No such account", message="This account does not exist."
    )


def _accounts_page(request: Request, ctx: Ctx, *, status: int = 200, **values: Any) -> Response:
    form = {"email": "", "display_name": "", "role": "viewer", **values.pop("form", {})}
    return admin_page(
        request,
        ctx,
        "admin/accounts.html",
        "accounts",
        status=status,
        accounts=accounts.list_accounts(ctx.db),
        roles=accounts.ROLES,
        min_password=passwords.MIN_LENGTH,
        form=form,
        **values,
    )


@router.get("/accounts")
def accounts_page(request: Request, ctx: Ctx, _admin: PageAdmin) -> Response:
    return _accounts_page(request, ctx)


@router.post("/accounts")
def account_create(
    request: Request,
    ctx: Ctx,
    admin: PageAdmin,
    email: FormText = "",
    display_name: FormText = "",
    role: FormText = "viewer",
    password: FormText = "",
) -> Response:
    try:
        account = accounts.create_account(
            ctx.db,
            email=email,
            password=password,
            role=role,
            display_name=display_name,
            actor=admin.email,
            now_us=now_us(ctx.clock),
            client=client_address(request),
        )
    except ValueError as exc:  # AccountError, PasswordRejected
        form = {"email": email[:320], "display_name": display_name[:255], "role": role}
        return _accounts_page(request, ctx, status=400, error=str(exc), form=form)
    return changed(f"/admin/accounts/{account.id}", "created")


def _account_page(
    request: Request,
    ctx: Ctx,
    admin: Viewer,
    account: accounts.Account,
    *,
    status: int = 200,
    done: str | None = None,
    **values: Any,
) -> Response:
    active = sessions.count_active(
        ctx.db, account.id, now_us=now_us(ctx.clock), policy=session_policy(ctx.settings)
    )
    return admin_page(
        request,
        ctx,
        "admin/account.html",
        "accounts",
        status=status,
        notice=NOTICES.get(done or ""),
        account=account,
        is_self=account.id == admin.account_id,
        active_sessions=active,
        roles=accounts.ROLES,
        min_password=passwords.MIN_LENGTH,
        **values,
    )


@router.get("/accounts/{account_id}")
def account_page(
    request: Request, ctx: Ctx, admin: PageAdmin, account_id: RowId, done: str | None = None
) -> Response:
    account = accounts.get_account(ctx.db, account_id)
    if account is None:
        return _no_account(request)
    return _account_page(request, ctx, admin, account, done=done)


def _account_change(
    request: Request,
    ctx: Ctx,
    admin: Viewer,
    account_id: int,
    change: Callable[..., accounts.Account],
    done: str,
    form: str,
    **arguments: Any,
) -> Response:
    """Apply ``change`` to the account; on a refusal, show the page with the reason
    next to ``form`` (profile, role, access or password)."""
    account = accounts.get_account(ctx.db, account_id)
    if account is None:
        return _no_account(request)
    try:
        change(
            ctx.db,
            account_id,
            actor=admin.email,
            now_us=now_us(ctx.clock),
            client=client_address(request),
            **arguments,
        )
    except ValueError as exc:  # AccountError, PasswordRejected
        return _account_page(request, ctx, admin, account, status=400, errors={form: str(exc)})
    return changed(f"/admin/accounts/{account_id}", done)


@router.post("/accounts/{account_id}")
def account_update(
    request: Request, ctx: Ctx, admin: PageAdmin, account_id: RowId, display_name: FormText = ""
) -> Response:
    """The profile form: the display name only. A ``role`` field sent here is ignored;
    roles change through the role control (the ``/role`` route)."""
    return _account_change(
        request,
        ctx,
        admin,
        account_id,
        accounts.update_profile,
        "profile",
        "profile",
        display_name=display_name,
    )


@router.post("/accounts/{account_id}/role")
def account_set_role(
    request: Request, ctx: Ctx, admin: PageAdmin, account_id: RowId, role: FormText = ""
) -> Response:
    return _account_change(
        request, ctx, admin, account_id, accounts.set_role, "role", "role", role=role
    )


@router.post("/accounts/{account_id}/disable")
def account_disable(request: Request, ctx: Ctx, admin: PageAdmin, account_id: RowId) -> Response:
    return _account_change(
        request,
        ctx,
        admin,
        account_id,
        accounts.set_enabled,
        "disabled",
        "access",
        enabled=False,
    )


@router.post("/accounts/{account_id}/enable")
def account_enable(request: Request, ctx: Ctx, admin: PageAdmin, account_id: RowId) -> Response:
    return _account_change(
        request,
        ctx,
        admin,
        account_id,
        accounts.set_enabled,
        "enabled",
        "access",
        enabled=True,
    )


@router.post("/accounts/{account_id}/password")
def account_reset_password(
    request: Request,
    ctx: Ctx,
    admin: PageAdmin,
    account_id: RowId,
    new_password: FormText = "",
    confirm_password: FormText = "",
) -> Response:
    if new_password != confirm_password:
        account = accounts.get_account(ctx.db, account_id)
        if account is None:
            return _no_account(request)
        return _account_page(
            request,
            ctx,
            admin,
            account,
            status=400,
            errors={"password": "The passwords do not match."},
        )
    return _account_change(
        request,
        ctx,
        admin,
        account_id,
        accounts.set_password,
        "password",
        "password",
        password=new_password,
    )


@router.post("/accounts/{account_id}/sessions/revoke")
def account_end_sessions(
    request: Request, ctx: Ctx, admin: PageAdmin, account_id: RowId
) -> Response:
    return _account_change(
        request, ctx, admin, account_id, accounts.end_sessions, "sessions", "access"
    )
