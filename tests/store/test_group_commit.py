"""Group commit: batches stored together get the outcomes they would get alone."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import make_event
from tests.store.test_writes import NOW_US, _run_parallel
from tokenledger.events import validate_event
from tokenledger.store.database import Database, DatabaseUnavailable
from tokenledger.store.group_commit import GroupCommit
from tokenledger.store.usage_store import UsageStore


def _items(events: list[dict[str, Any]]) -> list[Any]:
    return [validate_event(event, now_us=NOW_US) for event in events]


def test_concurrent_batches_share_commits_and_count_each_event_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[int] = []
    store = UsageStore(db)
    real = store.store_batches

    def counting(batches: Any) -> Any:
        groups.append(len(batches))
        return real(batches)

    monkeypatch.setattr(store, "store_batches", counting)
    shared = [make_event(event_id=f"shared-{n}", user={"id": f"u{n % 7}"}) for n in range(40)]
    writes = GroupCommit(store)
    try:
        results = _run_parallel(
            16,
            lambda i: [
                writes.store_batch(
                    _items([*shared[i : i + 10], make_event(event_id=f"own-{i}-{n}")]),
                    now_us=NOW_US,
                )
                for n in range(5)
            ],
        )
    finally:
        writes.close()
    statuses = [o.status for per_thread in results for r in per_thread for o in r.outcomes]
    accepted_shared = {
        o.event_id
        for per_thread in results
        for r in per_thread
        for o in r.outcomes
        if o.status == "accepted" and o.event_id and o.event_id.startswith("shared")
    }
    assert statuses.count("rejected") == 0
    assert accepted_shared == {f"shared-{n}" for n in range(25)}  # each exactly once
    assert statuses.count("accepted") == 25 + 16 * 5
    assert sum(groups) == 16 * 5
    assert len(groups) < 16 * 5  # some batches did share a commit
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 25 + 80
    assert not any(UsageStore(db).verify().values())


def test_a_batch_that_fails_the_group_fails_alone(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = UsageStore(db)
    real = store.store_batches
    gate = threading.Event()

    def failing(batches: Any) -> Any:
        gate.wait(5)  # let the other batches queue up behind the first
        if any(item.event_id == "poison" for items, _ in batches for item in items):
            raise RuntimeError("poison")
        return real(batches)

    monkeypatch.setattr(store, "store_batches", failing)
    writes = GroupCommit(store)

    def send(index: int) -> Any:
        event_id = "poison" if index == 3 else f"good-{index}"
        try:
            return writes.store_batch(_items([make_event(event_id=event_id)]), now_us=NOW_US)
        except RuntimeError as exc:
            return exc

    threading.Timer(0.3, gate.set).start()
    try:
        results = _run_parallel(6, send)
    finally:
        writes.close()
    assert isinstance(results[3], RuntimeError)
    assert all(r.outcomes[0].status == "accepted" for i, r in enumerate(results) if i != 3)


def test_an_unavailable_database_fails_every_batch_of_the_group(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(batches: Any) -> Any:
        raise DatabaseUnavailable("disk I/O error")

    store = UsageStore(db)
    monkeypatch.setattr(store, "store_batches", unavailable)
    writes = GroupCommit(store)
    try:
        with pytest.raises(DatabaseUnavailable):
            writes.store_batch(_items([make_event()]), now_us=NOW_US)
    finally:
        writes.close()
