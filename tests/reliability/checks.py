"""What every load test checks at the end: the ledger holds each unique event once."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

import httpx2 as httpx
from sqlalchemy import text
from typer.testing import CliRunner

from tests.reliability.conftest import Keys
from tests.reliability.workload import (
    REPORT_END,
    REPORT_START,
    Workload,
    WriterReport,
    expected_totals,
)
from tokenledger.cli import app
from tokenledger.settings import Settings
from tokenledger.store.database import open_database


def stored_event_ids(database_url: str) -> list[str]:
    db = open_database(Settings(database_url=database_url))
    try:
        with db.read() as conn:
            return list(conn.execute(text("SELECT event_id FROM events")).scalars())
    finally:
        db.dispose()


def report(url: str, key: str, tz: str = "UTC") -> dict[str, Any]:
    response = httpx.get(
        f"{url}/api/v1/reports/user-usage",
        params={"start": REPORT_START, "end": REPORT_END, "tz": tz, "limit": 500},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_ledger_exact(workload: Workload, database_url: str, url: str, keys: Keys) -> None:
    """Each unique event is stored once, the reports say exactly that, and
    ``tokenledger verify`` finds the rollups equal to the events."""
    expected = workload.unique_events()
    ids = stored_event_ids(database_url)
    assert len(ids) == len(expected), "an event is missing or stored twice"
    assert set(ids) == set(expected)
    totals = expected_totals(expected)
    per_user = Counter[str]()
    for event in expected.values():
        per_user[event["user"]["id"]] += event["input_tokens"]
    for tz in ("UTC", "Asia/Kathmandu"):
        body = report(url, keys.read, tz)
        assert {name: body["totals"][name] for name in totals} == totals
        assert {row["user_id"]: row["input_tokens"] for row in body["users"]} == per_user
    result = CliRunner().invoke(app, ["--database-url", database_url, "verify"])
    assert result.exit_code == 0, result.output


def assert_sqlite_intact(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def writer_problems(reports: list[WriterReport]) -> list[str]:
    return [f"writer {r.writer}: {problem}" for r in reports for problem in r.problems]


def assert_no_false_acknowledgement(reports: list[WriterReport]) -> None:
    """Each batch is sent again after its acknowledgement: if that resend stores
    anything, the first 200 was given for events that were not stored."""
    assert sum(r.resent_not_duplicate for r in reports) == 0
