"""Server-side console sessions: a random cookie value, only its SHA-256 stored.

A session ends after ``idle_timeout_s`` without use or ``lifetime_s`` after sign-in,
or when its row is deleted (sign-out, password reset, disabling the account). The
account's role and enabled flag are read with the session on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, delete, func, not_, select, update

from tokenledger.store.database import Database, DatabaseUnavailable
from tokenledger.store.schema import accounts, sessions

# "Last seen" is written at most this often, so most requests only read.
TOUCH_GRANULARITY_US = 60 * 1_000_000
_US = 1_000_000


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_timeout_s: int = 1800
    lifetime_s: int = 43200

    def alive(self, *, now_us: int) -> ColumnElement[bool]:
        """The condition a usable session meets at ``now_us``."""
        return and_(
            sessions.c.created_us > now_us - self.lifetime_s * _US,
            sessions.c.last_seen_us > now_us - self.idle_timeout_s * _US,
        )


@dataclass(frozen=True, slots=True)
class SessionAccount:
    """The enabled account behind a live session, as stored right now."""

    session_id: int
    account_id: int
    email: str
    display_name: str
    role: str


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def create_in(conn: Connection, *, account_id: int, now_us: int) -> str:
    """Start a session for ``account_id``; returns the cookie value (never stored)."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        sessions.insert(),
        {
            "token_hash": token_hash(token),
            "account_id": account_id,
            "created_us": now_us,
            "last_seen_us": now_us,
        },
    )
    return token


def resolve(
    db: Database, token: str, *, now_us: int, policy: SessionPolicy
) -> SessionAccount | None:
    """The account signed in with ``token``, or None when the session is unknown,
    expired, or its account is disabled."""
    if not token or len(token) > 200:
        return None
    with db.read() as conn:
        row = conn.execute(
            select(
                sessions.c.id,
                sessions.c.last_seen_us,
                accounts.c.id.label("account_id"),
                accounts.c.email,
                accounts.c.display_name,
                accounts.c.role,
            )
            .join(accounts, accounts.c.id == sessions.c.account_id)
            .where(
                sessions.c.token_hash == token_hash(token),
                accounts.c.enabled.is_(True),
                policy.alive(now_us=now_us),
            )
        ).first()
    if row is None:
        return None
    if now_us - row.last_seen_us >= TOUCH_GRANULARITY_US:
        # Reading must keep working while the database cannot be written (like a key's
        # "last used"); the session then just looks idle a little earlier.
        with suppress(DatabaseUnavailable), db.write() as conn:
            conn.execute(
                update(sessions).where(sessions.c.id == row.id).values(last_seen_us=now_us)
            )
    return SessionAccount(row.id, row.account_id, row.email, row.display_name, row.role)


def revoke(db: Database, token: str) -> None:
    with db.write() as conn:
        revoke_in(conn, token)


def revoke_in(conn: Connection, token: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))


def revoke_account_in(conn: Connection, account_id: int, *, keep: str | None = None) -> int:
    """End every session of ``account_id`` except the one with cookie value ``keep``."""
    query = delete(sessions).where(sessions.c.account_id == account_id)
    if keep:
        query = query.where(sessions.c.token_hash != token_hash(keep))
    return conn.execute(query).rowcount


def prune_in(conn: Connection, *, now_us: int, policy: SessionPolicy) -> None:
    """Delete sessions that can no longer be used."""
    conn.execute(delete(sessions).where(not_(policy.alive(now_us=now_us))))


def count_active(db: Database, account_id: int, *, now_us: int, policy: SessionPolicy) -> int:
    with db.read() as conn:
        query = select(func.count()).where(
            sessions.c.account_id == account_id, policy.alive(now_us=now_us)
        )
        return int(conn.execute(query).scalar_one())
