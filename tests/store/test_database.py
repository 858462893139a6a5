"""Transactions: a read is one snapshot; a connection that cannot write is replaced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import make_event
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.store.database import CACHE_KIB, SCAN_CACHE_KIB, Database, DatabaseUnavailable
from tokenledger.store.usage_store import UsageStore

NOW_US = to_us(datetime(2026, 11, 25, 12, tzinfo=UTC))


def test_a_read_sees_one_snapshot_while_writers_commit(db: Database) -> None:
    # A report runs several statements (whole days, edge hours, quarters); a batch
    # committed between two of them must be seen by all of them or by none.
    ingest(UsageStore(db), [make_event()], now_us=NOW_US)
    count = text("SELECT count(*) FROM events")
    with db.read() as conn:
        before = conn.execute(count).scalar_one()
        ingest(UsageStore(db), [make_event(), make_event()], now_us=NOW_US)
        assert conn.execute(count).scalar_one() == before == 1
        assert conn.execute(text("SELECT sum(requests) FROM rollup_total_hour")).scalar() == 1
    with db.read() as conn:
        assert conn.execute(count).scalar_one() == 3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_sqlite_connection_that_cannot_write_is_replaced(db: Database) -> None:
    # A connection opened while the file was read-only keeps failing even after the
    # file is writable again; query_only puts a pooled connection in that state.
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA query_only = ON")
    with pytest.raises(DatabaseUnavailable, match="readonly"):
        ingest(UsageStore(db), [make_event()], now_us=NOW_US)
    assert ingest(UsageStore(db), [make_event()], now_us=NOW_US).count("accepted") == 1


def test_no_free_connection_in_time_is_unavailable(database_url: str) -> None:
    # Every pooled connection busy (a slow or locked database): a 503, not a 500.
    db = Database(create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1))
    try:
        with (
            db.engine.connect(),
            pytest.raises(DatabaseUnavailable, match="no free"),
            db.read(),
        ):
            pass
    finally:
        db.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_scans_run_with_a_small_page_cache_and_reports_with_a_large_one(
    db: Database,
) -> None:
    # SQLite's page cache is per connection, in this process: a scan's (an events
    # export's pages, read once) stays small, the reports' stays large.
    size = "PRAGMA cache_size"
    with db.read() as conn:
        assert conn.exec_driver_sql(size).scalar() == -CACHE_KIB
    with db.scan() as conn:
        assert conn.exec_driver_sql(size).scalar() == -SCAN_CACHE_KIB
    assert SCAN_CACHE_KIB * 8 <= CACHE_KIB
