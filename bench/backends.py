"""Where the benchmark's databases live: SQLite files or databases on a PostgreSQL server.

Each dataset gets a database of its own, named after its key, so several datasets
(the main one, the scaling one, the 100,000-user one, the ingest targets) sit side by
side and a later run can reuse them.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.support.postgres import Cluster, PostgresUnavailable, _find_binary, free_port


class Backend(Protocol):
    name: str

    def url_for(self, key: str) -> str:
        """The database URL of dataset ``key`` (it may not exist yet)."""

    def fresh(self, key: str) -> str:
        """An empty database for ``key`` (dropping what was there); its URL."""

    def version(self) -> str: ...

    def close(self) -> None: ...


@dataclass
class SqliteBackend:
    data_dir: Path
    name: str = "sqlite"

    def url_for(self, key: str) -> str:
        return f"sqlite:///{self.data_dir / f'{key}.db'}"

    def fresh(self, key: str) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            (self.data_dir / f"{key}.db{suffix}").unlink(missing_ok=True)
        return self.url_for(key)

    def version(self) -> str:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"

    def close(self) -> None:
        pass


def _database_name(key: str) -> str:
    return "tlbench_" + re.sub(r"[^a-z0-9_]", "_", key.lower())


@dataclass
class PostgresBackend:
    """Databases ``tlbench_<key>`` on the server of ``server_url`` (needs CREATEDB)."""

    server_url: str
    cluster: Cluster | None = None
    name: str = "postgresql"

    def url_for(self, key: str) -> str:
        url = make_url(self.server_url).set(database=_database_name(key))
        return url.render_as_string(hide_password=False)

    def fresh(self, key: str) -> str:
        name = _database_name(key)
        admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url_for(key)

    def version(self) -> str:
        admin = create_engine(self.server_url)
        try:
            with admin.connect() as conn:
                return f"PostgreSQL {conn.execute(text('SHOW server_version')).scalar_one()}"
        finally:
            admin.dispose()

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def start_kept_cluster(base: Path) -> Cluster:
    """A PostgreSQL cluster in ``base`` (created on first use, kept for later runs).

    Like the tests' throwaway cluster but with fsync on, so ingest figures include
    durable commits, and kept so that the datasets in it are reused.
    """
    initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    import os

    as_postgres = os.geteuid() == 0
    base = base.resolve()  # pg_ctl runs as another user, elsewhere
    datadir = base / "data"
    cluster = Cluster(datadir, free_port(), pg_ctl, as_postgres)
    if not (datadir / "PG_VERSION").exists():
        if base.exists() and any(base.iterdir()):
            # Never clear a directory this did not make: a wrong --data-dir would lose it.
            leftovers = {path.name for path in base.iterdir()} - {"data", "postgres.log"}
            if leftovers or (datadir.exists() and any(datadir.iterdir())):
                raise PostgresUnavailable(
                    f"{base} holds files but no PostgreSQL cluster; not touching it"
                )
            shutil.rmtree(base)
        base.mkdir(parents=True, exist_ok=True)
        if as_postgres:
            shutil.chown(base, "postgres", "postgres")
        cluster._run(
            initdb, "-D", str(datadir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        with (datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nmax_connections = 100\nshared_buffers = 512MB\nwork_mem = 64MB\n"
                "maintenance_work_mem = 256MB\nmax_wal_size = 4GB\n"
            )
        if as_postgres:
            shutil.chown(datadir / "postgresql.conf", "postgres", "postgres")
    (base / "postgres.log").unlink(missing_ok=True)
    cluster.start()
    return cluster
