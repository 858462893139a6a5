"""Alerts exactly once with real servers, on both backends: several server processes
and 8 ingesting processes crossing 50/80/100 % for 200 people (the receiver failing
each alert's first 3 attempts), a server killed (SIGKILL) while delivering, and
events committed while no server ran (found by the start-up sweep)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from typer.testing import CliRunner

from tests.conftest import make_event
from tests.reliability.conftest import Servers, create_keys
from tests.support.webhook_receiver import WebhookReceiver
from tokenledger.cli import app
from tokenledger.ingest import ingest
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.store.usage_store import UsageStore

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 200
EVENTS_EACH = 10  # 100 tokens each, of a 1000-token budget: 50 %, 80 %, 100 %
SENDERS = 8
FAST = {
    "TOKENLEDGER_ALERT_RETRY_BASE_S": "0.1",
    "TOKENLEDGER_ALERT_SWEEP_S": "1",
    "TOKENLEDGER_ALERT_SEND_TIMEOUT_S": "2",
}


def cli(database_url: str, *args: str) -> str:
    result = CliRunner().invoke(app, ["--database-url", database_url, *args])
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def set_up(database_url: str, receiver: WebhookReceiver, *, thresholds: str) -> None:
    cli(
        database_url,
        "budgets",
        "create",
        "--name",
        "yearly",
        "--metric",
        "tokens",
        "--limit",
        "1000",
        "--period",
        "year",
        "--thresholds",
        thresholds,
    )
    cli(database_url, "budgets", "add-channel", "--kind", "webhook", "--target", receiver.url)


def recent() -> str:
    """A minute ago (the budget is yearly: the same period unless at the new year)."""
    return (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def post_batches(url: str, key: str, batches: list[list[dict[str, Any]]]) -> int:
    """Post each batch, one request each; the events accepted."""
    accepted = 0
    with httpx.Client(timeout=60) as client:
        for batch in batches:
            answer = client.post(
                f"{url}/api/v1/events",
                json={"events": batch},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 200, answer.text
            accepted += answer.json()["accepted"]
    return accepted


def alert_keys(receiver: WebhookReceiver) -> Counter[tuple[Any, ...]]:
    found: Counter[tuple[Any, ...]] = Counter()
    for item in receiver.accepted:
        alert = orjson.loads(item.body)
        key = (alert["budget"]["id"], alert["person"]["user_id"], alert["period"]["start"])
        found[(*key, alert["threshold"])] += 1
    return found


def wait_for(receiver: WebhookReceiver, count: int, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while len(receiver.accepted) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # long enough for a repeat (retries are 0.1 s apart) to arrive


def test_concurrent_ingest_from_8_processes_alerts_exactly_once_per_crossing(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    keys = create_keys(database_url)
    with WebhookReceiver(fail_first=3) as receiver:
        set_up(database_url, receiver, thresholds="50,80,100")
        started = [servers.start(database_url, **FAST) for _ in range(2)]
        shares: list[list[dict[str, Any]]] = [[] for _ in range(SENDERS)]
        for person in range(PEOPLE):
            for index in range(EVENTS_EACH):
                event = make_event(
                    user={"id": f"p-{person:03d}"},
                    started_at=recent(),
                    input_tokens=100,
                    output_tokens=0,
                )
                shares[(person + index) % SENDERS].append(event)
        workers = []
        for number, share in enumerate(shares):
            batches = [share[i : i + 25] for i in range(0, len(share), 25)]
            path = tmp_path / f"batches-{number}.json"
            path.write_bytes(orjson.dumps(batches))
            command = [
                sys.executable,
                "-m",
                "tests.support.ingest_worker",
                started[number % 2].url,
                keys.ingest,
                str(path),
            ]
            workers.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE))
        accepted = 0
        for worker in workers:
            out, _ = worker.communicate(timeout=600)
            assert worker.returncode == 0
            accepted += int(out)
        assert accepted == PEOPLE * EVENTS_EACH
        wait_for(receiver, PEOPLE * 3)
        found = alert_keys(receiver)
    assert len(found) == PEOPLE * 3
    assert set(found.values()) == {1}
    assert {key[3] for key in found} == {50, 80, 100}
    assert len(receiver.received) == 4 * len(receiver.accepted)  # 3 failures each


def test_a_server_killed_while_delivering_leaves_the_alert_to_the_next_one(
    database_url: str, servers: Servers
) -> None:
    import threading

    keys = create_keys(database_url)
    hold = threading.Event()
    with WebhookReceiver(hold=hold) as receiver:
        set_up(database_url, receiver, thresholds="100")
        first = servers.start(database_url, **FAST)
        event = make_event(user={"id": "emp-1"}, started_at=recent(), input_tokens=1000)
        assert post_batches(first.url, keys.ingest, [[event]]) == 1
        deadline = time.monotonic() + 60
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.received) == 1  # the alert is being sent...
        first.kill()  # ...when its server dies
        hold.set()
        servers.start(database_url, **FAST)
        wait_for(receiver, 1, timeout_s=60)
        found = alert_keys(receiver)
    assert list(found.values()) == [1]
    assert len(receiver.received) == 2


def test_events_committed_while_no_server_ran_are_alerted_at_start(
    database_url: str, servers: Servers
) -> None:
    with WebhookReceiver() as receiver:
        set_up(database_url, receiver, thresholds="50,100")
        db = open_database(Settings(database_url=database_url))
        try:
            # What a server killed between its commit and its check leaves behind.
            events = [
                make_event(user={"id": f"emp-{n}"}, started_at=recent(), input_tokens=600)
                for n in range(5)
            ]
            now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
            assert ingest(UsageStore(db), events, now_us=now_us).count("accepted") == 5
        finally:
            db.dispose()
        servers.start(database_url, **FAST)
        wait_for(receiver, 5, timeout_s=60)
        found = alert_keys(receiver)
    assert sorted(key[1] for key in found) == [f"emp-{n}" for n in range(5)]
    assert set(found.values()) == {1}
