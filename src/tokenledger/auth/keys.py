"""API keys: what applications use to send events and read reports.

A key is shown once, at creation; only its SHA-256 is stored (keys are 256-bit
random, so a slow password hash would add nothing). ``ingest`` keys can only send
events, ``report:read`` keys can only read reports. A ``gateway`` key is one person's
(its ``user_id``): their AI requests through the gateway are counted under it; a
``gateway-app`` key is an application's that names the person of each request.
Creating and revoking a key are written to the audit log in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from tokenledger.auth import audit, names
from tokenledger.store.database import Database
from tokenledger.store.schema import api_keys, users

Scope = Literal["ingest", "report:read", "metrics", "gateway", "gateway-app", "budget:check"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
SCOPE_USES: dict[str, str] = {
    "ingest": "send usage events",
    "report:read": "read usage reports",
    "metrics": "read Prometheus metrics",
    "gateway": "one person's AI requests through the gateway",
    "gateway-app": "an application's AI requests through the gateway, each naming its person",
    "budget:check": "ask whether a person may make an AI request (budgets)",
}
# The scope whose keys speak for one person (and only those have a ``user_id``).
PERSON_SCOPE = "gateway"
KEY_PREFIX = "tl_"
_SHOWN_PREFIX = len(KEY_PREFIX) + 8
# A key's last use is written at most this often, to keep reads read-only.
LAST_USED_GRANULARITY_US = 60 * 1_000_000


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    scope: str
    created_us: int
    last_used_us: int | None
    revoked_us: int | None
    user_id: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_us is None


@dataclass(frozen=True, slots=True)
class Person:
    """A gateway key's person as the directory of users knows them (name and e-mail
    from their latest events; both None before their first request)."""

    user_id: str
    name: str | None
    email: str | None


_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.scope,
    api_keys.c.created_us,
    api_keys.c.last_used_us,
    api_keys.c.revoked_us,
    api_keys.c.user_id,
)

# Built once: a key is looked up on every API call (its cache key is then memoized).
_BY_HASH = select(*_COLUMNS).where(api_keys.c.key_hash == bindparam("key_hash"))


def hash_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def key_actor(key: ApiKey) -> str:
    """How a key appears as the actor of an audit entry."""
    return f"key {key.prefix}… ({key.name})"


def create_key(
    db: Database,
    *,
    name: str,
    scope: str,
    now_us: int,
    user_id: str | None = None,
    actor: str = "system",
    client: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and its secret (which is never retrievable again). A
    ``gateway`` key needs ``user_id`` (and is named after it when ``name`` is empty);
    no other key takes one."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    user_id = _person_of(scope, user_id)
    name = names.clean_name(name or user_id or "", what="key name", required=True)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.write() as conn:
        key_id = conn.execute(
            api_keys.insert().returning(api_keys.c.id),
            {
                "name": name,
                "prefix": secret[:_SHOWN_PREFIX],
                "key_hash": hash_key(secret),
                "scope": scope,
                "created_us": now_us,
                "user_id": user_id,
            },
        ).scalar_one()
        details: dict[str, object] = {
            "key_id": key_id,
            "name": name,
            "scope": scope,
            "prefix": secret[:_SHOWN_PREFIX],
        }
        if user_id is not None:
            details["user_id"] = user_id
        audit.record_in(
            conn,
            actor=actor,
            action=audit.KEY_CREATED,
            details=details,
            now_us=now_us,
            client=client,
        )
    key = ApiKey(key_id, name, secret[:_SHOWN_PREFIX], scope, now_us, None, None, user_id)
    return key, secret


def _person_of(scope: str, user_id: str | None) -> str | None:
    if scope != PERSON_SCOPE:
        if user_id:
            raise ValueError(f"only a {PERSON_SCOPE} key names a person (user id)")
        return None
    if not user_id:
        raise ValueError(f"a {PERSON_SCOPE} key needs the user id of its person")
    return names.clean_user_id(user_id)


def list_keys(db: Database) -> list[ApiKey]:
    with db.read() as conn:
        rows = conn.execute(select(*_COLUMNS).order_by(api_keys.c.id))
        return [ApiKey(*row) for row in rows]


def key_people(db: Database, keys: list[ApiKey]) -> dict[str, Person]:
    """The persons of the gateway keys among ``keys``, by user id, as the directory
    of users knows them."""
    wanted = {key.user_id for key in keys if key.user_id is not None}
    if not wanted:
        return {}
    found = {user_id: Person(user_id, None, None) for user_id in wanted}
    with db.read() as conn:
        rows = conn.execute(
            select(users.c.external_id, users.c.name, users.c.email).where(
                users.c.external_id.in_(sorted(wanted))
            )
        )
        for row in rows:
            found[row.external_id] = Person(row.external_id, row.name, row.email)
    return found


def revoke_key(
    db: Database,
    key_id: int,
    *,
    now_us: int,
    actor: str = "system",
    client: str | None = None,
) -> ApiKey:
    """Revoke key ``key_id`` (idempotent); LookupError if there is none."""
    with db.write() as conn:
        revoked = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_us.is_(None))
            .values(revoked_us=now_us)
            .returning(api_keys.c.name, api_keys.c.prefix, api_keys.c.scope, api_keys.c.user_id)
        ).first()
        if revoked is not None:
            details = {
                name: value for name, value in revoked._asdict().items() if value is not None
            }
            audit.record_in(
                conn,
                actor=actor,
                action=audit.KEY_REVOKED,
                details={"key_id": key_id, **details},
                now_us=now_us,
                client=client,
            )
    for key in list_keys(db):
        if key.id == key_id:
            return key
    raise LookupError(f"no key with id {key_id}")


def plausible(secret: str) -> bool:
    """Whether ``secret`` has a key's shape (else no transaction is spent on it)."""
    return secret.startswith(KEY_PREFIX) and len(secret) <= 200


def find_key(db: Database, secret: str) -> ApiKey | None:
    """The active key whose secret is ``secret``, or None."""
    if not plausible(secret):
        return None  # no transaction for what cannot be a key
    with db.read() as conn:
        return find_key_in(conn, secret)


def find_key_in(conn: Connection, secret: str) -> ApiKey | None:
    """:func:`find_key` in an open transaction (a call that reads more in it)."""
    if not plausible(secret):
        return None
    row = conn.execute(_BY_HASH, {"key_hash": hash_key(secret)}).first()
    if row is None or row.revoked_us is not None:
        return None
    return ApiKey(*row)


def touch_due(key: ApiKey, *, now_us: int) -> bool:
    """Whether :func:`touch_key` would write (its last use is a minute old or more)."""
    return key.last_used_us is None or now_us - key.last_used_us >= LAST_USED_GRANULARITY_US


def touch_key(db: Database, key: ApiKey, *, now_us: int) -> None:
    """Record that ``key`` was used (at most once per minute per key)."""
    if not touch_due(key, now_us=now_us):
        return
    with db.write() as conn:
        conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(last_used_us=now_us))
