"""Recompute the rollups from raw events: ``tokenledger verify`` and ``rebuild-rollups``.

The expected content of every rollup table is a plain GROUP BY over ``events``, built
from the rollup's declaration (its keys and grain) and each metric's per-event SQL.
``verify`` compares it with the stored table both ways (``EXCEPT``), ``rebuild``
replaces the stored rows with it. Both run inside one transaction, so they see one
snapshot.

After retention deleted the events before a horizon (a UTC midnight, see
:mod:`tokenledger.store.retention`), both cover only the retained window: bucket rows
from the horizon on, and running day totals from the horizon on, computed from the
retained events plus each key's last stored total before the horizon (its base).
Rollup rows before the horizon are kept as they are: nothing is left to check them by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tokenledger.store import retention
from tokenledger.store.rollups import Level
from tokenledger.store.schema import events

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore

_USERS_SPAN_WRONG = (
    "SELECT count(*) FROM users u JOIN ("
    "SELECT user_pk, min(started_us) AS lo, max(started_us) AS hi FROM events GROUP BY user_pk"
    ") e ON e.user_pk = u.id WHERE u.first_us > e.lo OR u.last_us < e.hi"
)


def _bucket(step: int, column: str = "started_us") -> str:
    """Floor division of ``column`` by ``step`` (SQL ``/`` truncates toward zero)."""
    return (
        f"(CASE WHEN {column} >= 0 THEN {column} / {step} ELSE -((-{column} - 1) / {step}) - 1 END)"
    )


def stored_columns(store: UsageStore, level: Level) -> list[str]:
    """The columns of ``level``'s table that the events determine (not its id)."""
    keys = list(level.rollup.key_columns)
    if level.grain.running:
        cum = [f"cum_{name}" for name in store.metric_columns]
        return [*keys, "day", *cum, "day_first_us", "day_last_us"]
    return [*keys, "bucket", *store.metric_columns, "first_us", "last_us"]


def expected(
    store: UsageStore, level: Level, where: str = "", *, base_before: int | None = None
) -> str:
    """A SELECT of what ``level``'s table must hold, from the raw events (those that
    ``where``, a ``WHERE`` clause over ``events``, keeps). For a running-total table,
    ``base_before`` (a day number) adds to every row each key's last stored totals
    before that day (the usage of the events retention deleted)."""
    keys = [
        f"{store.db.dialect.render(key.sql(events))} AS {key.column}" for key in level.rollup.keys
    ]
    sums = [
        f"sum({store.db.dialect.render(metric.per_event.sql(events))}) AS {metric.name}"
        for metric in store.metrics.stored
    ]
    group = ", ".join(str(position) for position in range(1, len(keys) + 2))
    if not level.grain.running:
        return (
            f"SELECT {''.join(f'{key}, ' for key in keys)}{_bucket(level.grain.us)} AS bucket, "
            f"{', '.join(sums)}, min(started_us) AS first_us, max(started_us) AS last_us "
            f"FROM events {where} GROUP BY {group}"
        )
    partition = ", ".join(level.rollup.key_columns)
    window = f"PARTITION BY {partition} ORDER BY day" if partition else "ORDER BY day"
    running = ", ".join(
        f"sum({name}) OVER ({window}){_base(level, name, base_before)} AS cum_{name}"
        for name in store.metric_columns
    )
    key_names = "".join(f"{column}, " for column in level.rollup.key_columns)
    return (
        f"SELECT {key_names}day, {running}, day_first_us, day_last_us FROM ("
        f"SELECT {''.join(f'{key}, ' for key in keys)}{_bucket(level.grain.us)} AS day, "
        f"{', '.join(sums)}, min(started_us) AS day_first_us, max(started_us) AS day_last_us "
        f"FROM events {where} GROUP BY {group}) AS daily"
    )


def _base(level: Level, name: str, before_day: int | None) -> str:
    """`` + `` the key's last stored running total of ``name`` before ``before_day``."""
    if before_day is None:
        return ""
    same_key = "".join(f"b.{c} = daily.{c} AND " for c in level.rollup.key_columns)
    return (
        f" + coalesce((SELECT b.cum_{name} FROM {level.table} b WHERE {same_key}"
        f"b.day < {int(before_day)} ORDER BY b.day DESC LIMIT 1), 0)"
    )


