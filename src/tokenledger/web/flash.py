"""One-time flashes for post/redirect/get: what a form's answer must show once (a new
key's secret), carried across the redirect without a URL and never shown twice.

The message is stored server-side XOR a random one-time pad of the same length; the pad
lives only in an HttpOnly cookie of the browser that posted. Neither the database nor
the cookie alone reveals the message. Reading it deletes the row and the cookie, so a
reload or Back shows nothing again (and re-posts nothing: the POST was redirected).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenledger.store.database import Database
from tokenledger.store.flashes import put_flash, take_flash
from tokenledger.web import cookies

COOKIE = "tokenledger_flash"
MAX_AGE_S = 600


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def put(
    request: Request, response: Response, db: Database, message: dict[str, Any], *, now_us: int
) -> None:
    """Keep ``message`` (JSON-able) for the next page this browser opens."""
    data = json.dumps(message, separators=(",", ":")).encode()
    pad = secrets.token_bytes(len(data))
    flash_id = secrets.token_urlsafe(24)
    put_flash(
        db, flash_id=flash_id, sealed=_xor(data, pad), now_us=now_us, max_age_us=MAX_AGE_S * 10**6
    )
    value = f"{flash_id}.{base64.urlsafe_b64encode(pad).decode()}"
    secure = request.state.secure_cookies
    response.headers.append("set-cookie", cookies.header(COOKIE, value, secure=secure))


def take(request: Request, db: Database, *, now_us: int) -> dict[str, Any] | None:
    """The message put for this browser, once (None if there is none). Pass the answer
    to ``forget`` so the browser drops the cookie."""
    value = request.cookies.get(cookies.name(COOKIE, secure=request.state.secure_cookies))
    if not value:
        return None
    flash_id, _, pad_text = value.partition(".")
    try:
        pad = base64.urlsafe_b64decode(pad_text.encode())
    except (binascii.Error, ValueError):
        return None
    sealed = take_flash(db, flash_id=flash_id, now_us=now_us, max_age_us=MAX_AGE_S * 10**6)
    if sealed is None or len(sealed) != len(pad):
        return None
    try:
        message: dict[str, Any] = json.loads(_xor(sealed, pad))
    except ValueError:
        return None
    return message


def forget(request: Request, response: Response) -> None:
    """Clear the flash cookie (if the request had one)."""
    secure = request.state.secure_cookies
    if request.cookies.get(cookies.name(COOKIE, secure=secure)):
        response.headers.append(
            "set-cookie", cookies.header(COOKIE, "", secure=secure, delete=True)
        )
