"""Item 2: User Usage report latency, in the server process and end to end over HTTP;
and the same for the model report (usage and cost per model, issue 13).

"Server" is :func:`tokenledger.reports.user_usage` (or
:func:`tokenledger.model_usage.model_usage`) called in this process on its own
connection pool: the query work a request does, without HTTP, key check and JSON.
"HTTP" is the whole ``GET /api/v1/reports/user-usage`` (``model-usage``) against
``tokenledger serve``, as a client sees it (keep-alive connection, body read).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.cases import RANGES, ReportCase, http_get, http_report, model_report, report_cases
from bench.context import Context, serve
from bench.progress import say
from bench.stats import interleaved, summarize
from tokenledger.store.database import Database


def run(ctx: Context) -> dict[str, Any]:
    options = ctx.options
    cases = report_cases()
    db = ctx.main.open()
    try:
        with serve(ctx, ctx.main.url) as served:
            actions: dict[str, Callable[[], object]] = {}
            for index, case in enumerate(cases):
                actions[f"{index}/server"] = case.run(db, ctx.end, options.zone)
                actions[f"{index}/http"] = http_report(
                    served.client, case.query(ctx.end, options.zone)
                )
            model_cases = [ReportCase(label, days) for label, days in RANGES]
            for index, case in enumerate(model_cases):
                query = case.query(ctx.end, options.zone)
                actions[f"m{index}/server"] = model_report(
                    db, case.local_range(ctx.end, options.zone)
                )
                actions[f"m{index}/http"] = http_get(
                    served.client,
                    "/api/v1/reports/model-usage",
                    {key: query[key] for key in ("start", "end", "tz")},
                )
            _check_same(db, served.client, cases, ctx)
            say(f"Reports: {len(cases)} reports x {options.repetitions} repetitions")
            samples = interleaved(actions, repetitions=options.repetitions)
    finally:
        db.dispose()
    rows = []
    for index, case in enumerate(cases):
        local_range = case.local_range(ctx.end, options.zone)
        rows.append(
            {
                "name": case.name,
                "days": case.days,
                "start": local_range.start.isoformat(),
                "end": local_range.end.isoformat(),
                "q": case.q,
                "sort": case.sort,
                "offset": case.offset,
                "server_ms": summarize(samples[f"{index}/server"]),
                "http_ms": summarize(samples[f"{index}/http"]),
            }
        )
    model_rows = []
    for index, case in enumerate(model_cases):
        local_range = case.local_range(ctx.end, options.zone)
        model_rows.append(
            {
                "name": case.name,
                "days": case.days,
                "start": local_range.start.isoformat(),
                "end": local_range.end.isoformat(),
                "server_ms": summarize(samples[f"m{index}/server"]),
                "http_ms": summarize(samples[f"m{index}/http"]),
            }
        )
    return {
        "status": "ok",
        "dataset": ctx.main.spec.key,
        "zone": options.zone.key,
        "reports": rows,
        "model_reports": model_rows,
    }


def _check_same(db: Database, client: Any, cases: list[ReportCase], ctx: Context) -> None:
    """The server and the in-process report see the same data (same users, totals)."""
    for case in cases:
        report = case.run(db, ctx.end, ctx.options.zone)()
        body = client.get(
            "/api/v1/reports/user-usage", params=case.query(ctx.end, ctx.options.zone)
        ).json()
        same = body["total_users"] == report.total_users and body["totals"]["total_tokens"] == (
            report.totals.total_tokens
        )
        if not same:
            raise RuntimeError(f"server and in-process reports differ for {case.name}")
