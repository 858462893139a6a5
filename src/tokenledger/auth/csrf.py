"""CSRF protection: a token bound to the browser's session (or pre-session) cookie,
required on every state-changing request, plus an Origin / Referer check.

The token is derived from the cookie value, so it is never stored, a token from
another session never matches, and it changes when the session id changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
HEADER = "x-csrf-token"
FIELD = "csrf_token"


def token_for(cookie_value: str) -> str:
    digest = hashlib.sha256(b"tokenledger-csrf\0" + cookie_value.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def matches(expected: str, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))


def same_origin(*, origin: str | None, referer: str | None, expected: str) -> bool:
    """The second line of defence: a browser's Origin (or, without one, its Referer)
    must be this site. A request with neither passes on its token alone."""
    if origin is not None:
        return origin.rstrip("/").lower() == expected.lower()
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == expected.lower()
    return True


def same_site_navigation(*, fetch_site: str | None, referer: str | None, expected: str) -> bool:
    """Whether a GET that acts in a session's name (an export: a download and an audit
    entry) was started from this site, or typed or bookmarked by its user, rather than
    by a link or an image on another site. Browsers say so in ``Sec-Fetch-Site``; an
    old one without it must at least send a Referer of this site (our pages send one:
    ``Referrer-Policy: same-origin``)."""
    if fetch_site is not None:
        return fetch_site.strip().lower() in {"same-origin", "none"}
    if not referer:
        return False
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}".lower() == expected.lower()
