"""The command line, run in-process against a fresh database of each backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.main import get_command
from typer.testing import CliRunner

from tests.conftest import make_event
from tokenledger.cli import app
from tokenledger.store.database import Database

runner = CliRunner()


def run(database_url: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--database-url", database_url, *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def _all_commands() -> list[list[str]]:
    command = get_command(app)
    found: list[list[str]] = [[]]

    def walk(group: object, prefix: list[str]) -> None:
        for name, sub in getattr(group, "commands", {}).items():
            found.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(command, [])
    return found


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_keys_create_list_revoke(database_url: str, db: Database) -> None:
    code, out, _ = run(database_url, "keys", "create", "--name", "gateway", "--scope", "ingest")
    assert code == 0
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tl_")
    assert len(secret) > 40
    with db.read() as conn:
        stored = conn.execute(text("SELECT prefix, key_hash FROM api_keys")).one()
    assert secret.startswith(stored.prefix)
    assert secret.encode() not in bytes(stored.key_hash)
    code, out, _ = run(database_url, "keys", "list")
    assert code == 0
    assert "gateway" in out
    assert secret not in out
    assert run(database_url, "keys", "revoke", "1")[0] == 0
    assert run(database_url, "keys", "revoke", "99")[0] == 2
    assert run(database_url, "keys", "create", "--name", "x", "--scope", "admin")[0] == 2


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_jsonl_reports_lines_and_is_idempotent(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    good = [json.dumps(make_event(started_at=f"2026-01-0{d}T10:00:00Z")) for d in range(1, 6)]
    bad_count = json.dumps(make_event(input_tokens="12"))
    path = _write_jsonl(tmp_path / "events.jsonl", [*good[:2], bad_count, "{oops", *good[2:]])
    code, _, err = run(database_url, "import", str(path))
    assert code == 1  # something was rejected
    assert "7 lines: 5 accepted, 0 duplicate, 2 rejected" in err
    assert "line 3: invalid_type: input_tokens" in err
    assert "line 4: invalid_json" in err
    code, _, err = run(database_url, "import", str(path))
    assert "0 accepted, 5 duplicate, 2 rejected" in err
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 5


def test_import_stores_each_batch_as_one_transaction_of_batch_size_lines(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    events = [make_event(started_at=f"2026-01-0{d}T10:00:00Z") for d in range(1, 8)]
    retry = dict(events[1])  # a resend of line 2 in the next batch, and a conflict
    clash = {**events[2], "input_tokens": 1}
    path = _write_jsonl(tmp_path / "events.jsonl", [json.dumps(e) for e in [*events, retry, clash]])
    code, _, err = run(database_url, "import", "--batch-size", "3", str(path))
    assert "9 lines: 7 accepted, 1 duplicate, 1 rejected" in err
    assert "line 9: conflict: event_id" in err
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 7
    code, _, err = run(database_url, "import", "--batch-size", "50001", str(path))
    assert code == 2  # more than MAX_BATCH_SIZE lines per transaction is refused


def test_import_csv(database_url: str, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,user_id,user_name,user_email,started_at,duration_ms,input_tokens,"
        "output_tokens,model,status,metadata\n"
        "c1,u1,Zoë Dubois,zoe@example.com,2026-11-01T09:00:00+01:00,1200,100,20,gpt-4o,ok,"
        '"{""a"": 1}"\n'
        "c2,u1,,,2026-11-01T10:00:00Z,900,50,5,,error,\n"
        "c3,u2,Bob,,2026-11-01T10:00:00Z,x,50,5,,ok,\n",
        encoding="utf-8",
    )
    _code, _, err = run(database_url, "import", str(path))
    assert "3 lines: 2 accepted, 0 duplicate, 1 rejected" in err
    assert "line 4: invalid_type: duration_ms" in err
    with db.read() as conn:
        rows = conn.execute(
            text("SELECT event_id, status, metadata FROM events ORDER BY event_id")
        ).all()
    assert [tuple(row) for row in rows] == [("c1", "ok", '{"a":1}'), ("c2", "error", None)]


def test_demo_verify_and_rebuild(database_url: str, db: Database) -> None:
    code, _, err = run(database_url, "demo", "--users", "15", "--days", "10")
    assert code == 0, err
    assert "events accepted" in err
    assert run(database_url, "demo", "--users", "15", "--days", "10", "--if-empty")[2].startswith(
        "Events exist already"
    )
    code, _, err = run(database_url, "verify")
    assert code == 0
    assert "All rollups match" in err
    with db.write() as conn:
        conn.execute(text("UPDATE rollup_user_day SET cum_requests = cum_requests + 1"))
    code, _, err = run(database_url, "verify")
    assert code == 1
    assert "rollup_user_day" in err
    assert "rows differ" in err
    assert run(database_url, "rebuild-rollups")[0] == 0
    assert run(database_url, "verify")[0] == 0


def test_migrate_is_repeatable(database_url: str) -> None:
    assert run(database_url, "migrate")[0] == 0
    assert run(database_url, "migrate")[0] == 0


def test_keys_list_prints_names_as_plain_text(database_url: str) -> None:
    assert run(database_url, "keys", "create", "--name", "[b]ops[/]", "--scope", "ingest")[0] == 0
    code, out, _ = run(database_url, "keys", "list")
    assert code == 0
    assert "[b]ops[/]" in out
