"""Load with overlap, and a crash in the middle of it, against a real server process.

8 writer processes send batches of 50 events, every batch twice, 10 % of the ids shared
between writers, while 4 readers query both reports. Short variant: 20 batches per
writer; ``make soak`` (TOKENLEDGER_SOAK=1): 200.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.reliability.conftest import Keys, Servers, create_keys
from tests.reliability.workload import (
    REPORT_END,
    REPORT_START,
    Readers,
    Workload,
    WriterReport,
    Writers,
    expected_totals,
    soak,
    wait_until,
)
from tokenledger.cli import app
from tokenledger.settings import Settings
from tokenledger.store.database import open_database

WORKLOAD = Workload(batches=200 if soak() else 20)
# The heavy tests share one xdist worker, one at a time, so they never compete for the
# two cores with each other (the other worker runs the light tests meanwhile).
pytestmark = pytest.mark.xdist_group("reliability-load")


def _stored(database_url: str) -> tuple[int, set[str]]:
    db = open_database(Settings(database_url=database_url))
    try:
        with db.read() as conn:
            rows = conn.execute(text("SELECT event_id FROM events")).scalars().all()
    finally:
        db.dispose()
    return len(rows), set(rows)


def _report(url: str, key: str, tz: str = "Europe/Paris") -> dict[str, Any]:
    response = httpx.get(
        f"{url}/api/v1/reports/user-usage",
        params={"start": REPORT_START, "end": REPORT_END, "tz": tz, "limit": 500},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _assert_ledger_exact(database_url: str, url: str, keys: Keys) -> None:
    """The ledger holds each unique event once, and the reports say exactly that."""
    expected = WORKLOAD.unique_events()
    count, ids = _stored(database_url)
    assert count == len(expected), "an event is missing or stored twice"
    assert ids == set(expected)
    totals = expected_totals(expected)
    for tz in ("UTC", "Asia/Kathmandu"):
        report = _report(url, keys.read, tz)
        assert {name: report["totals"][name] for name in totals} == totals
        per_user = Counter[str]()
        for event in expected.values():
            per_user[event["user"]["id"]] += event["input_tokens"]
        assert {row["user_id"]: row["input_tokens"] for row in report["users"]} == per_user
    result = CliRunner().invoke(app, ["--database-url", database_url, "verify"])
    assert result.exit_code == 0, result.output


def _assert_sqlite_intact(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        return
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _problems(reports: list[WriterReport]) -> list[str]:
    return [f"writer {r.writer}: {problem}" for r in reports for problem in r.problems]


def test_overlapping_writers_and_readers_store_each_event_once(
    database_url: str, servers: Servers
) -> None:
    keys = create_keys(database_url)
    server = servers.start(database_url)
    writers = Writers(server.url, keys.ingest, WORKLOAD)
    started = time.monotonic()
    try:
        with Readers(server.url, keys.read) as readers:
            writers.start()
            reports = writers.join(timeout=900 if soak() else 240)
    finally:
        writers.terminate()
    elapsed = time.monotonic() - started

    assert _problems(reports) == []
    statuses = sum((report.statuses for report in reports), Counter[int]())
    assert statuses == {200: WORKLOAD.requests_sent}, "every request answered 200 at once"
    assert sum(report.transport_errors for report in reports) == 0
    # Each unique event was accepted exactly once across all writers; everything else,
    # the shared ids sent by other writers and every resend, was a duplicate.
    expected = WORKLOAD.unique_events()
    assert sum(report.accepted for report in reports) == len(expected)
    assert sum(report.resent_not_duplicate for report in reports) == 0
    sent = 2 * WORKLOAD.writers * WORKLOAD.batches * WORKLOAD.batch_size
    assert sum(report.duplicates for report in reports) == sent - len(expected)

    for reader in readers.results:
        assert reader.problems == []
        assert set(reader.statuses) == {200}
        assert reader.transport_errors == 0
    assert all(reader.reports > 0 for reader in readers.results)
    assert "database is locked" not in server.log()
    _assert_ledger_exact(database_url, server.url, keys)
    _assert_sqlite_intact(database_url)
    print(
        f"\n{len(expected)} events, {WORKLOAD.requests_sent} requests in {elapsed:.1f} s; "
        f"{sum(r.reports for r in readers.results)} report reads"
    )


def test_kill_9_in_the_middle_loses_nothing_acknowledged(
    database_url: str, servers: Servers
) -> None:
    keys = create_keys(database_url)
    server = servers.start(database_url)
    writers = Writers(server.url, keys.ingest, WORKLOAD)
    total = WORKLOAD.writers * WORKLOAD.batches
    crashes = 3 if soak() else 1
    try:
        with Readers(server.url, keys.read) as readers:
            writers.start()
            for crash in range(1, crashes + 1):
                target = total * crash // (crashes + 1)

                def enough(target: int = target) -> bool:
                    return writers.acknowledged_batches() >= target

                wait_until(
                    enough,
                    timeout=300,
                    message=f"{target} batches acknowledged before crash {crash}",
                )
                server.kill()
                server.start()
            reports = writers.join(timeout=900 if soak() else 240)
    finally:
        writers.terminate()

    assert _problems(reports) == []
    statuses = sum((report.statuses for report in reports), Counter[int]())
    assert set(statuses) == {200}, "no 5xx, only connection errors while the server was down"
    assert sum(report.transport_errors for report in reports) > 0, "the crash hit in-flight load"
    for reader in readers.results:
        assert reader.problems == []
        assert set(reader.statuses) <= {200}
    _assert_ledger_exact(database_url, server.url, keys)
    _assert_sqlite_intact(database_url)
