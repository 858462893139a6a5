"""CSV downloads of the User Usage report (``/api/v1/reports/user-usage/export``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import StreamingResponse

from tokenledger.auth import audit
from tokenledger.clock import now_us
from tokenledger.export import (
    MEDIA_TYPE,
    CsvExport,
    ExportOutcome,
    ExportRequest,
    Granularity,
    audit_details,
)
from tokenledger.report_params import EXPORTS
from tokenledger.web import params
from tokenledger.web.deps import Ctx, ReportReader, ReportsAvailable
from tokenledger.web.errors import error_responses
from tokenledger.web.params import DateParam, QParam, SortParam, TzParam

router = APIRouter()

GranularityParam = Annotated[
    Granularity,
    Query(
        description="`summary`: one row per user (the report's rows); `daily`: per user and "
        "local day with usage; `events`: one row per request, chronological."
    ),
]
BomParam = Annotated[bool, Query(description="Start with a UTF-8 byte order mark (for Excel).")]


def csv_response(export: CsvExport) -> StreamingResponse:
    """Stream ``export`` as a download; its rows are read while the body is sent."""
    return StreamingResponse(
        export,
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/api/v1/reports/user-usage/export",
    summary="Usage per user as CSV",
    dependencies=[ReportsAvailable],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV (RFC 4180, CRLF), streamed; the header row is always there.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **error_responses(400, 401, 403, 503),
    },
)
def export_user_usage(
    ctx: Ctx,
    reader: ReportReader,
    start: DateParam = None,
    end: DateParam = None,
    tz: TzParam = None,
    q: QParam = None,
    sort: SortParam = "-total_tokens",
    granularity: GranularityParam = "summary",
    bom: BomParam = False,
) -> StreamingResponse:
    """The User Usage report as a CSV file, with the same filters; `sort` orders the
    users (of each day for `daily`); `events` are always chronological. Parameters are
    checked before the first byte; a failure after it breaks the download. Every export
    is written to the audit log when it ends: who, the filters, the rows sent."""
    asked = params.parse(
        ctx, span=EXPORTS[granularity], start=start, end=end, tz=tz, q=q, sort=sort
    )
    request = ExportRequest(
        local_range=asked.local_range,
        users=asked.users,
        sort=asked.sort,
        granularity=granularity,
        bom=bom,
    )

    def audit_export(outcome: ExportOutcome) -> None:
        audit.record(
            ctx.db,
            actor=reader.actor,
            action=audit.EXPORT,
            details=audit_details(request, outcome),
            now_us=now_us(ctx.clock),
            client=reader.client,
        )

    return csv_response(CsvExport(ctx.store, request, on_finish=audit_export))
