"""Sign-in throttling: too many failures for one e-mail or from one client address
within the window, and further attempts are refused until old failures age out.

Failures are counted per e-mail *as typed*, whether or not an account has it, so the
refusal says nothing about which accounts exist. E-mails are stored hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from tokenledger.store.database import Database
from tokenledger.store.schema import sign_in_failures

_US = 1_000_000


@dataclass(frozen=True, slots=True)
class Limits:
    per_account: int = 10
    per_client: int = 50
    window_s: int = 900


def email_key(email: str) -> bytes:
    return hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).digest()


def retry_after_s(
    db: Database, *, email: str, client: str, now_us: int, limits: Limits
) -> int | None:
    """Seconds until an attempt is allowed again, or None if it is allowed now."""
    since = now_us - limits.window_s * _US
    column = sign_in_failures.c
    waits: list[int] = []
    with db.read() as conn:
        for condition, limit in (
            (column.email_hash == email_key(email), limits.per_account),
            (column.client == client[:64], limits.per_client),
        ):
            # The limit-th newest failure: once it leaves the window, one more is allowed.
            oldest_blocking = conn.execute(
                select(column.at_us)
                .where(condition, column.at_us > since)
                .order_by(column.at_us.desc())
                .limit(1)
                .offset(limit - 1)
            ).scalar()
            if oldest_blocking is not None:
                waits.append(int(oldest_blocking) + limits.window_s * _US - now_us)
    if not waits:
        return None
    return max(1, -(-max(waits) // _US))


def record_failure(db: Database, *, email: str, client: str, now_us: int, limits: Limits) -> None:
    with db.write() as conn:
        conn.execute(
            delete(sign_in_failures).where(
                sign_in_failures.c.at_us <= now_us - limits.window_s * _US
            )
        )
        conn.execute(
            sign_in_failures.insert(),
            {"at_us": now_us, "email_hash": email_key(email), "client": client[:64]},
        )


def clear_in(conn: Connection, *, email: str) -> None:
    """Forget an e-mail's failures (after its owner signed in)."""
    conn.execute(delete(sign_in_failures).where(sign_in_failures.c.email_hash == email_key(email)))
