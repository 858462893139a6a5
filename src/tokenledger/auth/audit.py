"""The audit log: who signed in, changed an account or a key, or exported usage.

Append-only from the application's side: this module only inserts and reads, and a
database trigger refuses UPDATE and DELETE on ``audit_log`` (migration 0002).

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
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from tokenledger.store.database import Database
from tokenledger.store.schema import audit_log

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGN_OUT = "sign_out"
ACCOUNT_CREATED = "account_created"
ACCOUNT_CHANGED = "account_changed"
ACCOUNT_DISABLED = "account_disabled"
ACCOUNT_ENABLED = "account_enabled"
KEY_CREATED = "key_created"
KEY_REVOKED = "key_revoked"
EXPORT_STARTED = "export_started"  # when an export begins (its filters)
EXPORT = "export"  # when it ends: its filters, the rows that left, complete or not
ACTIONS = (
    SIGN_IN,
    SIGN_IN_FAILED,
    SIGN_OUT,
    ACCOUNT_CREATED,
    ACCOUNT_CHANGED,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    KEY_CREATED,
    KEY_REVOKED,
    EXPORT_STARTED,
    EXPORT,
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
) -> None:
    """Append one entry inside the caller's write transaction."""
    conn.execute(
        audit_log.insert(),
        {
            "at_us": now_us,
            "actor": actor[:_MAX_ACTOR],
            "action": action,
            "details": json.dumps(dict(details or {}), ensure_ascii=False, default=str),
            "client": client[:64] if client else None,
        },
    )


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
    found = [
        AuditEntry(row.id, row.at_us, row.actor, row.action, json.loads(row.details), row.client)
        for row in rows
    ]
    return sorted(found, key=lambda entry: -entry.id)


def has_entries(
    db: Database, *, action: str | None, before_id: int | None = None, after_id: int | None = None
) -> bool:
    """Whether any entry is older than ``before_id`` (or newer than ``after_id``)."""
    return bool(entries(db, action=action, before_id=before_id, after_id=after_id, limit=1))
