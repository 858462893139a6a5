"""Item 5: search as you type, with 10,000 and with 100,000 users.

Someone types a name into the User Usage search box: the report for the last 31 days
is asked again after each of the first three letters. Five names are typed; each
length's figure pools its five queries over every repetition. A 1-letter query
matches most users, so it is the expensive one.

The 100,000-user dataset is its own: the scaling dataset's event count spread over
ten times the people (same shapes, so still heavy-tailed: most users have only a few
requests, as in a large company where most people try AI now and then). Its cost
is driven by how many users match and have activity near the range, not by the
event count, because the day rollup costs two index seeks per user at any size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.cases import ReportCase, http_report
from bench.context import Context, serve
from bench.datasets import Dataset
from bench.progress import say
from bench.stats import interleaved, summarize

TYPED = ("nguyen", "sharma", "lefevre", "kowalczyk", "anastasia")
LENGTHS = (1, 2, 3)


def run(ctx: Context) -> dict[str, Any]:
    results = []
    for dataset in (ctx.main, ctx.datasets["search"]):
        results.append(_measure(ctx, dataset))
    return {"status": "ok", "range_days": 31, "typed": list(TYPED), "datasets": results}


def _measure(ctx: Context, dataset: Dataset) -> dict[str, Any]:
    options = ctx.options
    db = dataset.open()
    actions: dict[str, Callable[[], object]] = {}
    matched: dict[int, list[int]] = {length: [] for length in LENGTHS}
    try:
        with serve(ctx, dataset.url) as served:
            for length in LENGTHS:
                for word in TYPED:
                    case = ReportCase("31 days", 31, q=word[:length])
                    report = case.run(db, dataset.end, options.zone)
                    matched[length].append(report().total_users)
                    actions[f"{length}/{word}/server"] = report
                    actions[f"{length}/{word}/http"] = http_report(
                        served.client, case.query(dataset.end, options.zone)
                    )
            say(f"Search: {dataset.spec.users:,} users, {len(actions)} queries x repetitions")
            samples = interleaved(actions, repetitions=options.repetitions)
    finally:
        db.dispose()
    lengths = []
    for length in LENGTHS:
        server = [ms for word in TYPED for ms in samples[f"{length}/{word}/server"]]
        http = [ms for word in TYPED for ms in samples[f"{length}/{word}/http"]]
        lengths.append(
            {
                "letters": length,
                "queries": [word[:length] for word in TYPED],
                "active_matching_users_mean": round(sum(matched[length]) / len(TYPED)),
                "server_ms": summarize(server),
                "http_ms": summarize(http),
            }
        )
    return {"dataset": dataset.spec.key, "users": dataset.spec.users, "lengths": lengths}
