"""The benchmark's dataset generator: deterministic, exact in size, shaped, in time order."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.generate import Generator

from tokenledger.events import Event, validate_event
from tokenledger.localdays import to_us

END = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _events(seed: int = 1, count: int = 5000) -> list[dict[str, Any]]:
    return list(Generator(events=count, users=200, seed=seed, days=60, end=END).events())


def test_same_seed_same_events_and_exact_count() -> None:
    first, again, other = _events(), _events(), _events(seed=2)
    assert first == again
    assert first != other
    assert len(first) == 5000
    assert len({event["event_id"] for event in first}) == 5000


def test_events_are_valid_in_time_order_and_never_after_the_end() -> None:
    events = _events()
    validated = [validate_event(raw, now_us=to_us(END)) for raw in events]
    assert all(isinstance(event, Event) for event in validated)
    instants = [event.started_us for event in validated if isinstance(event, Event)]
    assert instants == sorted(instants)
    assert instants[-1] <= to_us(END)
    assert instants[0] >= to_us(END) - 61 * 86_400_000_000


def test_shape_errors_heavy_tail_weekdays() -> None:
    events = _events(count=20_000)
    errors = sum(1 for event in events if event["status"] == "error")
    assert 0.01 < errors / len(events) < 0.03
    per_user = sorted(Counter(e["user"]["id"] for e in events).values(), reverse=True)
    assert sum(per_user[: len(per_user) // 10]) > 0.4 * len(events)  # a few use most
    weekdays = Counter(datetime.fromisoformat(e["started_at"]).weekday() for e in events)
    assert weekdays[2] > 3 * weekdays[6]
    assert len({e["model"] for e in events}) >= 5
