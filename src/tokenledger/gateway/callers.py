"""Who is calling: the key, and the person the request is counted for.

A ``gateway`` key is one person's: its requests are theirs, whatever they say. A
``gateway-app`` key is an application's that signs people in itself: each request
names its person in the ``X-TokenLedger-User`` header, or in the body (OpenAI's
``user`` field; Anthropic's ``metadata.user_id``). A request with no person is
refused (400), as is one without a valid gateway key (401, or 403 for another scope).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from tokenledger.auth import names
from tokenledger.auth.keys import PERSON_SCOPE, ApiKey, find_key_in, plausible, touch_key
from tokenledger.gateway.errors import GatewayError
from tokenledger.gateway.upstreams import Kind
from tokenledger.store.database import Database, DatabaseUnavailable

APP_SCOPE = "gateway-app"
PERSON_HEADER = "x-tokenledger-user"


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    user_id: str


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key as the OpenAI client sends it (``Authorization: Bearer``) or as the
    Anthropic client does (``x-api-key``)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key", "").strip() or None


def authenticate(db: Database, headers: Mapping[str, str], *, now_us: int) -> ApiKey:
    """The caller's active gateway key, or a :class:`GatewayError`."""
    secret = presented_secret(headers)
    with db.read() as conn:
        key = key_in(conn, secret)
    touch(db, key, now_us=now_us)
    return key


def presented_secret(headers: Mapping[str, str]) -> str:
    """The key the request presents (401 when none, or when it cannot be a key: no
    transaction is spent on it)."""
    secret = presented_key(headers)
    if secret is None:
        raise GatewayError(
            401,
            "missing_api_key",
            "missing API key: send a TokenLedger gateway key as 'Authorization: Bearer <key>' "
            "or 'x-api-key: <key>'",
        )
    if not plausible(secret):
        raise _invalid_key()
    return secret


def key_in(conn: Connection, secret: str) -> ApiKey:
    """The active gateway key of ``secret``, read in ``conn``'s transaction (401 or
    403 otherwise)."""
    key = find_key_in(conn, secret)
    if key is None:
        raise _invalid_key()
    if key.scope not in {PERSON_SCOPE, APP_SCOPE}:
        raise GatewayError(
            403,
            "insufficient_scope",
            f"this key has scope {key.scope!r}; the gateway needs a {PERSON_SCOPE!r} or "
            f"{APP_SCOPE!r} key",
        )
    return key


def touch(db: Database, key: ApiKey, *, now_us: int) -> None:
    """Record the key's use (at most once a minute; "last used" never fails a request)."""
    with suppress(DatabaseUnavailable):
        touch_key(db, key, now_us=now_us)


def _invalid_key() -> GatewayError:
    return GatewayError(401, "invalid_api_key", "unknown or revoked API key")


def named_in_headers(key: ApiKey, headers: Mapping[str, str]) -> Caller | None:
    """The person, when the key or the headers say who it is (None: see the body)."""
    if key.user_id is not None:
        return Caller(key, key.user_id)
    header = headers.get(PERSON_HEADER)
    if header is not None:
        return Caller(key, _user_id(header, "X-TokenLedger-User"))
    return None


def identify(
    key: ApiKey, headers: Mapping[str, str], document: Mapping[str, Any], kind: Kind
) -> Caller:
    """The person a request is counted for."""
    caller = named_in_headers(key, headers)
    if caller is not None:
        return caller
    field, named = _named_in_body(document, kind)
    if named is None:
        raise GatewayError(
            400,
            "missing_user",
            f"this application key does not name a person: send the person's user id in "
            f"the X-TokenLedger-User header or the body's {field} field",
            param=field,
        )
    if not isinstance(named, str):
        raise GatewayError(400, "invalid_user", f"{field} must be a string", param=field)
    return Caller(key, _user_id(named, field))


def _named_in_body(document: Mapping[str, Any], kind: Kind) -> tuple[str, Any]:
    if kind == "anthropic":
        metadata = document.get("metadata")
        return "metadata.user_id", metadata.get("user_id") if isinstance(metadata, dict) else None
    return "user", document.get("user")


def _user_id(value: str, field: str) -> str:
    try:
        return names.clean_user_id(value, what=field)
    except ValueError as exc:
        raise GatewayError(400, "invalid_user", str(exc), param=field) from exc


def request_document(body: bytes) -> dict[str, Any]:
    """The request's JSON object (400 when it is not one)."""
    try:
        document = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise GatewayError(400, "invalid_json", "the body must be a JSON object")
    return document
