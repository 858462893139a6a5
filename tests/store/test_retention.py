"""Retention: raw events before a horizon are deleted in small batches, every report
over any range answers exactly as before, ``verify`` covers the retained window."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger import retention as retention_task
from tokenledger.export import CsvExport, ExportRequest
from tokenledger.ingest import ingest
from tokenledger.localdays import US_PER_DAY, LocalRange, to_us, zone
from tokenledger.reports import all_rows, usage_series, user_usage
from tokenledger.store import demo_data, retention
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DAYS = 10  # retention
# Zones with DST, +05:30, +05:45, +12:45 and a 30-minute DST (Lord Howe).
ZONES = (
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
)
RANGES = (
    (date(2026, 10, 1), date(2026, 11, 25)),  # everything
    (date(2026, 10, 20), date(2026, 10, 20)),  # one old day, all deleted
    (date(2026, 11, 10), date(2026, 11, 18)),  # across the horizon
    (date(2026, 11, 2), date(2026, 11, 2)),  # the DST change in New York
)


@pytest.fixture
def store(db: Database) -> UsageStore:
    return UsageStore(db)


def _events(count: int) -> list[dict[str, Any]]:
    rng = random.Random(20)
    events = []
    for n in range(count):
        instant = NOW - timedelta(microseconds=rng.randrange(40 * US_PER_DAY))
        person = rng.randrange(6)
        events.append(
            make_event(
                event_id=f"r{n}",
                user={"id": f"u{person}", "name": f"Person {person}"},
                started_at=instant.isoformat(),
                input_tokens=rng.randrange(1000),
                output_tokens=rng.randrange(100),
                status=rng.choice(["ok", "ok", "error"]),
            )
        )
    return events


def _reports(store: UsageStore) -> list[Any]:
    """Every kind of report over every zone and range, as plain values."""
    seen: list[Any] = []
    for name in ZONES:
        tz = zone(name)
        for start, end in RANGES:
            local = LocalRange.of(start, end, tz)
            for users in (UserFilter(), UserFilter(q="person 3"), UserFilter(user_id="u1")):
                report = user_usage(store, local_range=local, users=users)
                seen.append((report.total_users, report.totals.raw))
                seen.append([(row.user_id, row.usage.raw) for row in report.rows])
                with store.read() as reader:
                    rows = all_rows(reader, local, users, sort="-total_tokens")
                seen.append([(row.user_id, row.usage.raw) for row in rows])
            for point in usage_series(store, local_range=local, interval="day"):
                seen.append((point.start, point.usage.raw))
            if start == end:
                for point in usage_series(store, local_range=local, interval="hour", q="person"):
                    seen.append((point.start, point.usage.raw))
            for granularity in ("summary", "daily"):
                request = ExportRequest(local_range=local, granularity=granularity)
                seen.append(b"".join(CsvExport(store, request)))
    return seen


def _event_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def test_reports_are_identical_after_retention_and_verify_covers_the_window(
    store: UsageStore,
) -> None:
    events = _events(500)
    for start in range(0, len(events), 100):
        assert ingest(store, events[start : start + 100], now_us=to_us(NOW)).count("accepted")
    horizon = retention.cutoff(to_us(NOW), DAYS)
    old = sum(1 for e in events if to_us(datetime.fromisoformat(e["started_at"])) < horizon)
    assert 0 < old < len(events)
    before = _reports(store)

    done = retention_task.apply(store, days=DAYS, now=to_us(NOW), batch_size=37)

    assert (done.horizon_us, done.deleted) == (horizon, old)
    assert done.batches == math.ceil(old / 37)  # bounded transactions, none larger
    assert _event_count(store.db) == len(events) - old
    assert _reports(store) == before
    assert not any(store.verify().values())
    assert retention.retained_from(store.db) == horizon
    # Nothing more to delete; an earlier horizon does not move it back.
    again = retention.run(store, horizon_us=horizon - 5 * US_PER_DAY, batch_size=37)
    assert (again.horizon_us, again.deleted, again.batches) == (horizon, 0, 0)


def test_verify_still_finds_differences_in_the_window_and_rebuild_keeps_the_past(
    store: UsageStore,
) -> None:
    events = _events(300)
    ingest(store, events, now_us=to_us(NOW))
    retention_task.apply(store, days=DAYS, now=to_us(NOW))
    before = _reports(store)
    horizon_day = retention.cutoff(to_us(NOW), DAYS) // US_PER_DAY
    with store.db.write() as conn:
        conn.execute(
            text("UPDATE rollup_user_day SET cum_requests = cum_requests + 1 WHERE day >= :d"),
            {"d": horizon_day + 2},
        )
        conn.execute(
            text(
                "DELETE FROM rollup_total_hour "
                "WHERE bucket = (SELECT max(bucket) FROM rollup_total_hour)"
            )
        )
    differences = store.verify()
    assert differences["rollup_user_day"] > 0
    assert differences["rollup_total_hour"] == 1
    store.rebuild()
    assert not any(store.verify().values())
    assert _reports(store) == before  # the rollups before the horizon were kept


def test_a_wrong_base_before_the_horizon_shows_in_verify(store: UsageStore) -> None:
    ingest(store, _events(200), now_us=to_us(NOW))
    retention_task.apply(store, days=DAYS, now=to_us(NOW))
    horizon_day = retention.cutoff(to_us(NOW), DAYS) // US_PER_DAY
    with store.db.write() as conn:  # only the last row before the horizon: the base
        conn.execute(
            text(
                "UPDATE rollup_user_day SET cum_input_tokens = cum_input_tokens + 5 "
                "WHERE day = (SELECT max(day) FROM rollup_user_day d "
                "WHERE d.user_pk = rollup_user_day.user_pk AND d.day < :d)"
            ),
            {"d": horizon_day},
        )
    assert store.verify()["rollup_user_day"] > 0


def test_an_event_before_the_horizon_is_refused_not_counted_twice(store: UsageStore) -> None:
    events = _events(200)
    ingest(store, events, now_us=to_us(NOW))
    retention_task.apply(store, days=DAYS, now=to_us(NOW))
    before = _reports(store)
    horizon = retention.cutoff(to_us(NOW), DAYS)
    deleted = next(e for e in events if to_us(datetime.fromisoformat(e["started_at"])) < horizon)
    kept = next(e for e in events if to_us(datetime.fromisoformat(e["started_at"])) >= horizon)
    result = ingest(store, [deleted, kept], now_us=to_us(NOW))
    assert [o.status for o in result.outcomes] == ["rejected", "duplicate"]
    rejection = result.outcomes[0].rejection
    assert rejection is not None
    assert [(e.code, e.field) for e in rejection.errors] == [("before_retention", "started_at")]
    assert _reports(store) == before


def test_a_raw_sliver_before_the_horizon_is_refused_after_it_answered(
    store: UsageStore,
) -> None:
    ingest(store, _events(200), now_us=to_us(NOW))
    horizon = retention.cutoff(to_us(NOW), DAYS)
    # Not on a quarter hour: the edges are read from the raw events.
    lo, hi = horizon - 3 * US_PER_DAY + 7, horizon + US_PER_DAY + 11
    with store.read() as reader:
        assert reader.per_user(lo, hi, UserFilter())
    retention_task.apply(store, days=DAYS, now=to_us(NOW))
    with store.read() as reader, pytest.raises(retention.EventsRemoved):
        reader.per_user(lo, hi, UserFilter())
    with store.read() as reader, pytest.raises(retention.EventsRemoved):
        reader.series([(lo, hi)], UserFilter())
    with store.read() as reader:  # after the horizon, slivers still come from events
        assert reader.per_user(horizon + 7, hi, UserFilter())


def test_demo_data_removed_after_retention_leaves_consistent_totals(store: UsageStore) -> None:
    events = _events(400)
    for n, event in enumerate(events):  # the demo's event ids: demo-<user>-<time>-<n>
        if event["user"]["id"] in ("u0", "u1"):
            event["event_id"] = f"demo-{event['user']['id']}-20261101T000000-{n}"
    ingest(store, events, now_us=to_us(NOW))
    demo_data.mark_demo_users(store.db, external_ids=["u0", "u1"])
    retention_task.apply(store, days=DAYS, now=to_us(NOW))
    removed = demo_data.remove_demo_data(store)
    assert removed.users == 2
    assert not any(store.verify().values())
    local = LocalRange.of(date(2026, 10, 1), date(2026, 11, 25), zone("Asia/Kolkata"))
    everyone = usage_series(store, local_range=local, interval="day")  # the totals rollup
    by_person = usage_series(store, local_range=local, interval="day", q="person")
    assert [point.usage.raw for point in everyone] == [point.usage.raw for point in by_person]
    kept = [e for e in events if e["user"]["id"] not in ("u0", "u1")]
    report = user_usage(store, local_range=local)
    assert report.totals.requests == len(kept)
    assert {row.user_id for row in report.rows} == {"u2", "u3", "u4", "u5"}
