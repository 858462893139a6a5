"""The JSON API under ``/api/v1``: ingest events, read reports."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tokenledger import ingest as ingest_service
from tokenledger.clock import now_us
from tokenledger.events import event_json_schema
from tokenledger.localdays import LocalRange, iso
from tokenledger.report_params import DAILY_SERIES, HOURLY_SERIES, REPORT
from tokenledger.reports import (
    GroupUsage,
    Usage,
    UserUsage,
    events_removed_before,
    usage_by_attribute,
    usage_series,
    user_usage,
)
from tokenledger.web import params
from tokenledger.web.context import AppContext
from tokenledger.web.deps import Ctx, IngestKey, ReportReader, ReportsAvailable
from tokenledger.web.errors import JSON, ApiError, error_body, error_responses
from tokenledger.web.params import (
    LimitParam,
    OffsetParam,
    PeopleArgs,
    SortParam,
    UserIdParam,
)
from tokenledger.web.schemas import (
    IngestResult,
    TeamUsageReport,
    UsageSeries,
    UserUsageReport,
)

router = APIRouter()

_ENVELOPE_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {"$ref": "#/components/schemas/EventIn"},
        }
    },
}


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


# The rest of a refused body is not read: the connection cannot carry another request.
_CLOSE = {"Connection": "close"}


@router.post(
    "/api/v1/events",
    summary="Send usage events",
    status_code=200,
    response_model=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ENVELOPE_SCHEMA}},
        }
    },
    responses={
        200: {"model": IngestResult, "description": "Every event is stored (or already was)."},
        207: {"model": IngestResult, "description": "Some events were rejected; see `results`."},
        422: {"model": IngestResult, "description": "Every event was rejected: nothing stored."},
        **error_responses(400, 401, 403, 408, 413, 415, 503),
    },
)
async def post_events(request: Request, ctx: Ctx, key: IngestKey) -> Response:
    """Store a batch of up to 1000 events. The answer comes after the commit and
    gives, for every input index, `accepted`, `duplicate` or `rejected` (with a code
    and a message naming the field)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "content-type must be application/json")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise ApiError(
            415,
            "unsupported_encoding",
            f"content-encoding {encoding[:40]!r} is not supported; send the body uncompressed",
            headers=_CLOSE,
        )
    settings = ctx.settings
    body = await request.body()  # its size and deadline are kept by web.body_limits
    try:
        raw_events = ingest_service.parse_envelope(body, max_events=settings.max_batch_events)
    except ingest_service.EnvelopeError as exc:
        return JSON(error_body(exc.code, exc.message), status_code=exc.status)
    payload = await run_in_threadpool(
        ingest_service.ingest_answered,
        ctx.writes,
        raw_events,
        now_us=now_us(ctx.clock),
        future_tolerance_s=settings.future_tolerance_s,
    )
    return JSON(payload, status_code=ingest_status(payload))


def ingest_status(payload: dict[str, Any]) -> int:
    """200 when nothing was rejected, 207 when some events were, 422 when all were
    (a 2xx would tell a careless client that something was stored)."""
    if not payload["rejected"]:
        return 200
    return 207 if payload["accepted"] or payload["duplicates"] else 422


def usage_json(usage: Usage, tz: Any) -> dict[str, Any]:
    values: dict[str, Any] = usage.json_values()
    values["first_request_at"] = iso(usage.first_us, tz)
    values["last_request_at"] = iso(usage.last_us, tz)
    return values


def row_json(row: UserUsage, tz: Any) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "name": row.name,
        "email": row.email,
        **usage_json(row.usage, tz),
    }


def range_json(local_range: LocalRange, *, retained_from: int | None = None) -> dict[str, Any]:
    """The range of a report, and where its retained events begin if it starts earlier
    (``reports.events_removed_before``)."""
    return {
        "start": local_range.start.isoformat(),
        "end": local_range.end.isoformat(),
        "start_at": iso(local_range.start_us, local_range.tz),
        "end_at": iso(local_range.end_us, local_range.tz),
        "timezone": local_range.tz.key,
        "events_retained_from": iso(retained_from, local_range.tz),
    }


def range_fields(ctx: AppContext, local_range: LocalRange) -> dict[str, Any]:
    """``range`` and ``tz``, as every report answers them."""
    retained_from = events_removed_before(ctx.store, local_range)
    return {"range": range_json(local_range, retained_from=retained_from), "tz": local_range.tz.key}


