"""The console's cookies: HttpOnly, SameSite=Lax, Path=/, no Domain; over HTTPS also
Secure with the ``__Host-`` prefix (so no other host or path can set them)."""

from __future__ import annotations

from starlette.responses import Response

SESSION = "tokenledger_session"
# Before sign-in: a random value the sign-in form's CSRF token is derived from.
PRE_SESSION = "tokenledger_csrf"


def name(base: str, *, secure: bool) -> str:
    return f"__Host-{base}" if secure else base


def header(base: str, value: str, *, secure: bool, delete: bool = False) -> str:
    """A ``Set-Cookie`` value (values are URL-safe tokens: nothing to quote)."""
    parts = [f"{name(base, secure=secure)}={'' if delete else value}", "Path=/", "HttpOnly"]
    parts.append("SameSite=Lax")
    if secure:
        parts.append("Secure")
    if delete:
        parts.append("Max-Age=0")
    return "; ".join(parts)


def set_session(response: Response, token: str, *, secure: bool) -> None:
    response.headers.append("set-cookie", header(SESSION, token, secure=secure))


def clear_session(response: Response, *, secure: bool) -> None:
    response.headers.append("set-cookie", header(SESSION, "", secure=secure, delete=True))
