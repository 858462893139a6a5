"""Dependencies shared by routes: the app context and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tokenledger.auth.keys import ApiKey, find_key, touch_key
from tokenledger.clock import now_us
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.web.context import AppContext
from tokenledger.web.errors import ApiError


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_key(scope: str) -> Callable[[Request, AppContext], ApiKey]:
    """A dependency accepting only an active API key with ``scope``."""

    def dependency(request: Request, ctx: Ctx) -> ApiKey:
        token = _bearer_token(request)
        challenge = {"WWW-Authenticate": 'Bearer realm="tokenledger"'}
        if token is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing API key: send 'Authorization: Bearer <key>'",
                headers=challenge,
            )
        key = find_key(ctx.db, token)
        if key is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=challenge)
        if key.scope != scope:
            raise ApiError(
                403,
                "insufficient_scope",
                f"this key has scope {key.scope!r}; this endpoint needs {scope!r}",
            )
        with suppress(DatabaseUnavailable):  # "last used" must never fail a request
            touch_key(ctx.db, key, now_us=now_us(ctx.clock))
        return key

    return dependency


IngestKey = Annotated[ApiKey, Depends(require_key("ingest"))]
ReadKey = Annotated[ApiKey, Depends(require_key("report:read"))]


@dataclass(frozen=True)
class Viewer:
    """A signed-in console account (set on ``request.state.viewer`` by the session
    layer; the role and enabled flag are read from the database on every request)."""

    account_id: int
    email: str
    display_name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class SignInRequired(Exception):
    """A page needs a signed-in account: redirect to the sign-in page."""


def current_viewer(request: Request) -> Viewer | None:
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    return viewer


def require_page_viewer(request: Request) -> Viewer:
    viewer = current_viewer(request)
    if viewer is None:
        raise SignInRequired()
    return viewer


PageViewer = Annotated[Viewer, Depends(require_page_viewer)]
