"""Dependencies shared by routes: the app context and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import Depends, Path, Request

from tokenledger.auth import csrf
from tokenledger.auth.keys import ApiKey, find_key, key_actor, touch_key
from tokenledger.clock import now_us
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.web.context import AppContext
from tokenledger.web.errors import ApiError

# Ids are 64-bit signed integers in both databases: a larger number names no row (and
# SQLite cannot even bind it), so it is refused as a parameter (400) like "abc".
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
KeyFinder = Callable[[str], ApiKey | None]


def app_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_ctx(request: Request) -> AppContext:
    """The app context (async: FastAPI runs it on the event loop, where a plain ``def``
    would take a worker thread round trip on every request)."""
    return app_context(request)


Ctx = Annotated[AppContext, Depends(get_ctx)]


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_for(request: Request, scopes: tuple[str, ...], find: KeyFinder) -> ApiKey:
    """The request's bearer key if ``find`` knows it and it has one of ``scopes``;
    else the 401 or 403 answer. ``find`` looks a secret up (in an open transaction,
    for a route that reads more in it)."""
    token = _bearer_token(request)
    challenge = {"WWW-Authenticate": 'Bearer realm="tokenledger"'}
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing API key: send 'Authorization: Bearer <key>'",
            headers=challenge,
        )
    key = find(token)
    if key is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=challenge)
    if key.scope not in scopes:
        needed = " or ".join(repr(name) for name in scopes)
        raise ApiError(
            403,
            "insufficient_scope",
            f"this key has scope {key.scope!r}; this endpoint needs {needed}",
        )
    return key


def note_key_used(ctx: AppContext, key: ApiKey) -> None:
    with suppress(DatabaseUnavailable):  # "last used" must never fail a request
        touch_key(ctx.db, key, now_us=now_us(ctx.clock))


def require_key(scope: str, *others: str) -> Callable[[Request, AppContext], ApiKey]:
    """A dependency accepting only an active API key with ``scope`` (or ``others``)."""
    scopes = (scope, *others)

    def dependency(request: Request, ctx: Ctx) -> ApiKey:
        key = key_for(request, scopes, partial(find_key, ctx.db))
        note_key_used(ctx, key)
        return key

    return dependency


IngestKey = Annotated[ApiKey, Depends(require_key("ingest"))]
# A report:read key and nothing else. Report and export routes use ``ReportReader``
# (below), which also accepts a signed-in session.
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


def _page_viewer(request: Request) -> Viewer:
    viewer = current_viewer(request)
    if viewer is None:
        raise SignInRequired()
    return viewer


# Dependencies that do no I/O are async, so FastAPI runs them on the event loop instead
# of a worker thread round trip each.
async def require_page_viewer(request: Request) -> Viewer:
    return _page_viewer(request)


PageViewer = Annotated[Viewer, Depends(require_page_viewer)]


class AdminRequired(Exception):
    """A signed-in account without the admin role asked for an admin page (403)."""


async def require_page_admin(request: Request) -> Viewer:
    viewer = _page_viewer(request)
    if not viewer.is_admin:
        raise AdminRequired()
    return viewer


PageAdmin = Annotated[Viewer, Depends(require_page_admin)]


def client_address(request: Request) -> str:
    """The client's address (behind trusted proxies, the forwarded one)."""
    client: str | None = getattr(request.state, "client", None)
    if client is None:
        client = request.client.host if request.client else ""
    return client


def session_token(request: Request) -> str | None:
    """The cookie value of the request's live session, if it has one."""
    token: str | None = getattr(request.state, "session_token", None)
    return token


@dataclass(frozen=True)
class Reader:
    """Who reads a report: a ``report:read`` key or a signed-in account (any role).
    ``actor`` and ``client`` are what an audit entry records."""

    actor: str
    client: str
    key: ApiKey | None = None
    viewer: Viewer | None = None


_read_key = require_key("report:read")


def require_report_reader(request: Request, ctx: Ctx) -> Reader:
    """A ``report:read`` key when an Authorization header is sent, else the session."""
    if "authorization" in request.headers:
        key = _read_key(request, ctx)
        return Reader(key_actor(key), client_address(request), key=key)
    viewer = current_viewer(request)
    if viewer is None:
        raise ApiError(
            401,
            "unauthorized",
            "sign in, or send 'Authorization: Bearer <key>' with a report:read key",
            headers={"WWW-Authenticate": 'Bearer realm="tokenledger"'},
        )
    return Reader(viewer.email, client_address(request), viewer=viewer)


ReportReader = Annotated[Reader, Depends(require_report_reader)]


def require_export_reader(request: Request, ctx: Ctx) -> Reader:
    """A report reader who may start an export: with a key, any client; with a session,
    only a request started from this site (a cross-site link must not make a
    signed-in admin download usage and write an audit entry in their name)."""
    reader = require_report_reader(request, ctx)
    if reader.viewer is not None and not csrf.same_site_navigation(
        fetch_site=request.headers.get("sec-fetch-site"),
        referer=request.headers.get("referer"),
        expected=getattr(request.state, "origin", ""),
    ):
        raise ApiError(
            403,
            "cross_site_request",
            "a signed-in export must be started from TokenLedger's own pages (the Export "
            "button of Reporting > User Usage); applications use a report:read key",
        )
    return reader


ExportReader = Annotated[Reader, Depends(require_export_reader)]


async def reports_available(ctx: Ctx) -> None:
    """Reports answer 503 while usage cannot be recorded (a read-only SQLite file):
    their numbers would silently stop growing, and the people who read reports are
    the ones who can fix it."""
    ctx.db.check_writable()


ReportsAvailable = Depends(reports_available)
