"""``tokenledger retention run`` and ``tokenledger people erase``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import make_event
from tests.test_cli import run
from tokenledger.auth import audit
from tokenledger.clock import now_us, system_clock
from tokenledger.ingest import ingest
from tokenledger.store import erasure, retention
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

KEY = "an erasure key of forty characters......"


def _count(db: Database, sql: str) -> int:
    with db.read() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_retention_run_deletes_old_events_and_says_so(
    database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    events = [
        make_event(event_id=f"c{days}", started_at=(now - timedelta(days=days)).isoformat())
        for days in (1, 2, 40, 50, 60)
    ]
    ingest(UsageStore(db), events, now_us=now_us(system_clock))
    code, _, err = run(database_url, "retention", "run")
    assert code == 2
    assert "TOKENLEDGER_RETENTION_DAYS is not set" in err
    monkeypatch.setenv("TOKENLEDGER_RETENTION_DAYS", "30")
    code, _, err = run(database_url, "retention", "run", "--batch-size", "2")
    assert code == 0, err
    assert "Deleted 3 events" in err
    assert "(2 transactions)" in err
    assert _count(db, "SELECT count(*) FROM events") == 2
    assert retention.retained_from(db) == retention.cutoff(now_us(system_clock), 30)
    code, _, err = run(database_url, "verify")
    assert code == 0, err
    horizon = datetime.fromtimestamp(retention.cutoff(now_us(system_clock), 30) / 1e6, UTC)
    assert f"Checked from {horizon.isoformat()} on: retention deleted the events" in err
    assert "All rollups match the events." in err


def test_people_erase(database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    person = {"id": "emp-cli-9", "name": "Ottoline Frobisher", "email": "of@example.com"}
    ingest(UsageStore(db), [make_event(user=person)], now_us=now_us(system_clock))
    code, _, err = run(database_url, "people", "erase", "--user-id", "emp-cli-9")
    assert code == 2
    assert "TOKENLEDGER_ERASURE_KEY is not set" in err
    monkeypatch.setenv("TOKENLEDGER_ERASURE_KEY", KEY)
    code, _, err = run(database_url, "people", "erase", "--user-id", "nobody")
    assert code == 2
    assert "no person with user id 'nobody'" in err
    code, _, err = run(database_url, "people", "erase", "--user-id", "emp-cli-9")
    assert code == 0, err
    alias = erasure.pseudonym(KEY.encode(), "emp-cli-9")
    assert f"Erased: now {alias}; 1 events rewritten; cleared name" in err
    assert "team, team_at_us, department, department_at_us." in err
    assert _count(db, "SELECT count(*) FROM users WHERE name IS NOT NULL") == 0
    (entry,) = audit.entries(db, action=audit.PERSON_ERASED)
    assert entry.actor.startswith("cli")
    assert entry.details["pseudonym"] == alias
