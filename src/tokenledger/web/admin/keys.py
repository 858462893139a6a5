"""Admin > Keys: the API keys, a new key (shown once), revoking one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from tokenledger.auth import keys as api_keys
from tokenledger.clock import now_us
from tokenledger.web import flash
from tokenledger.web.admin.common import FormText, admin_page, changed
from tokenledger.web.deps import Ctx, PageAdmin, RowId, client_address
from tokenledger.web.error_pages import error_page

router = APIRouter(prefix="/admin", include_in_schema=False)

NOTICES = {
    "revoked": "The key is revoked. Requests with it are refused from now on.",
}


def _keys_page(
    request: Request,
    ctx: Ctx,
    *,
    status: int = 200,
    done: str | None = None,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    form = {"name": "", "scope": "ingest", "user_id": "", **values.pop("form", {})}
    keys = list(reversed(api_keys.list_keys(ctx.db)))
    return admin_page(
        request,
        ctx,
        "admin/keys.html",
        "keys",
        status=status,
        notice=NOTICES.get(done or ""),
        headers=headers,
        keys=keys,
        people=api_keys.key_people(ctx.db, keys),
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
    request: Request,
    ctx: Ctx,
    admin: PageAdmin,
    name: FormText = "",
    scope: FormText = "",
    user_id: FormText = "",
) -> Response:
    """Create a key, then redirect to the keys page, which shows its secret once
    (post/redirect/get: a reload never creates a second key). A gateway key names its
    person (``user_id``); its name defaults to that id."""
    try:
        key, secret = api_keys.create_key(
            ctx.db,
            name=name,
            scope=scope,
            user_id=user_id or None,
            now_us=now_us(ctx.clock),
            actor=admin.email,
            client=client_address(request),
        )
    except ValueError as exc:
        form = {"name": name[:255], "scope": scope, "user_id": user_id[:255]}
        return _keys_page(request, ctx, status=400, error=str(exc), form=form)
    response = RedirectResponse("/admin/keys", status_code=303)
    message = {"key_id": key.id, "secret": secret}
    flash.put(request, response, ctx.db, message, now_us=now_us(ctx.clock))
    return response


@router.post("/keys/{key_id}/revoke")
def key_revoke(request: Request, ctx: Ctx, admin: PageAdmin, key_id: RowId) -> Response:
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
    return changed("/admin/keys", "revoked")
