"""One person in depth: ``/reporting/people/{user_id}`` and its JSON API
(``/api/v1/reports/people/{user_id}`` and ``.../events``). The figures come from
:mod:`tokenledger.person`; this module turns requests into them and them into JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from tokenledger import person as people
from tokenledger.budgets.model import limit_json
from tokenledger.clock import now_us
from tokenledger.localdays import IsoFormatter, LocalRange, iso
from tokenledger.metrics import dollars_text
from tokenledger.report_params import REPORT, InvalidParameter, text
from tokenledger.reports import change, events_removed_before
from tokenledger.web import formatting, params, user_usage
from tokenledger.web.api import range_json, usage_json
from tokenledger.web.context import AppContext
from tokenledger.web.deps import Ctx, PageViewer, ReportReader, ReportsAvailable
from tokenledger.web.error_pages import error_page
from tokenledger.web.errors import ApiError, error_responses
from tokenledger.web.params import RangeArgs
from tokenledger.web.templating import render

router = APIRouter()

UserIdPath = Annotated[str, Path(min_length=1, max_length=255, description="The `user.id`.")]
ModelParam = Annotated[
    str | None,
    Query(max_length=255, description='Only this model; "" for events without one.'),
]
StatusParam = Annotated[Literal["ok", "error"] | None, Query(description="Only this status.")]
CursorParam = Annotated[
    str | None, Query(max_length=40, description="`next_cursor` of the previous page.")
]
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Metrics whose change against the previous range the cards show.
CHANGES = ("requests", "total_tokens", "duration_ms")


def _not_found(user_id: str) -> ApiError:
    return ApiError(404, "not_found", f"user_id: no person {user_id[:80]!r}", field="user_id")


def report_json(report: people.PersonReport, *, retained_from: int | None = None) -> dict[str, Any]:
    """The person report as the API writes it; ``retained_from``: the retention horizon
    when the range starts before it (models, heat map and events cover only after it)."""
    tz = report.range.tz
    person = report.person
    previous = report.previous_usage
    metrics = report.usage.metrics()
    before = previous.metrics()
    return {
        "person": {
            "user_id": person.user_id,
            "name": person.name,
            "email": person.email,
            "team": person.team,
            "department": person.department,
            "first_request_at": iso(person.first_us, tz),
            "last_request_at": iso(person.last_us, tz),
        },
        "range": range_json(report.range, retained_from=retained_from),
        "tz": tz.key,
        "usage": usage_json(report.usage, tz),
        "previous": {"range": range_json(report.previous.range), **usage_json(previous, tz)},
        "change": {name: change(metrics[name], before[name]) for name in metrics},
        "series": {
            "interval": report.interval,
            "points": [
                {
                    "start": item.point.start.isoformat(),
                    **item.point.usage.json_values(),
                    "team_median_total_tokens": item.team_median,
                }
                for item in report.series
            ],
        },
        "models": [_model_json(line) for line in report.models],
        "heat_map": {"weekdays": list(WEEKDAYS), "requests": report.heat},
    }


@dataclass(frozen=True)
class BudgetLine:
    """One budget that applies to the person now, as the person view writes it."""

    name: str
    metric: str
    used: str
    limit: str
    remaining: str
    percent: int
    action: str
    resets_us: int
    tz: ZoneInfo


def budget_lines(ctx: AppContext, user_id: str) -> list[BudgetLine]:
    """Every budget that covers the person this period (after the precedence rule)."""
    if not ctx.budgets.all():
        return []
    metrics = ctx.budgets.metrics

    def shown(metric: str, value: int) -> str:
        amount = limit_json(metrics, metric, value)
        return f"${amount}" if isinstance(amount, str) else formatting.number(amount)

    return [
        BudgetLine(
            use.budget.name,
            use.budget.metric,
            shown(use.budget.metric, use.used),
            shown(use.budget.metric, use.budget.limit),
            shown(use.budget.metric, use.remaining),
            use.percent,
            use.budget.action,
            use.period.end_us,
            use.budget.tz,
        )
        for use in ctx.budgets.uses_of(user_id, now_us=now_us(ctx.clock))
    ]


def _model_json(line: people.ModelUsage) -> dict[str, Any]:
    return {
        "model": line.model,
        "provider": line.provider,
        "requests": line.requests,
        "error_requests": line.errors,
        "input_tokens": line.input_tokens,
        "output_tokens": line.output_tokens,
        "total_tokens": line.total_tokens,
        "cache_read_tokens": line.cache_read_tokens,
        "cache_write_tokens": line.cache_write_tokens,
        "reasoning_tokens": line.reasoning_tokens,
        "cost_usd": dollars_text(line.cost_nanos),
        "unpriced_requests": line.unpriced_requests,
        "duration_ms": line.duration_ms,
        "median_duration_ms": line.median_ms,
        "p95_duration_ms": line.p95_ms,
    }


def events_json(page: people.EventsPage, tz: Any) -> dict[str, Any]:
    timestamp = IsoFormatter(tz)
    return {
        "events": [
            {
                "event_id": row["event_id"],
                "started_at": timestamp(row["started_us"]),
                "model": row["model"],
                "provider": row["provider"],
                "status": row["status"],
                "duration_ms": row["duration_ms"],
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "total_tokens": row["input_tokens"] + row["output_tokens"],
                "cache_read_tokens": row["cache_read_tokens"],
                "cache_write_tokens": row["cache_write_tokens"],
                "reasoning_tokens": row["reasoning_tokens"],
                "metadata": None if row["metadata"] is None else json.loads(row["metadata"]),
            }
            for row in page.rows
        ],
        "next_cursor": page.next_cursor,
    }


def _range(ctx: Ctx, asked: params.RangeQuery) -> LocalRange:
    return params.parse(ctx, asked, span=REPORT).local_range


@router.get(
    "/api/v1/reports/people/{user_id}",
    summary="One person's usage in depth",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses=error_responses(400, 401, 403, 404, 503),
)
def get_person(
    ctx: Ctx,
    _reader: ReportReader,
    user_id: UserIdPath,
    asked: RangeArgs,
) -> dict[str, Any]:
    """The person, their usage in the range and in the previous range of as many days
    (with the relative change, null without previous usage), tokens per local day (per
    hour for one day) with their team's median per person, per model (requests,
    tokens, errors, median and p95 duration) and requests by weekday and hour."""
    local_range = _range(ctx, asked)
    text(user_id, "user_id", max_length=255)
    try:
        report = people.person_report(ctx.store, user_id=user_id, local_range=local_range)
    except people.NoSuchPerson:
        raise _not_found(user_id) from None
    return report_json(report, retained_from=events_removed_before(ctx.store, local_range))


@router.get(
    "/api/v1/reports/people/{user_id}/events",
    summary="One person's events, newest first",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses=error_responses(400, 401, 403, 404, 503),
)
def get_person_events(
    ctx: Ctx,
    _reader: ReportReader,
    user_id: UserIdPath,
    asked: RangeArgs,
    model: ModelParam = None,
    status: StatusParam = None,
    cursor: CursorParam = None,
    limit: Annotated[int, Query(ge=1, le=people.MAX_EVENTS_PAGE)] = people.EVENTS_PAGE_SIZE,
) -> dict[str, Any]:
    """A page of the person's events in the range, newest first; pass `next_cursor`
    as `cursor` for the next page (keyset paging: as fast on the 100th page as on the
    first)."""
    local_range = _range(ctx, asked)
    text(user_id, "user_id", max_length=255)
    text(model, "model", max_length=255)
    try:
        page = people.events_page(
            ctx.store,
            user_id=user_id,
            local_range=local_range,
            cursor=cursor,
            model=model,
            status=status,
            page_size=limit,
        )
    except people.NoSuchPerson:
        raise _not_found(user_id) from None
    except ValueError as exc:
        raise InvalidParameter("cursor", str(exc)) from exc
    return events_json(page, local_range.tz)


@router.get(
    user_usage.PERSON_PATH + "/{user_id}", dependencies=[ReportsAvailable], include_in_schema=False
)
async def person_page(
    request: Request, ctx: Ctx, _viewer: PageViewer, user_id: UserIdPath
) -> HTMLResponse:
    """Reporting > User Usage > one person: keeps the usage page's view (range, zone,
    search, filters) for its Back link."""
    try:
        view = user_usage.parse_view(ctx, request)
        text(user_id, "user_id", max_length=255)
        query = request.query_params
        model = text(query.get("model"), "model", max_length=255)
        status = query.get("status") or None
        if status is not None and status not in people.STATUSES:
            raise InvalidParameter("status", "must be ok or error")
        cursor = query.get("cursor") or None
    except InvalidParameter as exc:
        return error_page(request, status=400, title="Cannot show this", message=str(exc))
    view, _ = user_usage.clamp_to_today(view)

    def load() -> tuple[people.PersonReport, people.EventsPage, list[BudgetLine], int | None]:
        report = people.person_report(ctx.store, user_id=user_id, local_range=view.local_range)
        budgets = budget_lines(ctx, user_id)
        removed = events_removed_before(ctx.store, view.local_range)
        events = people.events_page(
            ctx.store,
            user_id=user_id,
            local_range=view.local_range,
            cursor=cursor,
            model=model,
            status=status,
        )
        return report, events, budgets, removed

    try:
        report, events, budgets, removed = await run_in_threadpool(load)
    except people.NoSuchPerson:
        return error_page(
            request, status=404, title="No such person", message="Nobody has this user id."
        )
    except ValueError as exc:
        return error_page(request, status=400, title="Cannot show this", message=f"cursor: {exc}")
    base = f"{user_usage.PERSON_PATH}/{quote(user_id, safe='')}"
    return render(
        request,
        "person.html",
        {
            "nav_section": "reporting",
            "nav_page": "user-usage",
            "view": view,
            "report": report,
            "events": events,
            "budgets": budgets,
            # Retention deleted the raw events before this instant, inside the range.
            "events_removed_before": removed,
            "model": model,
            "status": status,
            "base": base,
            "weekdays": WEEKDAYS,
            "heat_max": max((max(row) for row in report.heat), default=0),
            "fmt": formatting,
            "series_json": json.dumps(
                {
                    "interval": report.interval,
                    "tz": view.tz.key,
                    "labels": [item.point.start.isoformat() for item in report.series],
                    "tokens": [item.point.usage["total_tokens"] for item in report.series],
                    "median": [item.team_median for item in report.series],
                    "team": report.person.team,
                }
            ),
            "range_phrase": formatting.range_phrase(view.start, view.end),
            "previous_phrase": formatting.range_phrase(
                report.previous.range.start, report.previous.range.end
            ),
            "export_url": "/api/v1/reports/user-usage/export?"
            + urlencode(
                {
                    "start": view.start.isoformat(),
                    "end": view.end.isoformat(),
                    "tz": view.tz.key,
                    "user_id": user_id,
                    "granularity": "events",
                }
            ),
            "changes": CHANGES,
        },
        headers={"Cache-Control": "no-store"},
    )
