"""The audit log: who signed in, changed an account or a key, or exported usage.

Append-only from the application's side: this module only inserts and reads, and a
database trigger refuses UPDATE and DELETE on ``audit_log`` (migration 0002). The one
exception is ``archive`` (``tokenledger audit-archive``, run by an administrator): old
entries are written to a file, then deleted, and the archive itself is recorded.

Recording an entry, e.g. from an export route::

    audit.record(
        ctx.db,
        actor=reader.actor,                 # deps.ReportReader: account e-mail or key label
        action=audit.EXPORT,
        details={"filters": {"start": "2026-11-01", "end": "2026-11-25", "q": ""},
                 "rows": 412},
        now_us=now_us(ctx.clock),
        client=reader.client,
    )

``details`` is any JSON-serialisable mapping; never put a password or key in it.
Changes that must be audited together with the data they change use ``record_in``
inside the same write transaction (accounts and keys do).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import Connection, delete, select

from tokenledger.store.database import Database
from tokenledger.store.schema import audit_log, audit_log_deletes_allowed, sign_in_refusals

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
# Sign-in paused for an e-mail or a client address: one entry per pause, with the
# number of attempts it refused (``sign_in_refusals``), never one entry per attempt.
SIGN_IN_THROTTLED = "sign_in_throttled"
SIGN_OUT = "sign_out"
ACCOUNT_CREATED = "account_created"
ACCOUNT_CHANGED = "account_changed"
ACCOUNT_DISABLED = "account_disabled"
ACCOUNT_ENABLED = "account_enabled"
KEY_CREATED = "key_created"
KEY_REVOKED = "key_revoked"
EXPORT_STARTED = "export_started"  # when an export begins (its filters)
EXPORT = "export"  # when it ends: its filters, the rows that left, complete or not
PEOPLE_IMPORTED = "people_imported"  # a people directory loaded (counts, file name)
# Entries older than a date moved to a file by ``tokenledger audit-archive``.
AUDIT_ARCHIVED = "audit_archived"
# A person erased (``tokenledger people erase``): their pseudonym, never their data.
PERSON_ERASED = "person_erased"
# Own prices set or deleted, and events repriced (tokenledger/prices.py, reprice.py).
PRICE_SET = "price_set"
PRICE_DELETED = "price_deleted"
REPRICED = "repriced"
# Budgets and alert channels (docs/budgets.md), and an alert sent again by an admin.
BUDGET_CREATED = "budget_created"
BUDGET_CHANGED = "budget_changed"
BUDGET_DELETED = "budget_deleted"
ALERT_CHANNEL_CHANGED = "alert_channel_changed"
ALERT_RESENT = "alert_resent"
ACTIONS = (
    SIGN_IN,
    SIGN_IN_FAILED,
    SIGN_IN_THROTTLED,
    SIGN_OUT,
    ACCOUNT_CREATED,
    ACCOUNT_CHANGED,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    KEY_CREATED,
    KEY_REVOKED,
    EXPORT_STARTED,
    EXPORT,
    AUDIT_ARCHIVED,
    PERSON_ERASED,
    PRICE_SET,
    PRICE_DELETED,
    REPRICED,
    PEOPLE_IMPORTED,
    BUDGET_CREATED,
    BUDGET_CHANGED,
    BUDGET_DELETED,
    ALERT_CHANNEL_CHANGED,
    ALERT_RESENT,
)
_MAX_ACTOR = 400


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at_us: int
    actor: str
    action: str
    details: dict[str, Any]
    client: str | None


def cli_actor() -> str:
    """The actor of a command-line change: the operating-system user running it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def record(
    db: Database,
    *,
    actor: str,
    action: str,
    details: Mapping[str, Any] | None = None,
    now_us: int,
    client: str | None = None,
) -> None:
    """Append one entry in its own transaction."""
    with db.write() as conn:
        record_in(conn, actor=actor, action=action, details=details, now_us=now_us, client=client)


