"""Engines and transactions for SQLite and PostgreSQL.

SQLite: WAL, a busy timeout, foreign keys, the ``synchronous`` level from settings,
and every write transaction opened with ``BEGIN IMMEDIATE`` so two writers never
deadlock on a lock upgrade. PostgreSQL: READ COMMITTED writes, retried on deadlock or
serialization failure, and read-only REPEATABLE READ reads (one snapshot each).

SQLite's page cache lives in this process, one per connection: reports keep theirs
large (:data:`CACHE_KIB`), and reads of many rows read once (an events export's pages,
:meth:`Database.scan`) go through a pool of their own with a small one
(:data:`SCAN_CACHE_KIB`), so an export neither grows the process by a large cache per
connection it happens to get nor pushes the reports' pages out of theirs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tokenledger.settings import Settings
from tokenledger.store.dialect import dialect_of

T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected

# SQLite page cache per connection, in KiB: the reports' connections, and the scans'.
CACHE_KIB = 64 * 1024
SCAN_CACHE_KIB = 8 * 1024


log = logging.getLogger("tokenledger.database")


class DatabaseUnavailable(Exception):
    """The database cannot be reached or written right now (HTTP 503).

    Its message is the reason as an answer may show it: never a host, a port or a
    file path. The driver's own words go to the log (``tokenledger.database``).
    """


class Database:
    """One engine, its dialect (what differs between databases) and transactions; on a
    SQLite file, a second engine for scans (:meth:`scan`)."""

    def __init__(
        self,
        engine: Engine,
        *,
        sqlite_file: Path | None = None,
        scan_engine: Engine | None = None,
    ) -> None:
        self.engine = engine
        self.scan_engine = scan_engine or engine
        self.dialect = dialect_of(engine)
        self.sqlite_file = sqlite_file

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine of this database (for listeners that must see all statements)."""
        if self.scan_engine is self.engine:
            return (self.engine,)
        return (self.engine, self.scan_engine)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without error."""
        self.check_writable()
        with self._translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(tokenledger_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot (one transaction) for consistent reports."""
        with self._snapshot(self.engine) as conn:
            yield conn

    @contextmanager
    def scan(self) -> Iterator[Connection]:
        """A snapshot like :meth:`read`, for many rows read once (a page of an events
        export). On a SQLite file it runs on a connection of the scan pool, whose page
        cache is :data:`SCAN_CACHE_KIB`: the pages it reads are not kept in the large
        cache of a report connection (at 10M events, a 31-day events export grew the
        server by 64 MiB for each pooled connection its pages happened to run on)."""
        with self._snapshot(self.scan_engine) as conn:
            yield conn

    @contextmanager
    def _snapshot(self, engine: Engine) -> Iterator[Connection]:
        with self._translate_errors(), engine.connect() as conn:
            conn = self.dialect.snapshot(conn)
            with conn.begin():
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

    def check_writable(self) -> None:
        """DatabaseUnavailable if the SQLite file was made read-only.

        Writes are refused then: connections opened before could still write through
        their open file descriptors, against the intent of whoever changed the mode (a
        backup, a migration, a full disk's cleanup). Reports call it too: while usage
        cannot be recorded, their numbers would silently stop growing.
        """
        path = self.sqlite_file
        if path is None or not path.exists():
            return  # in memory, or not created yet: SQLite creates it
        if not os.access(path, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            log.warning("database unavailable: the SQLite file %s is not writable", path)
            raise DatabaseUnavailable("the SQLite file is not writable")

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except PoolTimeout as exc:
            raise DatabaseUnavailable("no free database connection in time: all busy") from exc
        except OperationalError as exc:
            if _sqlstate(exc) in _RETRY_SQLSTATES:
                raise
            raise DatabaseUnavailable(_describe(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailable(_describe(exc)) from exc
            raise

    def serialize(self, conn: Connection, name: str) -> None:
        """Make the write transaction of ``conn`` the only one at a time among those
        that serialize on ``name``, until it ends (check-then-insert made atomic)."""
        self.dialect.serialize(conn, name)

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _describe(exc: DBAPIError) -> str:
    """The reason an answer may show; the driver's whole message is logged."""
    text = str(exc.orig).strip().splitlines()
    log.warning("database unavailable: %s", " ".join(text) or type(exc.orig).__name__)
    sqlite_error = getattr(exc.orig, "sqlite_errorname", None)
    if sqlite_error is not None:  # SQLite's messages are fixed texts: no path in them
        return text[0] if text else str(sqlite_error)
    state = _sqlstate(exc)
    if state is None or state.startswith("08"):
        return "the database server cannot be reached"
    if state.startswith("57"):
        return "the database server is shutting down or restarting"
    return f"the database server refused the request (SQLSTATE {state})"


def open_database(settings: Settings) -> Database:
    """Create the engine described by ``settings`` (no connection is made yet)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        sqlite_file = _sqlite_file(url)
        # In memory, each engine would open a database of its own: scans share the one.
        scan = None if sqlite_file is None else _sqlite_engine(settings, scan=True)
        return Database(_sqlite_engine(settings), sqlite_file=sqlite_file, scan_engine=scan)
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


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL (None in memory or for a URI filename)."""
    if not url.database or url.database == ":memory:" or url.query.get("uri"):
        return None
    return Path(url.database).expanduser().absolute()


def _sqlite_engine(settings: Settings, *, scan: bool = False) -> Engine:
    """The engine of reports and writes, or with ``scan`` the one of :meth:`Database.scan`
    (a small page cache). Both hand out the connection used last first: sequential
    requests then run on one connection and its warm cache rather than rotating through
    every connection the pool ever opened, each filling a cache of its own (one export's
    pages on one connection; at 10M events, reports after a burst of 4: 50 MiB less
    resident, no slower)."""
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    cache_kib = SCAN_CACHE_KIB if scan else CACHE_KIB
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_use_lifo=True,
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
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute("PRAGMA wal_autocheckpoint=16000")
        finally:
            cursor.close()

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # A connection opened while the file was read-only stays read-only for good:
        # treat it like a lost connection, so the pool opens new ones (which can write
        # once the file is writable again) instead of failing forever.
        code = getattr(context.original_exception, "sqlite_errorname", "")
        if code.startswith("SQLITE_READONLY"):
            context.is_disconnect = True

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("tokenledger_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
