"""Item 6: the same reports at two sizes (by default 1M and 10M events), and the ratio.

Both datasets have the same users, shapes and seed; only the event count differs.
The in-process report time is measured on both, interleaved, so the ratio compares
like with like even on a busy machine. Rollups make a report cost depend on the
number of users and buckets touched, not on the number of events, so the ratio
should stay near 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.cases import report_cases
from bench.context import Context
from bench.progress import say
from bench.stats import interleaved, ratio, summarize


def run(ctx: Context) -> dict[str, Any]:
    options = ctx.options
    small, large = ctx.datasets["scale"], ctx.main
    cases = report_cases()
    small_db, large_db = small.open(), large.open()
    try:
        actions: dict[str, Callable[[], object]] = {}
        for index, case in enumerate(cases):
            actions[f"{index}/small"] = case.run(small_db, small.end, options.zone)
            actions[f"{index}/large"] = case.run(large_db, large.end, options.zone)
        say(f"Scaling: {len(cases)} reports at {small.spec.events:,} and {large.spec.events:,}")
        samples = interleaved(actions, repetitions=options.repetitions)
    finally:
        small_db.dispose()
        large_db.dispose()
    rows: list[dict[str, Any]] = []
    for index, case in enumerate(cases):
        low, high = summarize(samples[f"{index}/small"]), summarize(samples[f"{index}/large"])
        rows.append(
            {
                "name": case.name,
                "small_ms": low,
                "large_ms": high,
                "ratio_median": ratio(high["median"], low["median"]),
                "ratio_p95": ratio(high["p95"], low["p95"]),
            }
        )
    return {
        "status": "ok",
        "small": {"dataset": small.spec.key, "events": small.spec.events},
        "large": {"dataset": large.spec.key, "events": large.spec.events},
        "reports": rows,
        "worst_ratio_median": max(row["ratio_median"] for row in rows),
        "worst_ratio_p95": max(row["ratio_p95"] for row in rows),
    }
