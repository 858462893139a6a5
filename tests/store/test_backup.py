"""``backup`` and ``restore``: a SQLite file copied and put back, refused for PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.conftest import make_event
from tokenledger.cli import app
from tokenledger.ingest import ingest
from tokenledger.settings import Settings
from tokenledger.store import backup as backups
from tokenledger.store import migrate
from tokenledger.store.database import Database, open_database
from tokenledger.store.usage_store import UsageStore

NOW_US = 1_795_608_000_000_000  # 2026-11-25T12:00:00Z


def _event_ids(db: Database) -> list[str]:
    with db.read() as conn:
        return sorted(conn.execute(text("SELECT event_id FROM events")).scalars())


def _store(db: Database, count: int, prefix: str) -> list[str]:
    events = [make_event(event_id=f"{prefix}-{n}", input_tokens=n) for n in range(count)]
    assert ingest(UsageStore(db), events, now_us=NOW_US).count("accepted") == count
    return [event["event_id"] for event in events]


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_a_backup_is_one_file_that_restores_exactly(db: Database, tmp_path: Path) -> None:
    stored = _store(db, 25, "kept")
    target = tmp_path / "backups" / "tokenledger-2026-11-25.db"
    target.parent.mkdir()
    made = backups.backup(db, target)
    assert (made.path, made.events, made.revision) == (target, 25, migrate.head_revision())
    assert made.size_bytes == target.stat().st_size
    assert sorted(path.name for path in target.parent.iterdir()) == [target.name]  # no -wal
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)

    _store(db, 5, "later")  # stored after the backup: gone after the restore
    restored = backups.restore(db, target)
    assert restored.events == 25
    assert _event_ids(db) == sorted(stored)
    assert UsageStore(db).verify() == dict.fromkeys(UsageStore(db).verify(), 0)


def test_restore_into_a_new_file_then_migrate(db: Database, tmp_path: Path) -> None:
    _store(db, 3, "a")
    backups.backup(db, tmp_path / "copy.db")
    fresh = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'new' / 'fresh.db'}"))
    try:
        backups.restore(fresh, tmp_path / "copy.db")
        assert _event_ids(fresh) == ["a-0", "a-1", "a-2"]
        assert migrate.is_up_to_date(fresh)
    finally:
        fresh.dispose()


def test_a_backup_never_replaces_a_file_unless_told(db: Database, tmp_path: Path) -> None:
    target = tmp_path / "backups" / "existing.db"
    target.parent.mkdir()
    target.write_bytes(b"precious")
    with pytest.raises(backups.BackupError, match="exists already"):
        backups.backup(db, target)
    assert target.read_bytes() == b"precious"
    backups.backup(db, target, overwrite=True)
    assert backups.inspect(target).events == 0
    assert [path.name for path in target.parent.iterdir()] == ["existing.db"]  # no partial left


def _sqlite_file(path: Path, *statements: str) -> Path:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a database at all" * 100) and p, "not a SQLite database"),
        (lambda p: _sqlite_file(p, "CREATE TABLE t (x)"), "not a TokenLedger database"),
        (lambda p: p.parent, "is not a file"),
    ],
    ids=["garbage", "other-sqlite", "directory"],
)
def test_restore_refuses_what_is_not_a_backup(
    db: Database, tmp_path: Path, make: object, message: str
) -> None:
    _store(db, 2, "live")
    source = make(tmp_path / "bad.db")  # type: ignore[operator]
    with pytest.raises(backups.BackupError, match=message):
        backups.restore(db, source)
    assert _event_ids(db) == ["live-0", "live-1"]


def test_restore_refuses_a_backup_of_a_newer_version(db: Database, tmp_path: Path) -> None:
    target = tmp_path / "newer.db"
    backups.backup(db, target)
    _sqlite_file(target, "UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(backups.BackupError, match=r"newer TokenLedger.*9999_future"):
        backups.restore(db, target)


def test_restore_refuses_a_damaged_backup(db: Database, tmp_path: Path) -> None:
    _store(db, 200, "many")
    target = tmp_path / "damaged.db"
    backups.backup(db, target)
    data = bytearray(target.read_bytes())
    data[-4096 * 3 : -4096] = b"\xff" * 8192  # two pages of the events' b-trees
    target.write_bytes(bytes(data))
    with pytest.raises(backups.BackupError, match=r"damaged|not a SQLite"):
        backups.inspect(target)


def test_the_commands(settings: Settings, db: Database, tmp_path: Path) -> None:
    _store(db, 4, "cli")
    runner = CliRunner()
    base = ["--database-url", settings.database_url]
    target = tmp_path / "cli.db"
    made = runner.invoke(app, [*base, "backup", str(target)])
    assert made.exit_code == 0, made.output
    assert f"Backed up 4 events (schema {migrate.head_revision()}) to {target}" in made.output
    again = runner.invoke(app, [*base, "backup", str(target)])
    assert (again.exit_code, "exists already" in again.output) == (2, True)

    _store(db, 1, "after")
    declined = runner.invoke(app, [*base, "restore", str(target)], input="n\n")
    assert declined.exit_code == 1
    assert len(_event_ids(db)) == 5
    restored = runner.invoke(app, [*base, "restore", str(target)], input="y\n")
    assert restored.exit_code == 0, restored.output
    assert f"{target}: 4 events" in restored.output
    assert _event_ids(db) == ["cli-0", "cli-1", "cli-2", "cli-3"]
    assert runner.invoke(app, [*base, "verify"]).exit_code == 0


@pytest.mark.postgres
def test_postgresql_is_sent_to_pg_dump(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue("postgres_cluster").url(
        request.getfixturevalue("postgres_template")
    )
    runner = CliRunner()
    for command in (["backup", str(tmp_path / "x.db")], ["restore", "--yes", __file__]):
        result = runner.invoke(app, ["--database-url", url, *command])
        assert result.exit_code == 2
        assert "pg_dump" in result.output
    assert not (tmp_path / "x.db").exists()
