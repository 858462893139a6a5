"""The metric registry: a metric declared once is written, reported, verified and
exported with no other code change."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, text

from tests.conftest import make_event
from tokenledger.export import CsvExport, ExportRequest
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.metrics import METRICS, Contribution, Derived, Metric, MetricSet, Unit, one
from tokenledger.reports import usage_series, user_usage
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW_US = 2**62

# A made-up price: 3 nano-dollars per input token and 11 per output token. Declared
# here, once; nothing else in this test names its columns or its arithmetic.
FAKE_COST = Metric(
    "fake_cost_nanos",
    Contribution(
        python=lambda event: 3 * event.input_tokens + 11 * event.output_tokens,
        sql=lambda events: events.c.input_tokens * 3 + events.c.output_tokens * 11,
    ),
    unit=Unit.NANO_USD,
    public_name="fake_cost_usd",
    label="Fake cost",
)


def _cost(event: dict[str, Any]) -> int:
    return 3 * event["input_tokens"] + 11 * event["output_tokens"]


def _migrate(store: UsageStore, metric: Metric) -> None:
    """What the metric's migration does: a column in every rollup table."""
    with store.db.engine.begin() as conn:
        operations = Operations(MigrationContext.configure(conn))
        for level, table in store.tables.items():
            name = f"cum_{metric.name}" if level.grain.running else metric.name
            column = table.c[name]
            operations.add_column(
                table.name,
                Column(name, column.type, nullable=False, server_default=column.server_default),
            )


@pytest.fixture
def store(db: Database) -> UsageStore:
    store = UsageStore(db, metrics=METRICS.plus(FAKE_COST))
    _migrate(store, FAKE_COST)
    return store


EVENTS = [
    make_event(user={"id": "ana", "name": "Ana"}, started_at="2026-11-24T23:50:00Z"),
    make_event(
        user={"id": "ana", "name": "Ana"},
        started_at="2026-11-25T10:00:00Z",
        input_tokens=1000,
        output_tokens=7,
    ),
    make_event(
        user={"id": "bo", "name": "Bo"},
        started_at="2026-11-25T11:30:00Z",
        input_tokens=5,
        output_tokens=2000,
    ),
    make_event(user={"id": "bo", "name": "Bo"}, started_at="2026-11-26T00:15:00Z"),
]


def _range(start: str, end: str) -> LocalRange:
    return LocalRange.of(date.fromisoformat(start), date.fromisoformat(end), zone("Asia/Kolkata"))


def test_a_metric_declared_once_is_written_reported_verified_and_exported(
    store: UsageStore,
) -> None:
    assert ingest(store, EVENTS, now_us=NOW_US).count("accepted") == 4

    # Writes: every rollup table holds its sums.
    with store.db.read() as conn:
        for level in store.levels:
            column = f"cum_{FAKE_COST.name}" if level.grain.running else FAKE_COST.name
            total = conn.execute(text(f"SELECT sum({column}) FROM {level.table}")).scalar()
            if not level.grain.running:
                assert total == sum(_cost(event) for event in EVENTS), level.table

    # Reports: per user, in the totals, as a sort key, in series. 2026-11-25 in
    # Kolkata is 2026-11-24T18:30Z to 2026-11-25T18:30Z: the first three events.
    day = _range("2026-11-25", "2026-11-25")
    report = user_usage(store, local_range=day, sort="-fake_cost_usd")
    assert [row.user_id for row in report.rows] == ["bo", "ana"]
    assert [row.usage["fake_cost_usd"] for row in report.rows] == [
        _cost(EVENTS[2]),
        _cost(EVENTS[0]) + _cost(EVENTS[1]),
    ]
    assert report.totals["fake_cost_usd"] == sum(_cost(event) for event in EVENTS[:3])
    ascending = user_usage(store, local_range=day, sort="fake_cost_usd")
    assert [row.user_id for row in ascending.rows] == ["ana", "bo"]
    week = _range("2026-11-20", "2026-11-26")
    assert user_usage(store, local_range=week).totals["fake_cost_usd"] == sum(
        _cost(event) for event in EVENTS
    )
    series = usage_series(store, local_range=_range("2026-11-25", "2026-11-26"), interval="day")
    assert [point.usage["fake_cost_usd"] for point in series] == [
        sum(_cost(event) for event in EVENTS[:3]),
        _cost(EVENTS[3]),
    ]
    assert report.totals.json_values()["fake_cost_usd"] == "0.000025832"  # exact dollars

    # Verify: clean, and it sees a wrong value of the new column; rebuild repairs it.
    assert not any(store.verify().values())
    with store.db.write() as conn:
        conn.execute(text("UPDATE rollup_user_hour SET fake_cost_nanos = fake_cost_nanos + 1"))
        conn.execute(text("UPDATE rollup_user_day SET cum_fake_cost_nanos = 0"))
    differences = store.verify()
    assert differences["rollup_user_hour"] > 0
    assert differences["rollup_user_day"] > 0
    store.rebuild()
    assert not any(store.verify().values())

    # The summary export: a column at the end, exact dollars.
    body = b"".join(CsvExport(store, ExportRequest(local_range=day)))
    header, *rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert header[-1] == "fake_cost_usd"
    assert header[:-1] == list(
        CsvExport(UsageStore(store.db), ExportRequest(local_range=day)).columns
    )
    by_user = {row[0]: Decimal(row[-1]) for row in rows}
    assert by_user == {
        "bo": Decimal(_cost(EVENTS[2])).scaleb(-9),
        "ana": Decimal(_cost(EVENTS[0]) + _cost(EVENTS[1])).scaleb(-9),
    }
    daily = b"".join(CsvExport(store, ExportRequest(local_range=day, granularity="daily")))
    assert daily.splitlines()[0].endswith(b",timezone,cost_usd,unpriced_requests,fake_cost_usd")


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="unique"):
        METRICS.plus(Metric("requests", one()))
    with pytest.raises(ValueError, match="unknown metrics"):
        MetricSet((Metric("a", one()), Derived("b", ("a", "c"))))
    assert METRICS.public_names[:5] == (
        "requests",
        "error_requests",
        "input_tokens",
        "output_tokens",
        "total_tokens",
    )