class Window:
    """The part of the rollups that the retained events determine (all of it when no
    horizon is recorded)."""

    def __init__(self, horizon_us: int | None) -> None:
        self.horizon_us = horizon_us

    def events(self) -> str:
        return "" if self.horizon_us is None else f"WHERE started_us >= {int(self.horizon_us)}"

    def first(self, level: Level) -> int | None:
        """The first bucket (or day) of ``level`` in the window."""
        return None if self.horizon_us is None else self.horizon_us // level.grain.us

    def rows(self, level: Level) -> str:
        """A WHERE clause over ``level``'s table keeping the rows in the window."""
        first = self.first(level)
        if first is None:
            return ""
        return f" WHERE {'day' if level.grain.running else 'bucket'} >= {int(first)}"

    def expected(self, store: UsageStore, level: Level) -> str:
        base = self.first(level) if level.grain.running else None
        return expected(store, level, self.events(), base_before=base)


def verify(store: UsageStore) -> dict[str, int]:
    """Rows that differ between each rollup table and its recomputation (0 = clean),
    within the retained window (see :func:`verified_from`)."""
    differences: dict[str, int] = {}
    with store.db.read() as conn:
        window = Window(retention.horizon(conn))
        for level in store.levels:
            columns = ", ".join(stored_columns(store, level))
            stored = f"SELECT {columns} FROM {level.table}{window.rows(level)}"
            wanted = f"SELECT {columns} FROM ({window.expected(store, level)}) AS x"
            count = conn.execute(
                text(
                    f"SELECT (SELECT count(*) FROM ({wanted} EXCEPT {stored}) AS a) + "
                    f"(SELECT count(*) FROM ({stored} EXCEPT {wanted}) AS b)"
                )
            ).scalar_one()
            differences[level.table] = int(count)
        differences["users (activity span)"] = int(
            conn.execute(text(_USERS_SPAN_WRONG)).scalar_one()
        )
    return differences


def verified_from(store: UsageStore) -> int | None:
    """The instant from which ``verify`` and ``rebuild`` cover the rollups (None: from
    the first event; else the retention horizon)."""
    return retention.retained_from(store.db)


def rebuild(store: UsageStore) -> dict[str, int]:
    """Replace every rollup (within the retained window) with its recomputation;
    returns the new row counts."""

    def work(conn: Connection) -> dict[str, int]:
        window = Window(retention.horizon(conn))
        counts: dict[str, int] = {}
        for level in store.levels:
            columns = ", ".join(stored_columns(store, level))
            conn.execute(text(f"DELETE FROM {level.table}{window.rows(level)}"))
            conn.execute(
                text(
                    f"INSERT INTO {level.table} ({columns}) "
                    f"SELECT {columns} FROM ({window.expected(store, level)}) AS x"
                )
            )
            counts[level.table] = int(
                conn.execute(text(f"SELECT count(*) FROM {level.table}")).scalar_one()
            )
        if window.horizon_us is None:
            _update_user_spans(conn)
        else:  # a span reaching before the horizon keeps its start
            _update_user_spans(conn, window.events(), keep_first_before=window.horizon_us)
        return counts

    return store.db.run_write(work)


def _insert_expected(
    conn: Connection,
    store: UsageStore,
    level: Level,
    where: str = "",
    params: dict[str, int] | None = None,
) -> None:
    columns = ", ".join(stored_columns(store, level))
    conn.execute(
        text(
            f"INSERT INTO {level.table} ({columns}) "
            f"SELECT {columns} FROM ({expected(store, level, where)}) AS x"
        ),
        params or {},
    )


def _update_user_spans(
    conn: Connection, where: str = "", *, keep_first_before: int | None = None
) -> None:
    first = "s.lo"
    if keep_first_before is not None:
        first = (
            f"CASE WHEN users.first_us < {int(keep_first_before)} THEN users.first_us ELSE s.lo END"
        )
    conn.execute(
        text(
            f"UPDATE users SET first_us = {first}, last_us = s.hi FROM ("
            "SELECT user_pk, min(started_us) AS lo, max(started_us) AS hi "
            f"FROM events {where} GROUP BY user_pk) AS s WHERE s.user_pk = users.id"
        )
    )


