"""The JSON API under ``/api/v1``: ingest events, read reports."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tokenledger import ingest as ingest_service
from tokenledger.clock import now_us
from tokenledger.events import event_json_schema
from tokenledger.localdays import LocalRange, iso, parse_date, zone
from tokenledger.ordering import parse_sort, sort_columns
from tokenledger.reports import Usage, UserUsage, usage_series, user_usage
from tokenledger.web.context import AppContext
from tokenledger.web.deps import Ctx, IngestKey, ReportReader, ReportsAvailable
from tokenledger.web.errors import JSON, ApiError, error_body
from tokenledger.web.schemas import IngestResult, UsageSeries, UserUsageReport

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
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": "Error", "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
        for status in statuses
    }


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# The rest of a refused body is not read: the connection cannot carry another request.
_CLOSE = {"Connection": "close"}


async def read_body(request: Request, *, limit: int, timeout_s: float) -> bytes:
    """The request body, refusing more than ``limit`` bytes or a client too slow."""
    too_large = ApiError(
        413, "payload_too_large", f"body is larger than {limit} bytes", headers=_CLOSE
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0

    async def consume() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)

    try:
        await asyncio.wait_for(consume(), timeout_s)
    except TimeoutError as exc:
        raise ApiError(
            408, "body_timeout", f"body not received within {timeout_s:g} s", headers=_CLOSE
        ) from exc
    return b"".join(chunks)


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
        **_errors(400, 401, 403, 408, 413, 415, 503),
    },
)
async def post_events(request: Request, ctx: Ctx, key: IngestKey) -> Response:
    """Store a batch of up to 1000 events. The answer comes after the commit and
    gives, for every input index, `accepted`, `duplicate` or `rejected` (with a code
    and a message naming the field)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "content-type must be application/json")
    settings = ctx.settings
    body = await read_body(
        request, limit=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    try:
        raw_events = ingest_service.parse_envelope(body, max_events=settings.max_batch_events)
    except ingest_service.EnvelopeError as exc:
        return JSON(error_body(exc.code, exc.message), status_code=exc.status)
    result = await run_in_threadpool(
        ingest_service.ingest,
        ctx.writes,
        raw_events,
        now_us=now_us(ctx.clock),
        future_tolerance_s=settings.future_tolerance_s,
    )
    payload = ingest_service.result_json(result, raw_events)
    return JSON(payload, status_code=ingest_status(payload))


def ingest_status(payload: dict[str, Any]) -> int:
    """200 when nothing was rejected, 207 when some events were, 422 when all were
    (a 2xx would tell a careless client that something was stored)."""
    if not payload["rejected"]:
        return 200
    return 207 if payload["accepted"] or payload["duplicates"] else 422


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", f"{name}: {exc}", field=name) from exc


def local_range_from(
    ctx: AppContext, *, start: str | None, end: str | None, tz: str | None
) -> LocalRange:
    """The range named by the common report parameters (400 naming the bad one)."""
    try:
        zone_info = zone(tz or ctx.settings.timezone)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", f"tz: {exc}", field="tz") from exc
    first, last = _date(start, "start"), _date(end, "end")
    try:
        return LocalRange.around(first, last, zone_info, ctx.clock())
    except ValueError as exc:
        field = "end" if "before start" in str(exc) else "start"
        raise ApiError(400, "invalid_parameter", f"{field}: {exc}", field=field) from exc


def check_text(value: str | None, name: str) -> str | None:
    """A text parameter; NUL cannot be searched for (PostgreSQL refuses it in text)."""
    if value is not None and "\x00" in value:
        raise ApiError(400, "invalid_parameter", f"{name}: must not contain NUL", field=name)
    return value


def check_sort(sort: str) -> str:
    try:
        parse_sort(sort)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", f"sort: {exc}", field="sort") from exc
    return sort


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


def range_json(local_range: LocalRange) -> dict[str, Any]:
    return {
        "start": local_range.start.isoformat(),
        "end": local_range.end.isoformat(),
        "start_at": iso(local_range.start_us, local_range.tz),
        "end_at": iso(local_range.end_us, local_range.tz),
        "timezone": local_range.tz.key,
    }


DateParam = Annotated[
    str | None,
    Query(
        description="Local date YYYY-MM-DD (inclusive); default today in `tz`.",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        json_schema_extra={"format": "date"},
    ),
]
TzParam = Annotated[
    str | None, Query(description="IANA time zone; default TOKENLEDGER_TIMEZONE.", max_length=64)
]
QParam = Annotated[
    str | None,
    Query(
        description="Substring of name, e-mail or user id; case and accents ignored.",
        max_length=200,
    ),
]
SortParam = Annotated[
    str,
    Query(
        description=f"One of {', '.join(sort_columns())}; prefix '-' for descending.",
        max_length=40,
        json_schema_extra={"enum": [*sort_columns(), *(f"-{column}" for column in sort_columns())]},
    ),
]


@router.get(
    "/api/v1/reports/user-usage",
    summary="Usage per user",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses={200: {"model": UserUsageReport}, **_errors(400, 401, 403, 503)},
)
def get_user_usage(
    ctx: Ctx,
    _reader: ReportReader,
    start: DateParam = None,
    end: DateParam = None,
    tz: TzParam = None,
    q: QParam = None,
    sort: SortParam = "-total_tokens",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    include_inactive: bool = False,
) -> dict[str, Any]:
    """Requests, tokens and usage time per user between two local dates."""
    local_range = local_range_from(ctx, start=start, end=end, tz=tz)
    report = user_usage(
        ctx.store,
        local_range=local_range,
        q=check_text(q, "q"),
        sort=check_sort(sort),
        limit=limit,
        offset=offset,
        include_inactive=include_inactive,
    )
    tz_info = local_range.tz
    totals = report.totals.json_values()
    return {
        "range": range_json(local_range),
        "tz": tz_info.key,
        "q": q or "",
        "sort": sort,
        "limit": limit,
        "offset": offset,
        "total_users": report.total_users,
        "totals": totals,
        "users": [row_json(row, tz_info) for row in report.rows],
    }


# A series answers one point per hour or day: bounded, like its answer's size (and,
# on SQLite, the number of bound parameters of its queries).
MAX_SERIES_DAYS = {"hour": 93, "day": 3660}
_ADVERB = {"hour": "hourly", "day": "daily"}


@router.get(
    "/api/v1/reports/usage-series",
    summary="Usage per local hour or day",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses={200: {"model": UsageSeries}, **_errors(400, 401, 403, 503)},
)
def get_usage_series(
    ctx: Ctx,
    _reader: ReportReader,
    start: DateParam = None,
    end: DateParam = None,
    tz: TzParam = None,
    q: QParam = None,
    interval: Literal["hour", "day"] = "day",
    user_id: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """Requests, tokens and duration per local hour or day, zero-filled."""
    local_range = local_range_from(ctx, start=start, end=end, tz=tz)
    days = (local_range.end - local_range.start).days + 1
    if days > MAX_SERIES_DAYS[interval]:
        raise ApiError(
            400,
            "invalid_parameter",
            f"interval: {_ADVERB[interval]} series cover at most {MAX_SERIES_DAYS[interval]} days",
            field="interval",
        )
    points = usage_series(
        ctx.store,
        local_range=local_range,
        interval=interval,
        q=check_text(q, "q"),
        user_id=check_text(user_id, "user_id"),
    )
    return {
        "range": range_json(local_range),
        "tz": local_range.tz.key,
        "interval": interval,
        "points": [
            {"start": point.start.isoformat(), **point.usage.json_values()} for point in points
        ],
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