def record_in(
    conn: Connection,
    *,
    actor: str,
    action: str,
    details: Mapping[str, Any] | None = None,
    now_us: int,
    client: str | None = None,
) -> int:
    """Append one entry inside the caller's write transaction; returns its id."""
    entry_id: int = conn.execute(
        audit_log.insert().returning(audit_log.c.id),
        {
            "at_us": now_us,
            "actor": actor[:_MAX_ACTOR],
            "action": action,
            "details": json.dumps(dict(details or {}), ensure_ascii=False, default=str),
            "client": client[:64] if client else None,
        },
    ).scalar_one()
    return entry_id


def entries(
    db: Database,
    *,
    action: str | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Newest first; ``before_id`` / ``after_id`` page to older / newer entries."""
    query = select(audit_log)
    if action:
        query = query.where(audit_log.c.action == action)
    if after_id is not None:
        query = query.where(audit_log.c.id > after_id).order_by(audit_log.c.id).limit(limit)
    else:
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        query = query.order_by(audit_log.c.id.desc()).limit(limit)
    with db.read() as conn:
        rows = conn.execute(query).all()
        refused = _refusals(conn, [row.id for row in rows if row.action == SIGN_IN_THROTTLED])
    found = [
        AuditEntry(
            row.id,
            row.at_us,
            row.actor,
            row.action,
            {**json.loads(row.details), **refused.get(row.id, {})},
            row.client,
        )
        for row in rows
    ]
    return sorted(found, key=lambda entry: -entry.id)


def _refusals(conn: Connection, entry_ids: list[int]) -> dict[int, dict[str, int]]:
    """How many attempts each sign-in pause refused, by its entry's id."""
    if not entry_ids:
        return {}
    counts = conn.execute(
        select(sign_in_refusals.c.audit_id, sign_in_refusals.c.refused).where(
            sign_in_refusals.c.audit_id.in_(entry_ids)
        )
    )
    return {entry_id: {"refused_attempts": int(refused)} for entry_id, refused in counts}


@dataclass(frozen=True, slots=True)
class Archived:
    entries: int
    sha256: str


def archive(
    db: Database,
    *,
    before_us: int,
    output: BinaryIO,
    file_name: str,
    actor: str,
    now_us: int,
) -> Archived:
    """Move the entries older than ``before_us`` into ``output`` (JSON Lines, oldest
    first, each with its details as shown), then delete them and record the archive
    (how many, and the file's SHA-256) as an entry of its own, in one transaction.

    ``output`` is flushed and synced before anything is deleted; if fewer or more rows
    would be deleted than were written, nothing is."""
    digest = hashlib.sha256()
    count, last_id = 0, 0
    with db.read() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.at_us < before_us).order_by(audit_log.c.id)
        ).all()
        throttled = [row.id for row in rows if row.action == SIGN_IN_THROTTLED]
        refused = _refusals(conn, throttled)
    for row in rows:
        details = {**json.loads(row.details), **refused.get(row.id, {})}
        line = json.dumps(
            {"id": row.id, "at_us": row.at_us, "actor": row.actor, "action": row.action}
            | {"details": details, "client": row.client},
            ensure_ascii=False,
        )
        data = (line + "\n").encode()
        output.write(data)
        digest.update(data)
        count, last_id = count + 1, row.id
    output.flush()
    os.fsync(output.fileno())
    archived = Archived(count, digest.hexdigest())
    with db.write() as conn, audit_log_deletes_allowed(conn):
        deleted = conn.execute(
            delete(audit_log).where(audit_log.c.id <= last_id, audit_log.c.at_us < before_us)
        ).rowcount
        if deleted != count:
            raise RuntimeError(f"{deleted} entries to delete, {count} archived: nothing deleted")
        if throttled:
            conn.execute(delete(sign_in_refusals).where(sign_in_refusals.c.audit_id.in_(throttled)))
        record_in(
            conn,
            actor=actor,
            action=AUDIT_ARCHIVED,
            details={"file": file_name, "entries": count, "sha256": archived.sha256},
            now_us=now_us,
        )
    return archived


def has_entries(
    db: Database, *, action: str | None, before_id: int | None = None, after_id: int | None = None
) -> bool:
    """Whether any entry is older than ``before_id`` (or newer than ``after_id``)."""
    return bool(entries(db, action=action, before_id=before_id, after_id=after_id, limit=1))
