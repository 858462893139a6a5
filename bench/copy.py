"""A PostgreSQL dataset copied table by table from the same SQLite dataset.

Building 10M events through the ingest path takes hours on PostgreSQL on a 2-core
machine (about 1,300 events/s there at a load of 3); the SQLite dataset of the same
spec, built through the same ingest path, holds exactly the rows PostgreSQL's ingest
would write (the events, the users, every rollup: the store writes the same rows on
both backends, and the compare step checks rollups, GROUP BY and DuckDB agree on the
copy). ``COPY`` moves them in minutes. The copy is marked in the dataset's load
figures (``copied_from``), which then hold no PostgreSQL ingest rate; its pages are
written in one pass, so it is if anything better packed than a database that grew by
upserts (the first round's figures were on ingested databases).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.progress import say
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import open_database

# Written by the migrations themselves, kept as PostgreSQL's upgrade wrote it.
_KEPT = {"alembic_version"}
_ROWS_PER_NOTE = 1_000_000


def copy_sqlite_dataset(sqlite_file: Path, postgres_url: str) -> dict[str, Any]:
    """Copy every table of ``sqlite_file`` that PostgreSQL's schema has into the empty
    database of ``postgres_url`` (migrated here first); returns the load figures."""
    begin = time.perf_counter()
    db = open_database(Settings(database_url=postgres_url))
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()
    source = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    url = make_url(postgres_url).set(drivername="postgresql")
    rows_copied: dict[str, int] = {}
    try:
        with psycopg.connect(url.render_as_string(hide_password=False)) as target:
            source_meta: dict[str, Any] = json.loads(
                source.execute("SELECT meta FROM bench_dataset").fetchone()[0]
            )
            target.execute("CREATE TABLE bench_dataset (meta TEXT NOT NULL)")
            columns = _target_columns(target)
            # Foreign keys are checked by the source already; rows go in table by table.
            target.execute("SET session_replication_role = replica")
            copied = [t for t in columns if t not in _KEPT and _has_table(source, t)]
            target.execute("TRUNCATE " + ", ".join(f'"{table}"' for table in copied))
            for table in copied:
                present = {row[1] for row in source.execute(f'PRAGMA table_info("{table}")')}
                wanted = [(name, kind) for name, kind in columns[table] if name in present]
                names = [name for name, _ in wanted]
                booleans = {i for i, (_, kind) in enumerate(wanted) if kind == "boolean"}
                rows_copied[table] = _copy_table(source, target, table, names, booleans)
            _reset_sequences(target)
            source_meta["load"] = {
                "events": source_meta["load"]["events"],
                "copied_from": "sqlite",
                "copy_s": round(time.perf_counter() - begin, 1),
                "rows": rows_copied,
                "ingest_events_per_s": 0,
                "sqlite_ingest_events_per_s": source_meta["load"].get("ingest_events_per_s"),
            }
            target.execute("DELETE FROM bench_dataset")
            target.execute(
                "INSERT INTO bench_dataset (meta) VALUES (%s)", (json.dumps(source_meta),)
            )
            target.commit()
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as target:
            say("Copy done; VACUUM ANALYZE")
            target.execute("VACUUM ANALYZE")
    finally:
        source.close()
    return source_meta


def _target_columns(target: psycopg.Connection[Any]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in target.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ):
        found.setdefault(table, []).append((column, kind))
    return found


def _has_table(source: sqlite3.Connection, table: str) -> bool:
    row = source.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def _copy_table(
    source: sqlite3.Connection,
    target: psycopg.Connection[Any],
    table: str,
    names: list[str],
    booleans: set[int],
) -> int:
    quoted = ", ".join(f'"{name}"' for name in names)
    count = 0
    with target.cursor().copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
        for row in source.execute(f'SELECT {quoted} FROM "{table}"'):
            if booleans:
                row = tuple(
                    bool(v) if i in booleans and v is not None else v for i, v in enumerate(row)
                )
            copy.write_row(row)
            count += 1
            if count % _ROWS_PER_NOTE == 0:
                say(f"Copying {table}: {count:,} rows")
    return count


def _reset_sequences(target: psycopg.Connection[Any]) -> None:
    """Each id sequence continues after the copied ids."""
    for table, column in target.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND (column_default LIKE 'nextval%%' "
        "OR is_identity = 'YES')"
    ).fetchall():
        target.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
            f'coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'
        )
