"""Rollups declared once: a new rollup (per user and model, or per model alone) is
written, verified, rebuilt and read by range with no other code change."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.ingest import ingest
from tokenledger.localdays import US_PER_DAY, US_PER_HOUR, to_us
from tokenledger.store.database import Database
from tokenledger.store.rollups import ROLLUPS, USER_MODEL_ROLLUP, Grain, Rollup, event_column
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
MODEL, PROVIDER = event_column("model"), event_column("provider")
# The product's per-model rollup (declared in store/rollups.py), and one declared here,
# once: model alone, without the hour grain (its edges come from quarter hours and the
# events).
USER_MODEL = USER_MODEL_ROLLUP
MODEL_ONLY = Rollup("model_only", (MODEL,), (Grain.QUARTER, Grain.DAY))
MODELS = [("gpt-4o", "openai"), ("claude", "anthropic"), (None, None), ("gpt-4o", "azure")]


@pytest.fixture
def store(db: Database) -> UsageStore:
    store = UsageStore(db, rollups=(*ROLLUPS, MODEL_ONLY))
    new = [table for level, table in store.tables.items() if level.rollup not in ROLLUPS]
    assert {table.name for table in new} == {"rollup_model_only_quarter", "rollup_model_only_day"}
    for table in new:  # what the rollup's migration does
        table.create(db.engine)
    return store


def _events(count: int) -> list[dict[str, Any]]:
    rng = random.Random(21)
    events = []
    for n in range(count):
        model, provider = rng.choice(MODELS)
        instant = NOW - timedelta(seconds=rng.randrange(86400 * 12))
        events.append(
            make_event(
                event_id=f"e{n}",
                user={"id": f"u{rng.randrange(5)}", "name": f"Person {n % 5}"},
                started_at=instant.isoformat(),
                model=model,
                provider=provider,
                input_tokens=rng.randrange(1000),
                output_tokens=rng.randrange(100),
                status=rng.choice(["ok", "ok", "error"]),
            )
        )
    return events


def _expected(
    events: list[dict[str, Any]], pks: dict[str, int], lo: int, hi: int, key: Any
) -> dict[tuple[Any, ...], tuple[int, int, int, int, int]]:
    found: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 2**63, -(2**63)])
    for event in events:
        at = to_us(datetime.fromisoformat(event["started_at"]))
        if lo <= at < hi:
            sums = found[key(event, pks[event["user"]["id"]])]
            sums[0] += 1
            sums[1] += event["input_tokens"]
            sums[2] += event.get("status") == "error"
            sums[3], sums[4] = min(sums[3], at), max(sums[4], at)
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in found.items()}


def _read(
    store: UsageStore, rollup: Rollup, lo: int, hi: int, users: UserFilter
) -> dict[tuple[Any, ...], tuple[int, int, int, int, int]]:
    metrics = store.metrics
    with store.read() as reader:
        found = reader.usage_by(rollup, lo, hi, users)
    return {
        key: (
            metrics.value(raw, "requests"),
            metrics.value(raw, "input_tokens"),
            metrics.value(raw, "error_requests"),
            raw[-2],
            raw[-1],
        )
        for key, raw in found.items()
    }


def test_a_declared_rollup_is_written_verified_and_read_by_range(store: UsageStore) -> None:
    events = _events(600)
    for start in range(0, len(events), 150):  # in batches, out of time order
        assert ingest(store, events[start : start + 150], now_us=to_us(NOW)).count("accepted")
    assert not any(store.verify().values())
    with store.db.read() as conn:
        pks = {row[0]: row[1] for row in conn.execute(text("SELECT external_id, id FROM users"))}

    def by_user_model(event: dict[str, Any], pk: int) -> tuple[Any, ...]:
        return (pk, event.get("model") or "", event.get("provider") or "")

    def by_model(event: dict[str, Any], _pk: int) -> tuple[Any, ...]:
        return (event.get("model") or "",)

    end = to_us(NOW)
    ranges = [
        (end - 10 * US_PER_DAY - 7 * US_PER_HOUR - 123_456, end - 1 * US_PER_DAY + 999),  # all
        (end - 3 * US_PER_DAY, end - 2 * US_PER_DAY),  # one whole UTC day
        (end - 5 * US_PER_HOUR - 5, end - 2 * US_PER_HOUR + 7),  # hours and slivers
        (end - 20 * US_PER_DAY, end + US_PER_DAY),
    ]
    for lo, hi in ranges:
        everyone = UserFilter()
        assert _read(store, USER_MODEL, lo, hi, everyone) == _expected(
            events, pks, lo, hi, by_user_model
        ), (lo, hi)
        assert _read(store, MODEL_ONLY, lo, hi, everyone) == _expected(
            events, pks, lo, hi, by_model
        ), (lo, hi)
        u3 = [event for event in events if event["user"]["id"] == "u3"]
        assert _read(store, USER_MODEL, lo, hi, UserFilter(user_id="u3")) == _expected(
            u3, pks, lo, hi, by_user_model
        )
    with pytest.raises(ValueError, match="no user key"):
        _read(store, MODEL_ONLY, ranges[0][0], ranges[0][1], UserFilter(q="person"))

    # verify sees a wrong row of the new tables; rebuild repairs them.
    with store.db.write() as conn:
        conn.execute(text("UPDATE rollup_user_model_day SET cum_requests = cum_requests + 1"))
        conn.execute(text("DELETE FROM rollup_model_only_quarter WHERE model = 'claude'"))
    differences = store.verify()
    assert differences["rollup_user_model_day"] > 0
    assert differences["rollup_model_only_quarter"] > 0
    store.rebuild()
    assert not any(store.verify().values())
