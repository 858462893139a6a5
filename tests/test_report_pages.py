"""The User Usage page counted, summed and cut in SQL is the page the full sort in
Python gives: same rows in the same order (ties by user id), same count and totals,
for every order the database sorts, on both backends."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import make_event
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, to_us
from tokenledger.ordering import SPAN_SORTS, TEXT_SORTS, sql_order
from tokenledger.reports import UserFilter, all_rows, user_usage
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW = datetime(2026, 11, 26, tzinfo=UTC)
NAMES = ("Nguyễn", "Zoë", "zoe", "Åsa", "Ana", "Łukasz", "Émile", "bob")


def _fill(store: UsageStore) -> None:
    rng = random.Random(18)
    events = []
    for index in range(160):
        user = rng.randrange(45)
        started = NOW - timedelta(days=rng.randrange(20), minutes=rng.randrange(24 * 60))
        events.append(
            make_event(
                user={"id": f"{NAMES[user % len(NAMES)]}-{user:02}", "name": NAMES[user % 8]},
                started_at=started.isoformat(),
                # Few distinct values: many ties to break by user id.
                input_tokens=rng.choice((0, 10, 10, 20)),
                output_tokens=rng.choice((0, 5, 5)),
                status="error" if index % 7 == 0 else "ok",
                event_id=f"e-{index}",
            )
        )
    result = ingest(store, events, now_us=to_us(NOW))
    assert result.count("accepted") == len(events), result.outcomes


def test_sql_pages_are_the_python_sort_cut(db: Database) -> None:
    store = UsageStore(db)
    _fill(store)
    metrics = store.metrics
    zone = ZoneInfo("Asia/Kolkata")  # +05:30: whole days and edge hours
    ranges = [
        LocalRange.of(date(2026, 11, 10), date(2026, 11, 25), zone),
        LocalRange.of(date(2026, 11, 25), date(2026, 11, 25), zone),
    ]
    sorts = [
        f"{sign}{column}"
        for column in (*metrics.public_names, *SPAN_SORTS)
        for sign in ("", "-")
        if column not in TEXT_SORTS and column != "first_request_at"
    ]
    compared = 0
    for local_range in ranges:
        for q in (None, "zo", "nguyen"):
            users = UserFilter(q=q)
            for sort in sorts:
                with store.read() as reader:
                    everything = all_rows(reader, local_range, users, sort=sort)
                totals = metrics.totals(row.usage.raw for row in everything)
                for offset, limit in ((0, 50), (3, 7), (40, 50), (500, 5)):
                    assert sql_order(sort, metrics, limit=limit, offset=offset) is not None
                    report = user_usage(
                        store,
                        local_range=local_range,
                        users=users,
                        sort=sort,
                        limit=limit,
                        offset=offset,
                    )
                    expected = everything[offset : offset + limit]
                    assert [(r.user_id, r.name, r.usage.raw) for r in report.rows] == [
                        (r.user_id, r.name, r.usage.raw) for r in expected
                    ], (sort, q, offset)
                    assert report.total_users == len(everything)
                    assert report.totals.raw == totals
                    compared += len(expected)
    assert compared > 1000


def test_orders_by_text_or_first_request_stay_in_python() -> None:
    for sort in ("user_id", "-name", "email", "first_request_at", "-first_request_at"):
        assert sql_order(sort, limit=50, offset=0) is None
    assert sql_order("-total_tokens", limit=50, offset=0) is not None
