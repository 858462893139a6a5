"""Retention: delete raw events older than a horizon, keep every rollup.

The horizon is a UTC midnight recorded in ``ledger_state`` (``retained_from_us``)
before any event is deleted, and it never moves back. Events that started before it
are deleted a small batch at a time, each batch its own short write transaction, so
ingest and reports wait at most one batch. Rollups are never touched: every report
over an old range still answers exactly from them (reports read rollups only; the raw
slivers of a zone with a historical non-quarter-hour offset are refused before the
horizon, see :class:`EventsRemoved`).

What else follows from the horizon: ingest refuses an event that started before it
(it could be a resend of a deleted event, which would count twice), ``verify`` and
``rebuild-rollups`` cover only the retained window, the events export says when its
range starts before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tokenledger.localdays import US_PER_DAY
from tokenledger.store.database import Database

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore

HORIZON = "retained_from_us"
BATCH_SIZE = 1000


class EventsRemoved(ValueError):
    """A query needs raw events from before the retention horizon, which are deleted."""

    def __init__(self, horizon_us: int) -> None:
        super().__init__(
            "this range needs raw events from before the retention horizon, which were "
            "deleted; choose dates in another time zone or after the horizon"
        )
        self.horizon_us = horizon_us


@dataclass(frozen=True)
class RetentionRun:
    horizon_us: int
    deleted: int
    batches: int


def horizon(conn: Connection) -> int | None:
    """The instant before which raw events are deleted (None: all are kept)."""
    value = conn.execute(
        text("SELECT value FROM ledger_state WHERE name = :name"), {"name": HORIZON}
    ).scalar()
    return None if value is None else int(value)


def retained_from(db: Database) -> int | None:
    """:func:`horizon` in its own short read."""
    with db.read() as conn:
        return horizon(conn)


def cutoff(now_us: int, days: int) -> int:
    """The UTC midnight ``days`` whole days before the day of ``now_us``: a horizon on a
    day boundary is on a boundary of every rollup bucket too."""
    return (now_us // US_PER_DAY - days) * US_PER_DAY


def run(store: UsageStore, *, horizon_us: int, batch_size: int = BATCH_SIZE) -> RetentionRun:
    """Record ``horizon_us`` (or keep a later one), then delete the events that started
    before it, ``batch_size`` per transaction, oldest first."""
    if horizon_us % US_PER_DAY:
        raise ValueError("the retention horizon must be a UTC midnight")
    db = store.db
    recorded = db.run_write(lambda conn: _advance(conn, horizon_us))
    deleted = batches = 0
    while True:
        count = db.run_write(lambda conn: _delete_batch(conn, recorded, batch_size))
        if count == 0:
            break
        deleted += count
        batches += 1
        if count < batch_size:
            break
    return RetentionRun(horizon_us=recorded, deleted=deleted, batches=batches)


def _advance(conn: Connection, horizon_us: int) -> int:
    current = horizon(conn)
    if current is None:
        conn.execute(
            text("INSERT INTO ledger_state (name, value) VALUES (:name, :value)"),
            {"name": HORIZON, "value": horizon_us},
        )
        return horizon_us
    if horizon_us > current:
        conn.execute(
            text("UPDATE ledger_state SET value = :value WHERE name = :name"),
            {"name": HORIZON, "value": horizon_us},
        )
        return horizon_us
    return current


def _delete_batch(conn: Connection, horizon_us: int, batch_size: int) -> int:
    return int(
        conn.execute(
            text(
                "DELETE FROM events WHERE id IN (SELECT id FROM events "
                "WHERE started_us < :horizon ORDER BY started_us, id LIMIT :n)"
            ),
            {"horizon": horizon_us, "n": batch_size},
        ).rowcount
    )
