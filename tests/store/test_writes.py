"""The write path: idempotent under concurrency, rollups always equal the events."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.demo import demo_events
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
NOW_US = to_us(NOW)


def _run_parallel(count: int, work: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _totals(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        events = conn.execute(text("SELECT count(*), sum(input_tokens) FROM events")).one()
    return int(events[0]), int(events[1] or 0)


def test_twenty_parallel_posts_of_one_event_count_once(db: Database) -> None:
    event = make_event()
    results = _run_parallel(20, lambda _: ingest(UsageStore(db), [event], now_us=NOW_US))
    statuses = sorted(result.outcomes[0].status for result in results)
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert _totals(db) == (1, 100)
    assert not any(UsageStore(db).verify().values())


def test_overlapping_concurrent_batches_are_exact(db: Database) -> None:
    rng = random.Random(5)
    pool = [
        make_event(
            event_id=f"shared-{n}",
            user={"id": f"user-{rng.randrange(12)}", "name": f"Name {n % 7}"},
            started_at=(NOW - timedelta(minutes=rng.randrange(60 * 24 * 40))).isoformat(),
            input_tokens=rng.randrange(1000),
        )
        for n in range(600)
    ]

    def writer(index: int) -> list[Any]:
        local = random.Random(index)
        outcomes = []
        for _ in range(6):
            batch = local.sample(pool, 80)
            outcomes += ingest(UsageStore(db), batch, now_us=NOW_US).outcomes
            outcomes += ingest(UsageStore(db), batch, now_us=NOW_US).outcomes  # sent twice
        return outcomes

    outcomes = [outcome for found in _run_parallel(8, writer) for outcome in found]
    # What was sent is known without the database: every event of every batch.
    sent = {
        event["event_id"]
        for index in range(8)
        for batch in _batches(pool, index)
        for event in batch
    }
    accepted = [outcome.event_id for outcome in outcomes if outcome.status == "accepted"]
    assert sorted(accepted) == sorted(sent)  # each sent event accepted exactly once
    assert all(outcome.status in {"accepted", "duplicate"} for outcome in outcomes)
    with db.read() as conn:
        stored_ids = {row[0] for row in conn.execute(text("SELECT event_id FROM events"))}
    assert stored_ids == sent
    expected = [event for event in pool if event["event_id"] in sent]
    assert _totals(db) == (len(expected), sum(event["input_tokens"] for event in expected))
    assert not any(UsageStore(db).verify().values())


def _batches(pool: list[dict[str, Any]], index: int) -> list[list[dict[str, Any]]]:
    """The batches writer ``index`` sends (the same draws as the writer makes)."""
    local = random.Random(index)
    return [local.sample(pool, 80) for _ in range(6)]


def test_random_ingest_in_any_order_keeps_rollups_exact(db: Database) -> None:
    rng = random.Random(11)
    events = [
        make_event(
            user={"id": f"u{rng.randrange(30)}"},
            started_at=(NOW - timedelta(seconds=rng.randrange(86400 * 400))).isoformat(),
            input_tokens=rng.randrange(5000),
            output_tokens=rng.randrange(5000),
            status=rng.choice(["ok", "ok", "error"]),
            duration_ms=rng.randrange(60_000),
        )
        for _ in range(1500)
    ]
    for start in range(0, len(events), 97):  # backfills interleaved with recent events
        ingest(UsageStore(db), events[start : start + 97], now_us=NOW_US)
    assert UsageStore(db).verify() == dict.fromkeys(UsageStore(db).verify(), 0)
    assert _totals(db) == (1500, sum(e["input_tokens"] for e in events))


def test_verify_is_clean_after_demo_and_detects_tampering(db: Database) -> None:
    demo = list(demo_events(now=NOW, days=20, users=25, seed=3))
    for start in range(0, len(demo), 1000):
        ingest(UsageStore(db), demo[start : start + 1000], now_us=NOW_US)
    assert len(demo) > 500
    assert not any(UsageStore(db).verify().values())
    with db.write() as conn:
        conn.execute(
            text(
                "UPDATE rollup_user_hour SET requests = requests + 1 WHERE bucket = "
                "(SELECT min(bucket) FROM rollup_user_hour)"
            )
        )
        conn.execute(
            text(
                "DELETE FROM rollup_total_quarter WHERE bucket = "
                "(SELECT max(bucket) FROM rollup_total_quarter)"
            )
        )
    differences = UsageStore(db).verify()
    assert differences["rollup_user_hour"] > 0
    assert differences["rollup_total_quarter"] > 0
    UsageStore(db).rebuild()
    assert not any(UsageStore(db).verify().values())


def test_demo_twice_adds_nothing(db: Database) -> None:
    demo = list(demo_events(now=NOW, days=5, users=10))
    first = ingest(UsageStore(db), demo[:1000], now_us=NOW_US)
    again = ingest(UsageStore(db), demo[:1000], now_us=NOW_US)
    assert first.count("accepted") == min(1000, len(demo))
    assert again.count("duplicate") == min(1000, len(demo))


def test_a_batch_is_a_few_statements_whatever_its_size(db: Database) -> None:
    """PostgreSQL gets a batch's rows as one array per column: the statements and
    their texts are the same for 100 events as for 1,000, and none is run once per
    row (the driver parses every statement's text in Python, uncached when long; a
    statement per row is a round trip per row). A single event (a gateway request)
    keeps the statements per row, cheaper to plan. SQLite runs in the process and
    keeps its per-row statements."""
    from sqlalchemy import event as sa_event

    seen: list[tuple[str, bool]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _ctx: Any, many: bool
    ) -> None:
        seen.append((statement, many))

    rng = random.Random(5)

    def batch(size: int, offset: int) -> list[dict[str, Any]]:
        return [
            make_event(
                event_id=f"size-{size}-{offset + n}",
                user={"id": f"p{n if offset == 0 else rng.randrange(1000)}"},
                model=rng.choice(["gpt-4o", "claude-sonnet-4"]),
                started_at=(NOW - timedelta(hours=rng.randrange(24 * 90))).isoformat(),
            )
            for n in range(size)
        ]

    store = UsageStore(db)
    ingest(store, batch(1000, 0), now_us=NOW_US)  # the 1,000 people and many rollup rows
    sa_event.listen(db.engine, "before_cursor_execute", record)
    try:
        shapes = []
        for size in (100, 1000, 1):
            seen.clear()
            ingest(store, batch(size, 10_000), now_us=NOW_US)
            shapes.append(([len(statement) for statement, _ in seen], [m for _, m in seen]))
            texts = [statement for statement, _ in seen]
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", record)
    (small, _), (large, large_many), _ = shapes
    if db.dialect.at_once(1000):
        assert large == small  # the same statements, texts of the same length
        assert not any(large_many)
        assert max(large) < 5000
    else:
        assert any(large_many)  # SQLite: the per-row statements, prepared once
    assert not any("unnest(CAST(%b" in text for text in texts)  # one event: row by row
    assert not any(UsageStore(db).verify().values())
