"""Sign-in throttling: too many failures for one e-mail or from one client address
within the window, and further attempts are refused until old failures age out.

An attempt is *reserved* before its password is checked: in one serialized write
transaction the failures of the window are counted and, if the attempt may be made,
it is written as a failure at once. Only then is the password hashed; a right
password releases the reservation. So however many attempts arrive together, at most
``per_account`` passwords are checked for one e-mail and ``per_client`` from one
address in a window, and a refused attempt costs no hash at all.

Refused attempts are counted, not written one by one: the first refusal of a pause
writes one audit entry (``sign_in_throttled``), and each further one adds to its count
(``sign_in_refusals``), which the audit log shows beside it.

Failures are counted per e-mail *as typed*, whether or not an account has it, so the
refusal says nothing about which accounts exist. E-mails are stored hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, Connection, delete, select, update

from tokenledger.auth import audit
from tokenledger.store.database import Database
from tokenledger.store.schema import sign_in_failures, sign_in_refusals

_US = 1_000_000
_LOCK = "sign-in throttle"


@dataclass(frozen=True, slots=True)
class Limits:
    per_account: int = 10
    per_client: int = 50
    window_s: int = 900


Subject = Literal["e-mail", "client address"]


@dataclass(frozen=True, slots=True)
class Pause:
    """Sign-in is paused for this attempt's e-mail or client address."""

    retry_after_s: int
    subject: Subject


def email_key(email: str) -> bytes:
    return hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).digest()


def reserve(
    db: Database, *, email: str, client: str, actor: str, now_us: int, limits: Limits
) -> int | Pause:
    """Count this attempt as a failure before its password is checked, if it may be
    made: returns its id (``release`` it when the password was right), or the Pause
    that refuses it (counted under the pause's audit entry, written by ``actor``)."""

    def work(conn: Connection) -> int | Pause:
        db.serialize(conn, _LOCK)
        conn.execute(
            delete(sign_in_failures).where(
                sign_in_failures.c.at_us <= now_us - limits.window_s * _US
            )
        )
        pause = _pause(conn, email=email, client=client, now_us=now_us, limits=limits)
        if pause is not None:
            _count_refusal(conn, pause, email=email, client=client, actor=actor, now_us=now_us)
            return pause
        attempt: int = conn.execute(
            sign_in_failures.insert().returning(sign_in_failures.c.id),
            {"at_us": now_us, "email_hash": email_key(email), "client": client[:64]},
        ).scalar_one()
        return attempt

    return db.run_write(work)


def release(db: Database, attempt: int) -> None:
    """The reserved attempt's password was right: it was no failure."""
    with db.write() as conn:
        conn.execute(delete(sign_in_failures).where(sign_in_failures.c.id == attempt))


def clear_in(conn: Connection, *, email: str) -> None:
    """Forget an e-mail's failures (after its owner signed in)."""
    conn.execute(delete(sign_in_failures).where(sign_in_failures.c.email_hash == email_key(email)))


def _pause(
    conn: Connection, *, email: str, client: str, now_us: int, limits: Limits
) -> Pause | None:
    """The pause in force for this e-mail or client address (the longer one), if any."""
    since = now_us - limits.window_s * _US
    column = sign_in_failures.c
    pauses: list[Pause] = []
    checks: tuple[tuple[ColumnElement[bool], int, Subject], ...] = (
        (column.email_hash == email_key(email), limits.per_account, "e-mail"),
        (column.client == client[:64], limits.per_client, "client address"),
    )
    for condition, limit, subject in checks:
        # The limit-th newest failure: once it leaves the window, one more is allowed.
        oldest_blocking = conn.execute(
            select(column.at_us)
            .where(condition, column.at_us > since)
            .order_by(column.at_us.desc())
            .limit(1)
            .offset(limit - 1)
        ).scalar()
        if oldest_blocking is not None:
            wait_us = int(oldest_blocking) + limits.window_s * _US - now_us
            pauses.append(Pause(max(1, -(-wait_us // _US)), subject))
    return max(pauses, key=lambda pause: pause.retry_after_s, default=None)


def _subject_hash(pause: Pause, *, email: str, client: str) -> bytes:
    value = email_key(email) if pause.subject == "e-mail" else client[:64].encode()
    return hashlib.sha256(pause.subject.encode() + b"\0" + value).digest()


def _count_refusal(
    conn: Connection, pause: Pause, *, email: str, client: str, actor: str, now_us: int
) -> None:
    """Add one refused attempt to the pause's count; the pause's first refusal writes
    its audit entry."""
    subject = _subject_hash(pause, email=email, client=client)
    column = sign_in_refusals.c
    counted = conn.execute(
        update(sign_in_refusals)
        .where(column.subject_hash == subject, column.until_us > now_us)
        .values(refused=column.refused + 1)
    ).rowcount
    if counted:
        return
    audit_id = audit.record_in(
        conn,
        actor=actor,
        action=audit.SIGN_IN_THROTTLED,
        details={"paused_for": f"this {pause.subject}", "paused_seconds": pause.retry_after_s},
        now_us=now_us,
        client=client,
    )
    conn.execute(
        sign_in_refusals.insert(),
        {
            "audit_id": audit_id,
            "subject_hash": subject,
            "until_us": now_us + pause.retry_after_s * _US,
            "refused": 1,
        },
    )
