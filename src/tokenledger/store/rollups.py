"""Recompute the rollups from raw events: ``tokenledger verify`` and ``rebuild-rollups``.

The expected rollups are plain GROUP BY queries over ``events``; ``verify`` compares
them with the stored tables both ways (``EXCEPT``), ``rebuild`` replaces the stored
ones with them. Both run inside one transaction, so they see one snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tokenledger.localdays import US_PER_DAY, US_PER_HOUR, US_PER_QUARTER
from tokenledger.store.database import Database
from tokenledger.store.schema import METRICS

RAW_SUMS = (
    # One per schema.METRICS, over raw events.
    "count(*)",
    "sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END)",
    "sum(input_tokens)",
    "sum(output_tokens)",
    "sum(coalesce(cache_read_tokens, 0))",
    "sum(coalesce(cache_write_tokens, 0))",
    "sum(coalesce(reasoning_tokens, 0))",
    "sum(duration_ms)",
)


def _bucket(step: int) -> str:
    """Floor division of started_us by ``step`` (SQL ``/`` truncates toward zero)."""
    return (
        f"(CASE WHEN started_us >= 0 THEN started_us / {step} "
        f"ELSE -((-started_us - 1) / {step}) - 1 END)"
    )


def _expected_buckets(step: int, *, per_user: bool, where: str = "") -> str:
    keys = f"{_bucket(step)} AS bucket" + (", user_pk" if per_user else "")
    group = "1, 2" if per_user else "1"
    sums = ", ".join(f"{expr} AS {name}" for expr, name in zip(RAW_SUMS, METRICS, strict=True))
    return (
        f"SELECT {keys}, {sums}, min(started_us) AS first_us, max(started_us) AS last_us "
        f"FROM events {where} GROUP BY {group}"
    )


def _expected_days(where: str = "") -> str:
    sums = ", ".join(f"{expr} AS {name}" for expr, name in zip(RAW_SUMS, METRICS, strict=True))
    running = ", ".join(
        f"sum({name}) OVER (PARTITION BY user_pk ORDER BY day) AS cum_{name}" for name in METRICS
    )
    return (
        f"SELECT user_pk, day, {running}, day_first_us, day_last_us FROM ("
        f"SELECT user_pk, {_bucket(US_PER_DAY)} AS day, {sums}, "
        "min(started_us) AS day_first_us, max(started_us) AS day_last_us "
        f"FROM events {where} GROUP BY 1, 2) AS daily"
    )


@dataclass(frozen=True)
class RollupTable:
    name: str
    columns: str
    expected: str
    step: int | None = None  # bucket width of a total table (None: per user)


def _tables(users_where: str = "", totals_where: str = "") -> list[RollupTable]:
    """The rollup tables with their recomputation from the events (restricted by the
    ``WHERE`` clauses given: per-user tables by ``users_where``, totals by ``totals_where``)."""
    bucket_columns = ", ".join(("bucket", "user_pk", *METRICS, "first_us", "last_us"))
    total_columns = ", ".join(("bucket", *METRICS, "first_us", "last_us"))
    day_columns = ", ".join(
        ("user_pk", "day", *(f"cum_{name}" for name in METRICS), "day_first_us", "day_last_us")
    )
    return [
        RollupTable(
            "rollup_user_quarter",
            bucket_columns,
            _expected_buckets(US_PER_QUARTER, per_user=True, where=users_where),
        ),
        RollupTable(
            "rollup_user_hour",
            bucket_columns,
            _expected_buckets(US_PER_HOUR, per_user=True, where=users_where),
        ),
        RollupTable("rollup_user_day", day_columns, _expected_days(users_where)),
        RollupTable(
            "rollup_total_quarter",
            total_columns,
            _expected_buckets(US_PER_QUARTER, per_user=False, where=totals_where),
            US_PER_QUARTER,
        ),
        RollupTable(
            "rollup_total_hour",
            total_columns,
            _expected_buckets(US_PER_HOUR, per_user=False, where=totals_where),
            US_PER_HOUR,
        ),
    ]


_USERS_SPAN_WRONG = (
    "SELECT count(*) FROM users u JOIN ("
    "SELECT user_pk, min(started_us) AS lo, max(started_us) AS hi FROM events GROUP BY user_pk"
    ") e ON e.user_pk = u.id WHERE u.first_us > e.lo OR u.last_us < e.hi"
)


def verify(db: Database) -> dict[str, int]:
    """Rows that differ between each rollup table and its recomputation (0 = clean)."""
    differences: dict[str, int] = {}
    with db.read() as conn:
        for table in _tables():
            stored = f"SELECT {table.columns} FROM {table.name}"
            expected = f"SELECT {table.columns} FROM ({table.expected}) AS x"
            count = conn.execute(
                text(
                    f"SELECT (SELECT count(*) FROM ({expected} EXCEPT {stored}) AS a) + "
                    f"(SELECT count(*) FROM ({stored} EXCEPT {expected}) AS b)"
                )
            ).scalar_one()
            differences[table.name] = int(count)
        differences["users (activity span)"] = int(
            conn.execute(text(_USERS_SPAN_WRONG)).scalar_one()
        )
    return differences


def rebuild(db: Database) -> dict[str, int]:
    """Replace every rollup with its recomputation; returns the new row counts."""

    def work(conn: Connection) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table in _tables():
            conn.execute(text(f"DELETE FROM {table.name}"))
            _insert_expected(conn, table)
            counts[table.name] = int(
                conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one()
            )
        _update_user_spans(conn)
        return counts

    return db.run_write(work)


def _insert_expected(
    conn: Connection, table: RollupTable, params: dict[str, int] | None = None
) -> None:
    conn.execute(
        text(
            f"INSERT INTO {table.name} ({table.columns}) "
            f"SELECT {table.columns} FROM ({table.expected}) AS x"
        ),
        params or {},
    )


def _update_user_spans(conn: Connection, where: str = "") -> None:
    conn.execute(
        text(
            "UPDATE users SET first_us = s.lo, last_us = s.hi FROM ("
            "SELECT user_pk, min(started_us) AS lo, max(started_us) AS hi "
            f"FROM events {where} GROUP BY user_pk) AS s WHERE s.user_pk = users.id"
        )
    )


def rebuild_part(conn: Connection, *, users_sql: str, start_us: int, end_us: int) -> None:
    """Rewrite, in ``conn``'s transaction, the rollup rows that events of the users
    ``users_sql`` selects (a ``SELECT`` of user pks) between ``start_us`` and ``end_us``
    fed: all of those users' rows and spans, and the total buckets of that time (after
    some of their events were deleted, say)."""
    users_where = f"WHERE user_pk IN ({users_sql})"
    for table in _tables(users_where, "WHERE started_us >= :lo AND started_us < :hi"):
        if table.step is None:
            conn.execute(text(f"DELETE FROM {table.name} {users_where}"))
            _insert_expected(conn, table)
            continue
        first, last = start_us // table.step, end_us // table.step
        conn.execute(
            text(f"DELETE FROM {table.name} WHERE bucket >= :first AND bucket <= :last"),
            {"first": first, "last": last},
        )
        _insert_expected(conn, table, {"lo": first * table.step, "hi": (last + 1) * table.step})
    _update_user_spans(conn, users_where)
