"""Backing up a SQLite database while the server runs, and restoring a backup.

A backup is SQLite's online backup API copying every page in one step, inside one read
transaction: the copy is the database as of one commit, however many batches are being
committed meanwhile (WAL lets writers go on while it reads). It is written next to the
target, checked, flushed to disk and then renamed over it, so a failed backup never
leaves half a file under the target's name. The copy is one self-contained file (no
``-wal`` beside it).

PostgreSQL has its own tools, ``pg_dump`` and ``pg_restore`` (docs/operations.md).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenledger.store import migrate
from tokenledger.store.database import Database


class BackupError(Exception):
    """A backup or restore cannot be done; the message says why."""


@dataclass(frozen=True)
class BackupFile:
    """What a backup holds."""

    path: Path
    revision: str | None
    events: int
    size_bytes: int


def backup(db: Database, target: Path, *, overwrite: bool = False) -> BackupFile:
    """Copy the SQLite database of ``db`` to ``target`` (consistent while it is
    written to)."""
    sqlite_file(db, "tokenledger backup")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists already (--force replaces it)")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with closing(sqlite3.connect(partial)) as copy:
            with closing(db.engine.raw_connection()) as source:
                _driver(source).backup(copy)  # pages=-1: every page in one step
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            summary = _check(copy, partial)
        _flush(partial)
        partial.replace(target)
        _flush(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return BackupFile(target, summary.revision, summary.events, target.stat().st_size)


def inspect(path: Path) -> BackupFile:
    """What the backup at ``path`` holds; BackupError if it is not a sound TokenLedger
    database of a revision this version knows."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as conn:
            return _check(conn, path)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from exc


def restore(db: Database, source: Path) -> BackupFile:
    """Replace everything in the SQLite database of ``db`` by the backup ``source``,
    then migrate it to the newest revision. Stop the server first: events it stored
    after the backup was taken are gone afterwards."""
    sqlite_file(db, "tokenledger restore")
    found = inspect(source)
    with (
        closing(sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True)) as saved,
        closing(db.engine.raw_connection()) as live,
    ):
        saved.backup(_driver(live))  # one write transaction on the live file
    migrate.upgrade(db)
    return found


def sqlite_file(db: Database, command: str) -> Path:
    """The SQLite file of ``db``; BackupError naming what to use instead."""
    if db.dialect.name != "sqlite":
        raise BackupError(
            f"{command} is for SQLite; for PostgreSQL use pg_dump and pg_restore "
            "(see docs/operations.md)"
        )
    if db.sqlite_file is None:
        raise BackupError(f"{command} needs a SQLite database in a file")
    return db.sqlite_file


def _driver(pooled: Any) -> sqlite3.Connection:
    """The sqlite3 connection under a pooled SQLAlchemy connection."""
    connection: sqlite3.Connection = pooled.driver_connection
    return connection


def _check(conn: sqlite3.Connection, path: Path) -> BackupFile:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{path} is damaged: {'; '.join(problems[:3])}")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if not {"alembic_version", "events"} <= tables:
        raise BackupError(f"{path} is not a TokenLedger database")
    revision = _scalar(conn, "SELECT version_num FROM alembic_version")
    if revision is not None and not migrate.is_known_revision(revision):
        raise BackupError(
            f"{path} was made by a newer TokenLedger (schema revision {revision}): "
            "upgrade TokenLedger first"
        )
    events = _scalar(conn, "SELECT count(*) FROM events")
    return BackupFile(path, revision, int(events or 0), path.stat().st_size)


def _scalar(conn: sqlite3.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _flush(path: Path) -> None:
    """fsync a file or directory, so a completed backup survives a power loss."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
