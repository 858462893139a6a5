"""Revision 0008 marks the requests without usage stored before it, and counts them in
every rollup, so ``verify`` is clean and reports count them at once."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger import reports
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.store import migrate
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW_US = 2**62  # far future: nothing is refused as "in the future"
CUT = {"gateway": "chat.completions", "usage_missing": True}


def test_requests_without_usage_stored_before_are_marked_and_counted(db: Database) -> None:
    events = [
        make_event(
            event_id="a", user={"id": "ann"}, started_at="2026-11-20T10:00:00Z", metadata=CUT
        ),
        make_event(
            event_id="b", user={"id": "ann"}, started_at="2026-11-22T23:59:00Z", metadata=CUT
        ),
        make_event(
            event_id="c", user={"id": "bo"}, started_at="2026-11-21T08:00:00Z", metadata=CUT
        ),
        make_event(event_id="d", user={"id": "bo"}, metadata={"app": {"usage_missing": True}}),
        make_event(event_id="e", user={"id": "cy"}, metadata={"usage_missing": "yes"}),
    ]
    assert ingest(UsageStore(db), events, now_us=NOW_US).count("accepted") == 5
    config = migrate.alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")  # as stored by the version before
    with db.read() as conn:
        columns = conn.execute(text("SELECT * FROM events LIMIT 1")).keys()
    assert "usage_missing" not in columns
    migrate.upgrade(db)

    store = UsageStore(db)
    assert not any(store.verify().values())
    with db.read() as conn:
        marked = sorted(
            row[0]
            for row in conn.execute(text("SELECT event_id FROM events WHERE usage_missing = 1"))
        )
    assert marked == ["a", "b", "c"]
    week = LocalRange.of(date(2026, 11, 18), date(2026, 11, 25), zone("Asia/Kathmandu"))
    report = reports.user_usage(store, local_range=week, limit=10)
    by_user = {row.user_id: row.usage.usage_missing_requests for row in report.rows}
    assert by_user == {"ann": 2, "bo": 1, "cy": 0}
    assert report.totals.usage_missing_requests == 3
