"""What differs between the databases TokenLedger runs on, in one place.

SQLAlchemy compiles most of the SQL the store writes for either database. What it
cannot, or what the hand-tuned hot paths (multi-row inserts, running-total seeks) spell
out as text, is here: the driver's placeholder, ``least`` / ``greatest``, the substring
test of search, how a transaction reads one snapshot and how writers of the same users
serialize, and the plan of the whole-day seeks. A third backend is one more class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, TextClause, bindparam, func, select, text
from sqlalchemy.engine import Connection

from tokenledger.store.search_index import MIN_LETTERS, SQLITE_TABLE

# Characters that may start a CSV cell without the formula guard, beside ASCII letters
# and digits (U+00C0-U+052F; tests/test_export_lines.py checks escape_cell agrees).
_PLAIN_LETTERS = (0xC0, 0x52F)


@dataclass(frozen=True)
class WholeDays:
    """The whole-day part of a usage query by key: extra CTEs (after the one naming
    the keys) and a SELECT of ``<keys>, <running-total differences>, first_us,
    last_us`` per key with usage in the days ``[:ds, :de)``."""

    ctes: list[str]
    select: str


class Dialect:
    """PostgreSQL's spelling; subclasses say where theirs differs."""

    name = "postgresql"
    param = "%s"  # the driver's placeholder, for statements that skip SQLAlchemy

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def render(self, expression: ColumnElement[Any]) -> str:
        """A SQLAlchemy expression as SQL text of this database (constants inlined)."""
        compiled = expression.compile(
            dialect=self._engine.dialect, compile_kwargs={"literal_binds": True}
        )
        return str(compiled)

    def least(self, *args: str) -> str:
        return f"LEAST({', '.join(args)})"

    def greatest(self, *args: str) -> str:
        return f"GREATEST({', '.join(args)})"

    def contains(self, haystack: str, needle: str) -> str:
        """A plain substring test (no pattern language to escape, faster than LIKE)."""
        return f"strpos({haystack}, {needle}) > 0"

    def search(self, alias: str, folded: str) -> tuple[str, dict[str, Any]]:
        """A WHERE condition on ``alias`` (a users row): its search key holds ``folded``.
        From three letters on, a LIKE that the trigram index serves (its wildcards
        escaped: the same matches as the substring test); shorter, the substring test
        over the table (no trigram to look up)."""
        if len(folded) < MIN_LETTERS:
            return self.contains(f"{alias}.search_key", ":q_folded"), {"q_folded": folded}
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{alias}.search_key LIKE :q_like", {"q_like": f"%{escaped}%"}

    def binary(self, column: str) -> str:
        """``column`` compared by code point (Python's order of texts, not a locale's)."""
        return f'{column} COLLATE "C"'

    # -- CSV written by the database (the events export: store/event_pages.py) ---------

    def csv_params(self, cells: int) -> dict[str, str]:
        """The parameters of :meth:`csv_plain` and :meth:`csv_line`."""
        return {"csv_eol": "\r\n"}

    def csv_plain(self, column: str) -> str:
        """Whether a text cell is written as it is: NULL, empty, or first an ASCII
        letter or digit or a character of U+00C0-U+052F (Latin, Greek and Cyrillic
        letters and marks: none is blank, invisible or a formula sign), so there is
        no formula to guard."""
        return (
            f"({column} IS NULL OR {column} = '' OR substr({column}, 1, 1) ~ '[A-Za-z0-9]' "
            f"OR ascii({column}) BETWEEN {_PLAIN_LETTERS[0]} AND {_PLAIN_LETTERS[1]})"
        )

    def csv_line(self, cells: Sequence[str]) -> str:
        """The cells (text: NULL is empty) joined by commas, then CRLF."""
        parts = [f"coalesce(CAST({cell} AS TEXT), '')" for cell in cells]
        return " || ',' || ".join(parts) + " || :csv_eol"

    def csv_timestamp(self, local_us: str) -> str:
        """Local microseconds since the epoch as Python's ``isoformat()`` of a naive
        datetime (the fraction only when not zero)."""
        return (
            f"to_char(to_timestamp({local_us} / 1000000) AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN {x} % 1000000 = 0 THEN '' "
            "ELSE '.' || lpad(CAST({x} % 1000000 AS TEXT), 6, '0') END"
        ).replace("{x}", local_us)

    def csv_dollars(self, nanos: str) -> str:
        """Nano-dollars (not negative) as exact dollars with nine decimals."""
        return (
            f"CAST({nanos} / 1000000000 AS TEXT) || '.' || "
            f"lpad(CAST({nanos} % 1000000000 AS TEXT), 9, '0')"
        )

    def snapshot(self, conn: Connection) -> Connection:
        """``conn`` set up so that its next transaction reads one snapshot.

        PostgreSQL's default READ COMMITTED takes a new snapshot per statement, so a
        report's statements could each see a different set of committed batches;
        REPEATABLE READ gives the whole transaction one snapshot (and a read-only one
        never fails to serialize).
        """
        return conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)

    # -- a batch's rows in one statement (the write path) -------------------------------

    # Whether a list of ids goes as one array parameter (:meth:`any_of`), however long.
    # The driver parses the text of every statement it runs for its placeholders, in
    # Python, uncached past a few kilobytes: a multi-row VALUES of 500 events (10,000
    # placeholders) cost more than storing them, and one statement per row is a round
    # trip per row. Rows go the same way from :data:`AT_ONCE_FROM` of them
    # (:meth:`rows_from_arrays`).
    lists_as_arrays = True
    # From how many rows a statement over arrays beats one statement per row: a
    # single event (a gateway request) pays for planning the larger statement, and its
    # array types vary with its values (p95 of the gateway's added latency 7 -> 12 ms).
    AT_ONCE_FROM = 32

    def at_once(self, rows: int) -> bool:
        """Whether ``rows`` rows are written in one statement over arrays."""
        return rows >= self.AT_ONCE_FROM

    def rows_from_arrays(
        self, table: Table, columns: Sequence[str], *, names: Sequence[str] | None = None
    ) -> str:
        """A FROM item of one row per array index, from one array parameter per
        column, typed as ``table``'s ``columns`` and named ``v(names)`` (the columns'
        own names by default): its rows come in array order. The arrays are
        sent in binary (``%b``): the driver writes them ten times faster than as text."""
        dialect = self._engine.dialect
        arrays = ", ".join(
            f"CAST(%b AS {table.c[column].type.compile(dialect=dialect)}[])" for column in columns
        )
        return f"unnest({arrays}) AS v({', '.join(names or columns)})"

    def any_of(self, column: str, name: str, sql_type: str) -> str:
        """``column`` is one of the values of the list parameter ``name`` (one array,
        however long the list); the statement goes through :meth:`with_list`."""
        return f"{column} = ANY(CAST(:{name} AS {sql_type}[]))"

    def with_list(self, statement: str, name: str) -> TextClause:
        """``statement`` (holding :meth:`any_of` of ``name``) ready to run."""
        return text(statement)

    def keep_serial(self, conn: Connection) -> None:
        """No parallel plan for the rest of this transaction. The usage-by-key
        statements are index seeks per key and scans of a few thousand bucket rows, which
        the planner would still split across worker processes: starting them cost more
        than they saved (10-25% slower reports at 10M events on two cores)."""
        conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")

    def lock_users(self, conn: Connection, keys: Iterable[int]) -> None:
        """Serialize writers that share a user (key order rules out deadlocks)."""
        conn.execute(
            text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": sorted(set(keys))},
        )

    def serialize(self, conn: Connection, name: str) -> None:
        """Make the write transaction of ``conn`` the only one at a time among those
        that serialize on ``name``: a transaction-scoped advisory lock."""
        digest = hashlib.sha256(b"tokenledger-lock\0" + name.encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        conn.execute(select(func.pg_advisory_xact_lock(key)))

    def whole_days(
        self,
        days_table: str,
        keys: Sequence[str],
        source: str,
        differences: str,
        *,
        first: bool,
    ) -> WholeDays:
        """Each key's running totals at the end minus at the start: two LATERAL index
        seeks per key of ``source`` (a CTE whose columns are the ``keys``)."""
        same = _same_key("d", "src", keys)
        return WholeDays(
            [],
            f"SELECT {_keys('src', keys)}{differences}, {_first(days_table, keys, 'src', first)}, "
            f"hi.day_last_us FROM {source} src "
            f"JOIN LATERAL (SELECT * FROM {days_table} d WHERE {same}"
            "d.day < :de ORDER BY d.day DESC LIMIT 1) hi ON hi.day >= :ds "
            f"LEFT JOIN LATERAL (SELECT * FROM {days_table} d WHERE {same}"
            "d.day < :ds ORDER BY d.day DESC LIMIT 1) lo ON true",
        )


class SqliteDialect(Dialect):
    name = "sqlite"
    param = "?"

    def least(self, *args: str) -> str:
        return f"min({', '.join(args)})"

    def greatest(self, *args: str) -> str:
        return f"max({', '.join(args)})"

    def contains(self, haystack: str, needle: str) -> str:
        return f"instr({haystack}, {needle}) > 0"

    def search(self, alias: str, folded: str) -> tuple[str, dict[str, Any]]:
        """From three letters on, the people the FTS5 trigram table finds for the phrase
        (all its trigrams in a row: every key holding it, perhaps a few more), then the
        substring test on those alone."""
        found = self.contains(f"{alias}.search_key", ":q_folded")
        if len(folded) < MIN_LETTERS:
            return found, {"q_folded": folded}
        phrase = '"' + folded.replace('"', '""') + '"'
        indexed = (
            f"{alias}.id IN (SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH :q_match)"
        )
        return f"{indexed} AND {found}", {"q_folded": folded, "q_match": phrase}

    def binary(self, column: str) -> str:
        return column  # SQLite compares texts by their bytes (UTF-8: by code point)

    def csv_params(self, cells: int) -> dict[str, str]:
        return {"csv_format": ",".join(["%s"] * cells) + "\r\n"}

    def csv_plain(self, column: str) -> str:
        return (
            f"({column} IS NULL OR {column} = '' OR {column} GLOB '[A-Za-z0-9]*' "
            f"OR unicode({column}) BETWEEN {_PLAIN_LETTERS[0]} AND {_PLAIN_LETTERS[1]})"
        )

    def csv_line(self, cells: Sequence[str]) -> str:
        """One printf (NULL prints empty): far cheaper than a chain of ``||``."""
        return f"printf(:csv_format, {', '.join(cells)})"

    def csv_timestamp(self, local_us: str) -> str:
        return (
            f"strftime('%Y-%m-%dT%H:%M:%S', {local_us} / 1000000, 'unixepoch') || "
            f"CASE WHEN {local_us} % 1000000 = 0 THEN '' "
            f"ELSE printf('.%06d', {local_us} % 1000000) END"
        )

    def csv_dollars(self, nanos: str) -> str:
        return f"({nanos} / 1000000000) || printf('.%09d', {nanos} % 1000000000)"

    def snapshot(self, conn: Connection) -> Connection:
        return conn  # a SQLite read transaction sees one snapshot (WAL)

    def serialize(self, conn: Connection, name: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already makes one writer at a time."""

    # SQLite runs in the process: a prepared statement per row costs no round trip,
    # and the driver keeps the statements it prepared by their text.
    lists_as_arrays = False

    def at_once(self, rows: int) -> bool:
        return False

    def any_of(self, column: str, name: str, sql_type: str) -> str:
        return f"{column} IN :{name}"

    def with_list(self, statement: str, name: str) -> TextClause:
        """``statement`` with the list ``name`` bound expanding (a placeholder each)."""
        return text(statement).bindparams(bindparam(name, expanding=True))

    def keep_serial(self, conn: Connection) -> None:
        """Nothing to do: SQLite plans are serial."""

    def lock_users(self, conn: Connection, keys: Iterable[int]) -> None:
        """Nothing to do: a SQLite write transaction (BEGIN IMMEDIATE) is alone."""

    def whole_days(
        self,
        days_table: str,
        keys: Sequence[str],
        source: str,
        differences: str,
        *,
        first: bool,
    ) -> WholeDays:
        """No LATERAL: the two row ids per key by correlated seeks in a CTE, then the
        rows by rowid (faster than joining the seeks' rows directly)."""
        same = _same_key("d", "src", keys)
        return WholeDays(
            [
                f"s AS MATERIALIZED (SELECT {_keys('src', keys)}"
                f"(SELECT d.id FROM {days_table} d WHERE {same}d.day < :de "
                "ORDER BY d.day DESC LIMIT 1) AS hi_id, "
                f"(SELECT d.id FROM {days_table} d WHERE {same}d.day < :ds "
                "ORDER BY d.day DESC LIMIT 1) AS lo_id, "
                f"{_first(days_table, keys, 'src', first)} AS first_us FROM {source} src)"
            ],
            f"SELECT {_keys('s', keys)}{differences}, s.first_us, hi.day_last_us FROM s "
            f"JOIN {days_table} hi ON hi.id = s.hi_id "
            f"LEFT JOIN {days_table} lo ON lo.id = s.lo_id "
            "WHERE hi.day >= :ds",
        )


def _keys(alias: str, keys: Sequence[str]) -> str:
    return "".join(f"{alias}.{key}, " for key in keys)


def _same_key(alias: str, other: str, keys: Sequence[str]) -> str:
    return "".join(f"{alias}.{key} = {other}.{key} AND " for key in keys)


def _first(days_table: str, keys: Sequence[str], alias: str, wanted: bool) -> str:
    """The first request in the days ``[:ds, :de)`` of a key (one more seek), or NULL
    when the caller looks it up later for the rows it shows."""
    if not wanted:
        return "CAST(NULL AS BIGINT)"  # typed: a CTE of it compares with numbers
    return (
        f"(SELECT d.day_first_us FROM {days_table} d WHERE {_same_key('d', alias, keys)}"
        "d.day >= :ds AND d.day < :de ORDER BY d.day LIMIT 1)"
    )


def dialect_of(engine: Engine) -> Dialect:
    """The dialect of ``engine``'s database."""
    is_sqlite = engine.dialect.name == "sqlite"
    return SqliteDialect(engine) if is_sqlite else Dialect(engine)
