"""The session layer: who is signed in, on every request, and the CSRF check.

For each request (static files aside) it sets on ``request.state``:

* ``viewer``: a ``deps.Viewer`` re-read from the database (a disabled account's session
  is no session; a changed role applies at once), or None;
* ``csrf_token``: the token forms and htmx must send back;
* ``session_token``: the live session's cookie value, or None;
* ``client``: the client address (behind trusted proxies, the forwarded one);
* ``secure_cookies``: whether cookies get ``Secure`` and the ``__Host-`` prefix;
* ``origin``: this site's origin as the browser sees it (``https://host:port``).

State-changing requests (not GET / HEAD / OPTIONS) must carry the CSRF token in the
``X-CSRF-Token`` header or a ``csrf_token`` form field, and a foreign Origin or Referer
is refused: 403 otherwise. Two exceptions, neither of which can act through a cookie:
requests with an ``Authorization`` or ``x-api-key`` header (API keys, as the OpenAI and
Anthropic clients send them to the gateway; cookies are then ignored) and API requests
without a session cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenledger.auth import csrf, sessions
from tokenledger.clock import now_us
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.web import cookies, proxy
from tokenledger.web.body_limits import MAX_FORM_BYTES, MAX_UPLOAD_BYTES, UPLOAD_PATHS
from tokenledger.web.context import AppContext
from tokenledger.web.deps import Viewer
from tokenledger.web.error_pages import error_page
from tokenledger.web.errors import error_response

# Paths machines call (the OTLP receiver lives at /v1/traces, where exporters post).
API_PATHS = ("/api/", "/v1/", "/gateway/")
KEY_HEADERS = ("authorization", "x-api-key")
_NOT_BROWSER_PAGES = (*API_PATHS, "/healthz", "/readyz", "/metrics")


class SessionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        ctx: AppContext = scope["app"].state.ctx
        networks = ctx.settings.trusted_proxy_networks
        origin = f"{proxy.scheme(scope, networks)}://{proxy.host(scope, networks)}"
        secure = {"always": True, "never": False}.get(
            ctx.settings.secure_cookies, origin.startswith("https:")
        )
        state = scope.setdefault("state", {})
        state.update(
            viewer=None,
            csrf_token="",
            session_token=None,
            client=proxy.client_address(scope, networks),
            secure_cookies=secure,
            origin=origin,
        )
        new_cookies: list[str] = []
        send = _with_cookies(send, new_cookies)
        headers = Headers(scope=scope)
        uses_key = any(name in headers for name in KEY_HEADERS)
        if not uses_key:  # a request with an API key is never also a session's
            try:
                await _resume_session(scope, ctx, state, new_cookies)
            except DatabaseUnavailable as exc:
                await _unavailable(str(exc))(scope, receive, send)
                return
            if state["viewer"] is None:
                _pre_session(scope, state, new_cookies)
        if _needs_csrf(scope, uses_key=uses_key, has_session=state["viewer"] is not None):
            receive, refusal = await _check_csrf(scope, receive, state["csrf_token"], origin)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _resume_session(
    scope: Scope, ctx: AppContext, state: dict[str, Any], new_cookies: list[str]
) -> None:
    """Set the viewer from the session cookie, re-reading the account right now."""
    secure = state["secure_cookies"]
    token = Request(scope).cookies.get(cookies.name(cookies.SESSION, secure=secure))
    if not token:
        return
    policy = sessions.SessionPolicy(
        ctx.settings.session_idle_timeout_s, ctx.settings.session_lifetime_s
    )
    found = await run_in_threadpool(
        sessions.resolve, ctx.db, token, now_us=now_us(ctx.clock), policy=policy
    )
    if found is None:  # expired, revoked or its account disabled: forget the cookie
        new_cookies.append(cookies.header(cookies.SESSION, "", secure=secure, delete=True))
        return
    state["viewer"] = Viewer(found.account_id, found.email, found.display_name, found.role)
    state["session_token"] = token
    state["csrf_token"] = csrf.token_for(token)


def _pre_session(scope: Scope, state: dict[str, Any], new_cookies: list[str]) -> None:
    """Before sign-in, the CSRF token comes from a random pre-session cookie (set on
    the first page view), so the sign-in form is protected too."""
    secure = state["secure_cookies"]
    value = Request(scope).cookies.get(cookies.name(cookies.PRE_SESSION, secure=secure))
    if not value or len(value) > 100:
        if scope["path"].startswith(_NOT_BROWSER_PAGES):
            return
        value = secrets.token_urlsafe(32)
        new_cookies.append(cookies.header(cookies.PRE_SESSION, value, secure=secure))
    state["csrf_token"] = csrf.token_for(value)


def _with_cookies(send: Send, new_cookies: list[str]) -> Send:
    async def send_with_cookies(message: Message) -> None:
        if message["type"] == "http.response.start" and new_cookies:
            message["headers"] = [
                *message.get("headers", []),
                *((b"set-cookie", value.encode()) for value in new_cookies),
            ]
        await send(message)

    return send_with_cookies


def _needs_csrf(scope: Scope, *, uses_key: bool, has_session: bool) -> bool:
    """State-changing requests need the token, unless a cookie cannot be what
    authorises them: API keys, or API calls without a session cookie."""
    if scope["method"] in csrf.SAFE_METHODS or uses_key:
        return False
    return has_session or not scope["path"].startswith(API_PATHS)


async def _check_csrf(
    scope: Scope, receive: Receive, expected: str, origin: str
) -> tuple[Receive, Response | None]:
    """Check Origin / Referer against this site's ``origin``, then the token; returns
    the receive channel to use next (a form body, once read, is replayed) and a
    refusal, if any."""
    headers = Headers(scope=scope)
    if not csrf.same_origin(
        origin=headers.get("origin"), referer=headers.get("referer"), expected=origin
    ):
        return receive, _refusal(scope, "This request came from another site.")
    presented = headers.get(csrf.HEADER)
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if presented is None and media_type == "application/x-www-form-urlencoded":
        body = await _read_body(receive)
        if body is None:
            return receive, _refusal(scope, "This form is too large.", status=413)
        fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
        presented = next(iter(fields.get(csrf.FIELD, [])), None)
        receive = _replay(body, receive)
    elif (
        presented is None and media_type == "multipart/form-data" and scope["path"] in UPLOAD_PATHS
    ):
        body = await _read_body(receive, limit=MAX_UPLOAD_BYTES)
        if body is None:
            return receive, _refusal(scope, "This file is too large.", status=413)
        presented = await _multipart_field(headers, body, csrf.FIELD)
        receive = _replay(body, receive)
    if not csrf.matches(expected, presented):
        return receive, _refusal(
            scope,
            "This form has expired (or your session has ended), or it did not come from "
            "this page. Reload the page and try again.",
        )
    return receive, None


async def _multipart_field(headers: Headers, body: bytes, name: str) -> str | None:
    """The text field ``name`` of a multipart form (None if missing or malformed)."""

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(headers, stream()).parse()
    except MultiPartException:
        return None
    value = form.get(name)
    await form.close()
    return value if isinstance(value, str) else None


async def _read_body(receive: Receive, *, limit: int = MAX_FORM_BYTES) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _refusal(scope: Scope, message: str, *, status: int = 403) -> Response:
    if scope["path"].startswith(API_PATHS):
        return error_response(status, "csrf_failed", message)
    return error_page(Request(scope), status=status, title="Request refused", message=message)


def _unavailable(reason: str) -> Response:
    return error_response(
        503,
        "database_unavailable",
        f"the database cannot be used right now ({reason}); retry later",
        headers={"Retry-After": "5"},
    )
