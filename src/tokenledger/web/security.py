"""Browser hardening headers on every response, and redirects that never name a host.

Every answer without its own ``Cache-Control`` gets ``no-store``: pages, reports and
the audit log show usage and accounts, which no browser or proxy cache should keep
(static files, which are public and versioned, set their own).

A redirect whose ``Location`` was built from the request's ``Host`` header (Starlette
does so for a path with a trailing slash) is rewritten to a path on this site:
``Host: evil.test`` must not make the server send anyone to ``http://evil.test/``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Scripts only from /static (no inline script, no eval). Styles allow inline
# attributes because the chart and calendar libraries set element styles.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


class SecurityHeadersMiddleware:
    """Adds the security headers (pure ASGI, so streaming responses stay streaming)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        host = Headers(scope=scope).get("host", "").encode("latin-1")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, _on_this_site(value, host) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
                present = {name.lower() for name, _ in headers}
                headers += [pair for pair in SECURITY_HEADERS if pair[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _on_this_site(location: bytes, host: bytes) -> bytes:
    """``location`` as a path when it is an absolute URL to the request's own host."""
    parts = urlsplit(location)
    if not parts.netloc or parts.netloc.lower() != host.lower():
        return location
    path = parts.path or b"/"
    if path.startswith((b"//", b"/\\")):  # would read as another host again
        path = b"/" + path.lstrip(b"/\\")
    return path + (b"?" + parts.query if parts.query else b"")
