"""PostgreSQL reports run without parallel workers (store/dialect.py: keep_serial)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tests.conftest import make_event
from tests.store.test_writes import NOW_US
from tokenledger.ingest import ingest
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_report_keeps_its_own_transaction_serial_only(db: Database) -> None:
    store = UsageStore(db)
    ingest(store, [make_event()], now_us=NOW_US)

    def workers(conn: Connection) -> str:
        return str(conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar())

    with store.read() as reader:
        before = workers(reader.conn)
        found = reader.per_user(NOW_US - 86_400_000_000, NOW_US, UserFilter())
        during = workers(reader.conn)
    with store.read() as reader:
        after = workers(reader.conn)
    assert sum(values[0] for values in found.values()) == 1  # the report itself
    assert before == after != "0"  # the server's setting, untouched elsewhere
    assert during == "0"