@router.get(
    "/api/v1/reports/user-usage",
    summary="Usage per user",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses={200: {"model": UserUsageReport}, **error_responses(400, 401, 403, 503)},
)
def get_user_usage(
    ctx: Ctx,
    _reader: ReportReader,
    asked: PeopleArgs,
    sort: SortParam = "-total_tokens",
    limit: LimitParam = 50,
    offset: OffsetParam = 0,
    include_inactive: bool = False,
) -> dict[str, Any]:
    """Requests, tokens and usage time per user between two local dates."""
    report_params = params.parse(ctx, asked, span=REPORT, sort=sort)
    local_range = report_params.local_range
    report = user_usage(
        ctx.store,
        local_range=local_range,
        users=report_params.users,
        sort=report_params.sort,
        limit=limit,
        offset=offset,
        include_inactive=include_inactive,
    )
    return {
        **range_fields(ctx, local_range),
        "q": asked.q or "",
        "sort": sort,
        "limit": limit,
        "offset": offset,
        "total_users": report.total_users,
        "totals": report.totals.json_values(),
        "users": [row_json(row, local_range.tz) for row in report.rows],
    }


# A series answers one point per hour or day: bounded, like its answer's size (and,
# on SQLite, the number of bound parameters of its queries).
SERIES_SPANS = {"hour": HOURLY_SERIES, "day": DAILY_SERIES}


@router.get(
    "/api/v1/reports/usage-series",
    summary="Usage per local hour or day",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses={200: {"model": UsageSeries}, **error_responses(400, 401, 403, 503)},
)
def get_usage_series(
    ctx: Ctx,
    _reader: ReportReader,
    asked: PeopleArgs,
    interval: Literal["hour", "day"] = "day",
    user_id: UserIdParam = None,
) -> dict[str, Any]:
    """Requests, tokens and duration per local hour or day, zero-filled."""
    report_params = params.parse(ctx, asked, span=SERIES_SPANS[interval], user_id=user_id)
    local_range = report_params.local_range
    points = usage_series(
        ctx.store, local_range=local_range, interval=interval, users=report_params.users
    )
    return {
        **range_fields(ctx, local_range),
        "interval": interval,
        "points": [
            {"start": point.start.isoformat(), **point.usage.json_values()} for point in points
        ],
    }


NO_GROUP_LABELS = {"team": "No team", "department": "No department"}


def group_json(group: GroupUsage, by: str, tz: Any) -> dict[str, Any]:
    """One team (or department): its value (null: the people without one), how the
    page names it, its people (with requests in the range / all) and their usage."""
    return {
        by: group.value,
        "label": NO_GROUP_LABELS[by] if group.value is None else group.value,
        "people_active": group.people,
        "people": group.all_people,
        **usage_json(group.usage, tz),
    }


@router.get(
    "/api/v1/reports/team-usage",
    summary="Usage per team or department",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses={200: {"model": TeamUsageReport}, **error_responses(400, 401, 403, 503)},
)
def get_team_usage(
    ctx: Ctx,
    _reader: ReportReader,
    asked: PeopleArgs,
    by: Literal["team", "department"] = "team",
) -> dict[str, Any]:
    """The people's usage summed per team (or department, `by`), with the user
    report's parameters; people without one are under "No team" (a null value)."""
    report_params = params.parse(ctx, asked, span=REPORT)
    local_range = report_params.local_range
    groups = usage_by_attribute(
        ctx.store, local_range=local_range, attribute=by, users=report_params.users
    )
    tz_info = local_range.tz
    totals = ctx.store.metrics.empty()
    for group in groups:
        ctx.store.metrics.add(totals, group.usage.raw)
    return {
        **range_fields(ctx, local_range),
        "by": by,
        "q": asked.q or "",
        "totals": {
            "people_active": sum(group.people for group in groups),
            "people": sum(group.all_people for group in groups),
            **usage_json(Usage(totals, metrics=ctx.store.metrics), tz_info),
        },
        "groups": [group_json(group, by, tz_info) for group in groups],
    }


def install_openapi_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's document: the event schema the ingest body refers to, the
    zone names ``tz`` accepts, and no 422 for report parameters (they get a 400)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    event_schema = event_json_schema()
    for name, definition in event_schema.pop("$defs", {}).items():
        components[name] = definition
    components["EventIn"] = event_schema
    zones = sorted(available_timezones())
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "tz":
                    parameter["schema"]["enum"] = ["", *zones]  # empty: the default zone
            if path.startswith("/api/v1/reports/"):
                operation["responses"].pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
