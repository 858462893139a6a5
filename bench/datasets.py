"""Datasets: generated, written through TokenLedger's own ingest path, kept for reuse.

A dataset is written batch by batch (1000 events, one transaction each) with
:func:`tokenledger.ingest.ingest`, exactly what ``POST /api/v1/events`` runs after
reading the body, so its rollups are the product's own. What it holds is described in
a one-row table ``bench_dataset`` written last: a database without it (an interrupted
load) is rebuilt, one with it is reused by later runs with the same parameters.

A reused dataset keeps the instant it was generated up to (``end``), and every report
is asked relative to that instant: "today" is the local date of ``end``, holding the
morning's events as it did then. The work a report does is the same on the day of the
build and a month later; only ``--rebuild`` (or new parameters) makes a new dataset.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import String, text
from sqlalchemy.exc import SQLAlchemyError

from bench.backends import Backend
from bench.copy import copy_sqlite_dataset
from bench.generate import GENERATOR_VERSION, Generator
from bench.progress import Meter, say
from tokenledger.clock import now_us, system_clock
from tokenledger.importer import BATCH_SIZE
from tokenledger.ingest import ingest
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import Database, DatabaseUnavailable, open_database
from tokenledger.store.schema import events
from tokenledger.store.usage_store import UsageStore

# The transaction size of `tokenledger import`: a dataset loads as an import would
# (1,000 per batch, the HTTP request size, made a 10M load about a third slower).
BATCH = BATCH_SIZE


@dataclass(frozen=True)
class DatasetSpec:
    events: int
    users: int
    seed: int
    days: int = 365

    @property
    def key(self) -> str:
        return f"e{self.events}-u{self.users}-s{self.seed}-d{self.days}-g{GENERATOR_VERSION}"

    def describe(self) -> str:
        return f"{self.events:,} events, {self.users:,} users, {self.days} days"


@dataclass
class Dataset:
    spec: DatasetSpec
    url: str
    end: datetime
    reused: bool
    load: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Database:
        return open_database(Settings(database_url=self.url))

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self.spec),
            "key": self.spec.key,
            "end": self.end.isoformat(),
            "reused": self.reused,
            "load": self.load,
        }


def _read_meta(url: str) -> dict[str, Any] | None:
    db = open_database(Settings(database_url=url))
    try:
        with db.read() as conn:
            found = conn.execute(text("SELECT meta FROM bench_dataset")).scalar()
        if found is None:
            return None
        # An older schema is upgraded, as an installation is: migrations carry data.
        migrate.upgrade(db)
        meta: dict[str, Any] = json.loads(found)
        return meta
    except (SQLAlchemyError, DatabaseUnavailable):  # no database or table: not built (fully)
        return None
    finally:
        db.dispose()


def ensure(
    backend: Backend, spec: DatasetSpec, *, rebuild: bool = False, copy_from: Path | None = None
) -> Dataset:
    """The dataset of ``spec``: the stored one if complete, else a new one (on
    PostgreSQL copied from the SQLite dataset of the same spec in ``copy_from`` when
    that directory has it, see :mod:`bench.copy`)."""
    url = backend.url_for(spec.key)
    meta = None if rebuild else _read_meta(url)
    if meta is not None and meta.get("spec") == asdict(spec):
        say(f"Reusing dataset {spec.key} ({spec.describe()}, generated up to {meta['end']})")
        return Dataset(spec, url, datetime.fromisoformat(meta["end"]), True, meta["load"])
    if copy_from is not None and backend.name == "postgresql":
        source = copy_from / f"{spec.key}.db"
        source_meta = _read_meta(f"sqlite:///{source}") if source.exists() else None
        if source_meta is None or source_meta.get("spec") != asdict(spec):
            raise RuntimeError(f"no complete SQLite dataset {spec.key} in {copy_from}")
        say(f"Copying dataset {spec.key} from {source}")
        url = backend.fresh(spec.key)
        meta = copy_sqlite_dataset(source, url)
        return Dataset(spec, url, datetime.fromisoformat(meta["end"]), False, meta["load"])
    return build(backend, spec)


def build(backend: Backend, spec: DatasetSpec) -> Dataset:
    """Generate ``spec`` up to now and write it through the ingest path."""
    say(f"Building dataset {spec.key}: {spec.describe()}")
    url = backend.fresh(spec.key)
    db = open_database(Settings(database_url=url))
    try:
        migrate.upgrade(db)
        end = datetime.now(UTC).replace(microsecond=0)
        generator = Generator(
            events=spec.events, users=spec.users, seed=spec.seed, days=spec.days, end=end
        )
        load = write_events(db, generator, label=f"Loading {spec.key}", total=spec.events)
        _finish(db)
        meta = {"spec": asdict(spec), "end": end.isoformat(), "load": load}
        with db.write() as conn:
            conn.execute(text("CREATE TABLE bench_dataset (meta TEXT NOT NULL)"))
            conn.execute(
                text("INSERT INTO bench_dataset (meta) VALUES (:m)"), {"m": json.dumps(meta)}
            )
    finally:
        db.dispose()
    return Dataset(spec, url, end, False, load)


def write_events(db: Database, generator: Generator, *, label: str, total: int) -> dict[str, Any]:
    """Ingest every generated event in batches; returns rates (overall and per tenth)."""
    meter = Meter(label, total)
    store = UsageStore(db)
    started = time.perf_counter()
    in_ingest = 0.0
    tenths: list[float] = []  # events per second of ingest time, per tenth of the load
    tenth_started, tenth_size = 0.0, max(1, total // 10)
    done = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal in_ingest, done, tenth_started
        begin = time.perf_counter()
        result = ingest(store, batch, now_us=now_us(system_clock))
        in_ingest += time.perf_counter() - begin
        if result.count("accepted") != len(batch):
            bad = next(o for o in result.outcomes if o.status != "accepted")
            raise RuntimeError(f"generated event not accepted: {bad}")
        done += len(batch)
        if done // tenth_size > len(tenths) and len(tenths) < 10:
            tenths.append(tenth_size / max(in_ingest - tenth_started, 1e-9))
            tenth_started = in_ingest
        meter.advance(len(batch))
        batch.clear()

    for event in generator.events():
        batch.append(event)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    wall = time.perf_counter() - started
    return {
        "events": done,
        "batch_size": BATCH,
        "wall_s": round(wall, 1),
        "ingest_s": round(in_ingest, 1),
        "events_per_s": round(done / wall),
        "ingest_events_per_s": round(done / max(in_ingest, 1e-9)),
        "ingest_events_per_s_by_tenth": [round(rate) for rate in tenths],
    }


def _finish(db: Database) -> None:
    """What a running installation has done by itself some time after a load."""
    if db.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:  # autovacuum would analyze (and vacuum) the new tables on its own
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


# -- the same events in DuckDB ------------------------------------------------------


def _event_columns(db: Database) -> dict[str, str]:
    """The events columns the reports are computed from, with their DuckDB types."""
    names = ("user_pk", "started_us", *UsageStore(db).metric_event_columns)
    return {
        name: "VARCHAR" if isinstance(events.c[name].type, String) else "BIGINT" for name in names
    }


def duckdb_copy(dataset: Dataset, data_dir: Path, backend_name: str) -> Path:
    """A DuckDB file holding the dataset's events and users (made once, then reused).

    DuckDB's SQLite and PostgreSQL readers are extensions downloaded on first use, so
    the rows travel through a CSV file written here instead.
    """
    path = data_dir / f"{backend_name}-{dataset.spec.key}.duckdb"
    stamp = dataset.end.isoformat()
    if path.exists():
        with duckdb.connect(str(path), read_only=True) as conn:
            try:
                found = conn.execute("SELECT stamp FROM bench_copy").fetchone()
            except duckdb.Error:
                found = None
        if found is not None and found[0] == stamp:
            return path
        path.unlink()
    say(f"Copying {dataset.spec.key} into DuckDB")
    path.parent.mkdir(parents=True, exist_ok=True)  # a PostgreSQL run's data dir may not be
    events_csv, users_csv = path.with_suffix(".events.csv"), path.with_suffix(".users.csv")
    db = dataset.open()
    try:
        event_columns = _event_columns(db)
        _dump(db, f"SELECT {', '.join(event_columns)} FROM events", events_csv)
        _dump(db, "SELECT id, external_id FROM users", users_csv)
    finally:
        db.dispose()
    with duckdb.connect(str(path)) as conn:
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in event_columns.items())
        conn.execute(
            "CREATE TABLE events AS SELECT * FROM "
            f"read_csv(?, header = true, columns = {{{columns}}})",
            [str(events_csv)],
        )
        conn.execute(
            "CREATE TABLE users AS SELECT * FROM read_csv(?, header = true, "
            "columns = {'id': 'BIGINT', 'external_id': 'VARCHAR'})",
            [str(users_csv)],
        )
        conn.execute("CREATE TABLE bench_copy AS SELECT ? AS stamp", [stamp])
    events_csv.unlink()
    users_csv.unlink()
    return path


def _dump(db: Database, query: str, path: Path) -> None:
    with db.engine.connect() as conn, path.open("w", newline="") as out:
        result = conn.execution_options(stream_results=True).exec_driver_sql(query)
        writer = csv.writer(out)
        writer.writerow(result.keys())
        while rows := result.fetchmany(50_000):
            writer.writerows(rows)
