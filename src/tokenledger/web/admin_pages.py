"""Admin pages: Accounts, Keys and the Audit log. Every route needs the admin role,
read from the database on this very request (``PageAdmin``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from tokenledger.auth import accounts, audit, passwords, sessions
from tokenledger.auth import keys as api_keys
from tokenledger.clock import now_us
from tokenledger.localdays import zone
from tokenledger.web import flash
from tokenledger.web.auth_pages import session_policy
from tokenledger.web.context import AppContext
from tokenledger.web.deps import Ctx, PageAdmin, Viewer, client_address
from tokenledger.web.error_pages import error_page
from tokenledger.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)

FormText = Annotated[str, Form()]
AUDIT_PAGE_SIZE = 50
_NOTICES = {
    "created": "The account is created. Tell its owner the password through a safe channel.",
    "profile": "The display name is saved.",
    "role": "The role is changed. It applies to open sessions at once.",
    "disabled": "The account is disabled and signed out everywhere.",
    "enabled": "The account is enabled.",
    "password": "The password is reset and the account signed out everywhere.",
    "sessions": "The account is signed out everywhere.",
    "revoked": "The key is revoked. Requests with it are refused from now on.",
}


def _time_formatter(ctx: AppContext) -> Callable[[int | None], str]:
    tz = zone(ctx.settings.timezone)

    def when(us: int | None) -> str:
        if us is None:
            return ""
        moment = datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(tz)
        return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or tz.key)

    return when


def _page(
    request: Request,
    ctx: Ctx,
    name: str,
    section: str,
    *,
    status: int = 200,
    done: str | None = None,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    context = {
        "nav_section": section,
        "when": _time_formatter(ctx),
        "notice": _NOTICES.get(done or ""),
        **values,
    }
    return render(request, name, context, status_code=status, headers=headers)


def _changed(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def _no_account(request: Request) -> Response:
    return error_page(
        request, status=404, title="No such account", message="This account does not exist."
    )


# Accounts


def _accounts_page(
    request: Request, ctx: Ctx, *, status: int = 200, done: str | None = None, **values: Any
) -> Response:
    form = {"email": "", "display_name": "", "role": "viewer", **values.pop("form", {})}
    return _page(
        request,
        ctx,
        "admin/accounts.html",
        "accounts",
        status=status,
        done=done,
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
    return _changed(f"/admin/accounts/{account.id}", "created")


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
    return _page(
        request,
        ctx,
        "admin/account.html",
        "accounts",
        status=status,
        done=done,
        account=account,
        is_self=account.id == admin.account_id,
        active_sessions=active,
        roles=accounts.ROLES,
        min_password=passwords.MIN_LENGTH,
        **values,
    )


@router.get("/accounts/{account_id}")
def account_page(
    request: Request, ctx: Ctx, admin: PageAdmin, account_id: int, done: str | None = None
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
    return _changed(f"/admin/accounts/{account_id}", done)


@router.post("/accounts/{account_id}")
def account_update(
    request: Request, ctx: Ctx, admin: PageAdmin, account_id: int, display_name: FormText = ""
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
    request: Request, ctx: Ctx, admin: PageAdmin, account_id: int, role: FormText = ""
) -> Response:
    return _account_change(
        request, ctx, admin, account_id, accounts.set_role, "role", "role", role=role
    )


@router.post("/accounts/{account_id}/disable")
def account_disable(request: Request, ctx: Ctx, admin: PageAdmin, account_id: int) -> Response:
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
def account_enable(request: Request, ctx: Ctx, admin: PageAdmin, account_id: int) -> Response:
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
    account_id: int,
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
def account_end_sessions(request: Request, ctx: Ctx, admin: PageAdmin, account_id: int) -> Response:
    return _account_change(
        request, ctx, admin, account_id, accounts.end_sessions, "sessions", "access"
    )


# Keys


def _keys_page(
    request: Request,
    ctx: Ctx,
    *,
    status: int = 200,
    done: str | None = None,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    form = {"name": "", "scope": "ingest", **values.pop("form", {})}
    return _page(
        request,
        ctx,
        "admin/keys.html",
        "keys",
        status=status,
        done=done,
        headers=headers,
        keys=list(reversed(api_keys.list_keys(ctx.db))),
        scopes=api_keys.SCOPES,
        scope_uses=api_keys.SCOPE_USES,
        form=form,
        **values,
    )


@router.get("/keys")
def keys_page(request: Request, ctx: Ctx, _admin: PageAdmin, done: str | None = None) -> Response:
    """The keys; after a creation, also the new key's secret, this once (a one-time
    flash: never in a URL, gone on reload)."""
    new_key = flash.take(request, ctx.db, now_us=now_us(ctx.clock))
    made = new_key["key_id"] if new_key else None
    created = next((key for key in api_keys.list_keys(ctx.db) if key.id == made), None)
    if new_key is None or created is None:
        response = _keys_page(request, ctx, done=done)
    else:
        secret = new_key["secret"]
        no_store = {"Cache-Control": "no-store"}
        response = _keys_page(request, ctx, created=created, secret=secret, headers=no_store)
    flash.forget(request, response)
    return response


@router.post("/keys")
def key_create(
    request: Request, ctx: Ctx, admin: PageAdmin, name: FormText = "", scope: FormText = ""
) -> Response:
    """Create a key, then redirect to the keys page, which shows its secret once
    (post/redirect/get: a reload never creates a second key)."""
    try:
        key, secret = api_keys.create_key(
            ctx.db,
            name=name,
            scope=scope,
            now_us=now_us(ctx.clock),
            actor=admin.email,
            client=client_address(request),
        )
    except ValueError as exc:
        form = {"name": name[:255], "scope": scope}
        return _keys_page(request, ctx, status=400, error=str(exc), form=form)
    response = RedirectResponse("/admin/keys", status_code=303)
    message = {"key_id": key.id, "secret": secret}
    flash.put(request, response, ctx.db, message, now_us=now_us(ctx.clock))
    return response


@router.post("/keys/{key_id}/revoke")
def key_revoke(request: Request, ctx: Ctx, admin: PageAdmin, key_id: int) -> Response:
    try:
        api_keys.revoke_key(
            ctx.db,
            key_id,
            now_us=now_us(ctx.clock),
            actor=admin.email,
            client=client_address(request),
        )
    except LookupError:
        return error_page(
            request, status=404, title="No such key", message="This key does not exist."
        )
    return _changed("/admin/keys", "revoked")


# Audit log


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: Ctx,
    _admin: PageAdmin,
    action: Annotated[str, Query(max_length=64)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    action = action if action in audit.ACTIONS else ""
    found = audit.entries(
        ctx.db, action=action, before_id=before, after_id=after, limit=AUDIT_PAGE_SIZE
    )
    newer = older = None
    if found:
        if audit.has_entries(ctx.db, action=action, after_id=found[0].id):
            newer = found[0].id
        if audit.has_entries(ctx.db, action=action, before_id=found[-1].id):
            older = found[-1].id
    return _page(
        request,
        ctx,
        "admin/audit.html",
        "audit",
        entries=found,
        actions=audit.ACTIONS,
        action=action,
        newer=newer,
        older=older,
    )