def rebuild_part(
    store: UsageStore, conn: Connection, *, users_sql: str, start_us: int, end_us: int
) -> None:
    """Rewrite, in ``conn``'s transaction, the rollup rows that events of the users
    ``users_sql`` selects (a ``SELECT`` of user pks) between ``start_us`` and ``end_us``
    fed, after some of those events were deleted: every row of those users in a rollup
    keyed by user, the buckets of that time in the others (a running-total table
    without a user key is recomputed whole), and the users' activity spans.

    After retention, the users' rows before the horizon go too (their events are gone
    with them), and the buckets of a rollup without keys before the horizon are summed
    again from the per-user rollup of the same grain over the users' activity spans."""
    users_where = f"WHERE user_pk IN ({users_sql})"
    horizon = retention.horizon(conn)
    span = conn.execute(
        text(f"SELECT min(first_us), max(last_us) FROM users WHERE id IN ({users_sql})")
    ).one()

    # Per-user levels first (the others may be summed from them), running totals last
    # (a rollup's may be summed from its own buckets).
    def order(level: Level) -> tuple[bool, bool]:
        return "user_pk" not in level.rollup.key_columns, level.grain.running

    for level in sorted(store.levels, key=order):
        if "user_pk" in level.rollup.key_columns:
            conn.execute(text(f"DELETE FROM {level.table} {users_where}"))
            _insert_expected(conn, store, level, users_where)
        elif level.grain.running:
            conn.execute(text(f"DELETE FROM {level.table}"))
            if _finest_buckets(level) is not None:
                _running_from_buckets(conn, store, level)
            elif horizon is not None:
                raise ValueError(f"{level.table}: cannot be recomputed after retention")
            else:
                _insert_expected(conn, store, level)
        else:
            if horizon is not None and span[0] is not None and span[0] < horizon:
                _sum_from_users(conn, store, level, span[0], horizon)
            step = level.grain.us
            first, last = start_us // step, end_us // step
            conn.execute(
                text(f"DELETE FROM {level.table} WHERE bucket >= :first AND bucket <= :last"),
                {"first": first, "last": last},
            )
            _insert_expected(
                conn,
                store,
                level,
                "WHERE started_us >= :lo AND started_us < :hi",
                {"lo": first * step, "hi": (last + 1) * step},
            )
    _update_user_spans(conn, users_where)


def _sum_from_users(
    conn: Connection, store: UsageStore, level: Level, start_us: int, horizon_us: int
) -> None:
    """Rewrite the buckets of ``level`` (a rollup without a user key) from ``start_us``
    to the horizon as sums of the rollup of the same keys plus the user, same grain."""
    keys = level.rollup.key_columns
    users = next(
        (
            other
            for other in store.levels
            if other.grain == level.grain and other.rollup.key_columns == ("user_pk", *keys)
        ),
        None,
    )
    if users is None:
        raise ValueError(f"{level.table}: no per-user rollup of its keys and grain")
    step = level.grain.us
    bounds = {"lo": start_us // step, "hi": horizon_us // step}
    conn.execute(text(f"DELETE FROM {level.table} WHERE bucket >= :lo AND bucket < :hi"), bounds)
    names = store.metric_columns
    grouped = ", ".join(("bucket", *keys))
    conn.execute(
        text(
            f"INSERT INTO {level.table} ({grouped}, {', '.join(names)}, first_us, last_us) "
            f"SELECT {grouped}, {', '.join(f'sum({name})' for name in names)}, "
            f"min(first_us), max(last_us) FROM {users.table} "
            f"WHERE bucket >= :lo AND bucket < :hi GROUP BY {grouped}"
        ),
        bounds,
    )


def _finest_buckets(level: Level) -> Level | None:
    """The finest bucket level of ``level``'s rollup (None when it has none)."""
    grains = [grain for grain in level.rollup.grains if not grain.running]
    return Level(level.rollup, min(grains, key=lambda g: g.us)) if grains else None


def _running_from_buckets(conn: Connection, store: UsageStore, level: Level) -> None:
    """Fill ``level`` (running day totals, emptied) from its rollup's own buckets, which
    retention keeps: each key's daily sums, added up day after day."""
    buckets = _finest_buckets(level)
    assert buckets is not None
    keys = level.rollup.key_columns
    names = store.metric_columns
    day = _bucket(level.grain.us // buckets.grain.us, "bucket")
    window = f"PARTITION BY {', '.join(keys)} ORDER BY day" if keys else "ORDER BY day"
    running = ", ".join(f"CAST(sum({name}) OVER ({window}) AS BIGINT)" for name in names)
    daily = ", ".join(f"CAST(sum({name}) AS BIGINT) AS {name}" for name in names)
    prefix = "".join(f"{key}, " for key in keys)
    conn.execute(
        text(
            f"INSERT INTO {level.table} ({', '.join(stored_columns(store, level))}) "
            f"SELECT {prefix}day, {running}, day_first_us, day_last_us FROM ("
            f"SELECT {prefix}{day} AS day, {daily}, min(first_us) AS day_first_us, "
            f"max(last_us) AS day_last_us FROM {buckets.table} GROUP BY {prefix}{day}) AS g"
        )
    )
