"""Engines and transactions for SQLite and PostgreSQL.

SQLite: WAL, a busy timeout, foreign keys, the ``synchronous`` level from settings,
and every write transaction opened with ``BEGIN IMMEDIATE`` so two writers never
deadlock on a lock upgrade. PostgreSQL: plain READ COMMITTED transactions; writes are
retried on deadlock or serialization failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from tokenledger.settings import Settings

T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


class DatabaseUnavailable(Exception):
    """The database cannot be reached or written right now (HTTP 503)."""


class Database:
    """One engine plus the few dialect differences the store needs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # Placeholder of the driver's paramstyle, for hot paths that skip SQLAlchemy.
        self.param = "?" if self.is_sqlite else "%s"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without error."""
        with self._translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(tokenledger_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot (one transaction) for consistent reports."""
        with self._translate_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    def run_write(self, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, retrying deadlocks and serialization
        failures (PostgreSQL) with a short back-off."""
        for attempt in range(1, attempts + 1):
            try:
                with self.write() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == attempts or _sqlstate(exc) not in _RETRY_SQLSTATES:
                    raise
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            if _sqlstate(exc) in _RETRY_SQLSTATES:
                raise
            raise DatabaseUnavailable(_describe(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailable(_describe(exc)) from exc
            raise

    def least(self, *args: str) -> str:
        return f"{'min' if self.is_sqlite else 'LEAST'}({', '.join(args)})"

    def greatest(self, *args: str) -> str:
        return f"{'max' if self.is_sqlite else 'GREATEST'}({', '.join(args)})"

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _describe(exc: DBAPIError) -> str:
    text = str(exc.orig).strip().splitlines()
    return text[0] if text else type(exc.orig).__name__


def open_database(settings: Settings) -> Database:
    """Create the engine described by ``settings`` (no connection is made yet)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return Database(_sqlite_engine(settings))
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        # JIT compiling pays off for long analytic scans, not for reports made of
        # thousands of index seeks: it added 10-20 ms to each such report.
        connect_args={"connect_timeout": 5, "options": "-c jit=off"},
    )
    return Database(engine)


def _sqlite_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=False,
        connect_args={
            "check_same_thread": False,
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
        },
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA temp_store=MEMORY")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("tokenledger_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
