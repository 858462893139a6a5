"""Item 3: the rollup report against a plain GROUP BY and against DuckDB.

The same per-user sums over the same local-day range (its bounds converted to UTC
instants exactly as the report does) three ways:

* rollups: :func:`tokenledger.reports.user_usage`, the product's report (one page and
  the totals; it computes every user's row to sort them);
* plain GROUP BY: over the raw ``events`` table (index ``ix_events_started`` on the
  start time) joined with ``users``, in the same database;
* DuckDB: the same query over a DuckDB copy of the same events.

Every user's value of every metric (:data:`tokenledger.metrics.METRICS`: requests,
error requests, input, output, cache, reasoning and total tokens, usage time, and any
metric declared later) must be identical in all three.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb

from bench.cases import ReportCase
from bench.context import Context
from bench.datasets import duckdb_copy
from bench.progress import say
from bench.stats import interleaved, ratio, summarize
from tokenledger.localdays import LocalRange
from tokenledger.metrics import METRICS, Derived
from tokenledger.reports import UserFilter, all_rows
from tokenledger.store.database import Database
from tokenledger.store.schema import events
from tokenledger.store.usage_store import UsageStore

COMPARED = (ReportCase("365 days", 365), ReportCase("31 days", 31))
NAMES = METRICS.public_names  # every metric, derived ones too, in declaration order
Sums = dict[str, tuple[int, ...]]


def plain_group_by(store: UsageStore, param: str) -> str:
    """Per-user sums of every metric over raw events in ``[lo, hi)``, biggest users
    first, from each metric's per-event SQL (a derived one sums its parts')."""
    alias = events.alias("e")
    per_event = {m.public: store.db.dialect.render(m.per_event.sql(alias)) for m in METRICS.stored}
    sums = []
    for item in METRICS.declared:
        parts = item.parts if isinstance(item, Derived) else (item.public,)
        sums.append(f"CAST(sum({' + '.join(per_event[part] for part in parts)}) AS BIGINT)")
    biggest = 2 + NAMES.index("total_tokens")
    return (
        f"SELECT u.external_id, {', '.join(sums)} FROM events e JOIN users u ON u.id = e.user_pk "
        f"WHERE e.started_us >= {param} AND e.started_us < {param} "
        f"GROUP BY u.id, u.external_id ORDER BY {biggest} DESC, u.external_id"
    )


def run(ctx: Context) -> dict[str, Any]:
    options = ctx.options
    begin = time.perf_counter()
    path = duckdb_copy(ctx.main, options.data_dir, ctx.backend.name)
    copy_ms = (time.perf_counter() - begin) * 1000
    duck = duckdb.connect(str(path), read_only=True)
    db = ctx.main.open()
    results = []
    try:
        for case in COMPARED:
            local_range = case.local_range(ctx.end, options.zone)
            bounds = (local_range.start_us, local_range.end_us)
            rollup_sums = _rollup_sums(db, local_range)
            plain_sums = _rows(_plain(db, bounds)())
            duck_sums = _rows(_duck(duck, plain_group_by(UsageStore(db), "?"), bounds)())
            say(f"Compare {case.name}: rollups vs GROUP BY vs DuckDB, {options.repetitions}x")
            samples = interleaved(
                {
                    "rollups": case.run(db, ctx.end, options.zone),
                    "group_by": _plain(db, bounds),
                    "duckdb": _duck(duck, plain_group_by(UsageStore(db), "?"), bounds),
                },
                repetitions=options.repetitions,
                warmup=1,
            )
            results.append(_result(case, local_range, samples, rollup_sums, plain_sums, duck_sums))
    finally:
        db.dispose()
        duck.close()
    return {
        "status": "ok",
        "dataset": ctx.main.spec.key,
        "zone": options.zone.key,
        "duckdb_version": duckdb.__version__,
        "duckdb_copy_ms": round(copy_ms),
        "agree": all(result["agree"] for result in results),
        "reports": results,
    }


def _plain(db: Database, bounds: tuple[int, int]) -> Callable[[], list[tuple[Any, ...]]]:
    query = plain_group_by(UsageStore(db), db.dialect.param)

    def execute() -> list[tuple[Any, ...]]:
        with db.read() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(query, bounds)]

    return execute


def _duck(
    conn: duckdb.DuckDBPyConnection, query: str, bounds: tuple[int, int]
) -> Callable[[], list[tuple[Any, ...]]]:
    def execute() -> list[tuple[Any, ...]]:
        return conn.execute(query, list(bounds)).fetchall()

    return execute


def _rows(rows: list[tuple[Any, ...]]) -> Sums:
    return {str(row[0]): tuple(int(value) for value in row[1:]) for row in rows}


def _rollup_sums(db: Database, local_range: LocalRange) -> Sums:
    with UsageStore(db).read() as reader:
        rows = all_rows(reader, local_range, UserFilter(), sort="-total_tokens")
    return {row.user_id: tuple(row.usage[name] for name in NAMES) for row in rows}


def _differences(expected: Sums, found: Sums) -> int:
    return sum(
        1 for user in expected.keys() | found.keys() if expected.get(user) != found.get(user)
    )


def _result(
    case: ReportCase,
    local_range: LocalRange,
    samples: dict[str, list[float]],
    rollups: Sums,
    plain: Sums,
    duck: Sums,
) -> dict[str, Any]:
    stats = {name: summarize(values) for name, values in samples.items()}
    totals = [sum(column) for column in zip(*rollups.values(), strict=True)] or [0] * len(NAMES)
    differences = {"group_by": _differences(rollups, plain), "duckdb": _differences(rollups, duck)}
    return {
        "name": case.name,
        "start": local_range.start.isoformat(),
        "end": local_range.end.isoformat(),
        "start_us": local_range.start_us,
        "end_us": local_range.end_us,
        "users": len(rollups),
        "totals": dict(zip(NAMES, totals, strict=True)),
        "rollups_ms": stats["rollups"],
        "group_by_ms": stats["group_by"],
        "duckdb_ms": stats["duckdb"],
        "group_by_over_rollups": ratio(stats["group_by"]["median"], stats["rollups"]["median"]),
        "group_by_over_rollups_p95": ratio(stats["group_by"]["p95"], stats["rollups"]["p95"]),
        "duckdb_over_rollups": ratio(stats["duckdb"]["median"], stats["rollups"]["median"]),
        "users_differing": differences,
        "agree": not any(differences.values()) and bool(rollups),
    }
