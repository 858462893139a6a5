"""The audit log: append-only (a trigger on both backends), newest first, paged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from tokenledger.auth import audit, throttle
from tokenledger.auth.keys import create_key, revoke_key
from tokenledger.auth.throttle import Limits
from tokenledger.cli import app
from tokenledger.store.database import Database

DAY = 86_400 * 1_000_000


def test_entries_are_newest_first_and_page_both_ways(db: Database) -> None:
    for n in range(7):
        audit.record(
            db,
            actor=f"user{n}@example.com",
            action=audit.EXPORT if n % 2 else audit.SIGN_IN,
            details={"rows": n, "filters": {"q": "ngu<y>ễn"}},
            now_us=n,
            client="192.0.2.1",
        )
    newest = audit.entries(db, limit=3)
    assert [e.actor for e in newest] == [f"user{n}@example.com" for n in (6, 5, 4)]
    older = audit.entries(db, before_id=newest[-1].id, limit=3)
    assert [e.details["rows"] for e in older] == [3, 2, 1]
    newer = audit.entries(db, after_id=older[0].id, limit=2)
    assert [e.details["rows"] for e in newer] == [5, 4]
    exports = audit.entries(db, action=audit.EXPORT, limit=10)
    assert [e.details["rows"] for e in exports] == [5, 3, 1]
    assert exports[0].details["filters"] == {"q": "ngu<y>ễn"}
    assert audit.has_entries(db, action=None, before_id=older[-1].id)
    assert not audit.has_entries(db, action=None, after_id=newest[0].id)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"]
)
def test_the_database_refuses_to_change_or_delete_entries(db: Database, statement: str) -> None:
    audit.record(db, actor="ada@example.com", action=audit.SIGN_IN, now_us=1)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.execute(text(statement))
    (entry,) = audit.entries(db)
    assert entry.actor == "ada@example.com"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_postgresql_refuses_truncate(db: Database) -> None:
    audit.record(db, actor="ada@example.com", action=audit.SIGN_IN, now_us=1)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.execute(text("TRUNCATE audit_log"))


def test_key_creation_and_revocation_are_audited(db: Database) -> None:
    key, secret = create_key(
        db, name="gateway", scope="ingest", now_us=10, actor="ada@example.com", client="192.0.2.9"
    )
    revoke_key(db, key.id, now_us=20, actor="ada@example.com")
    revoke_key(db, key.id, now_us=30, actor="ada@example.com")  # already revoked: no entry
    entries = audit.entries(db)
    assert [(e.action, e.actor, e.at_us) for e in entries] == [
        ("key_revoked", "ada@example.com", 20),
        ("key_created", "ada@example.com", 10),
    ]
    expected = {"key_id": key.id, "name": "gateway", "scope": "ingest", "prefix": key.prefix}
    assert entries[0].details == entries[1].details == expected
    assert secret not in repr(entries)
    assert entries[1].client == "192.0.2.9"


def test_archive_moves_old_entries_to_a_file_and_keeps_the_guard(
    db: Database, tmp_path: Path
) -> None:
    for n in range(5):
        audit.record(db, actor=f"user{n}@example.com", action=audit.SIGN_IN, now_us=n * DAY)
    throttle_limits = Limits(per_account=1, per_client=50, window_s=60)
    for n in range(4):  # a pause with three refused attempts, on day 1
        throttle.reserve(
            db,
            email="x@example.com",
            client="192.0.2.1",
            actor="x@example.com",
            now_us=DAY + n,
            limits=throttle_limits,
        )
    path = tmp_path / "audit-old.jsonl"
    with path.open("xb") as file:
        archived = audit.archive(
            db,
            before_us=3 * DAY,
            output=file,
            file_name=path.name,
            actor="cli:root",
            now_us=9 * DAY,
        )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["actor"], line["action"]) for line in lines] == [
        ("user0@example.com", "sign_in"),
        ("user1@example.com", "sign_in"),
        ("user2@example.com", "sign_in"),
        ("x@example.com", "sign_in_throttled"),  # in the order written (ids)
    ]
    assert lines[3]["details"]["refused_attempts"] == 3
    assert archived == audit.Archived(4, hashlib.sha256(path.read_bytes()).hexdigest())
    left = audit.entries(db, limit=100)
    assert [e.action for e in left] == ["audit_archived", "sign_in", "sign_in"]
    assert left[0].details == {"file": "audit-old.jsonl", "entries": 4, "sha256": archived.sha256}
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM sign_in_refusals")).scalar_one() == 0


def test_audit_archive_command_refuses_an_existing_file_and_a_future_date(
    database_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    existing = tmp_path / "exists.jsonl"
    existing.write_text("keep me\n")
    common = ["--database-url", database_url, "audit-archive"]
    refused = runner.invoke(app, [*common, "--before", "2020-01-01", "--output", str(existing)])
    assert refused.exit_code == 2
    assert existing.read_text() == "keep me\n"
    future = runner.invoke(
        app, [*common, "--before", "2999-01-01", "--output", str(tmp_path / "f")]
    )
    assert future.exit_code == 2
    done = runner.invoke(app, [*common, "--before", "2020-01-01", "--output", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    assert "Archived 0 entries" in done.output
