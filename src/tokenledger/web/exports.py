"""CSV downloads of the User Usage report (``/api/v1/reports/user-usage/export``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tokenledger.export import (
    MEDIA_TYPE,
    CsvExport,
    ExportCancelled,
    ExportOutcome,
    ExportRequest,
    Granularity,
)
from tokenledger.export_audit import audit_export
from tokenledger.localdays import iso
from tokenledger.report_params import EXPORTS
from tokenledger.reports import check_retained, events_removed_before
from tokenledger.web import params
from tokenledger.web.deps import Ctx, ExportReader, ReportsAvailable
from tokenledger.web.errors import error_responses
from tokenledger.web.params import (
    PeopleArgs,
    SortParam,
    UserIdParam,
)

router = APIRouter()

GranularityParam = Annotated[
    Granularity,
    Query(
        description="`summary`: one row per user (the report's rows); `daily`: per user and "
        "local day with usage; `events`: one row per request, chronological; `models`: one "
        "row per model and provider, most expensive first; `teams`: one row per team (or "
        "department: `by`)."
    ),
]
BomParam = Annotated[bool, Query(description="Start with a UTF-8 byte order mark (for Excel).")]


# On an events export whose range starts before the retained events: where they begin.
EVENTS_RETAINED_FROM = "X-TokenLedger-Events-Retained-From"


class ExportResponse(StreamingResponse):
    """An export streamed as a download, its rows read while the body is sent.

    The work stops when the client goes away: a watcher of the connection cancels the
    export, which notices between two pieces of work (the summary, a local day, a page
    of events), even when those pieces have no row to send. The export's iterator is
    always closed when the response ends, so its outcome is known at once.
    """

    def __init__(self, export: CsvExport, *, retained_from: int | None = None) -> None:
        headers = {
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
        }
        if retained_from is not None:  # the events before it were deleted by retention
            tz = export.request.local_range.tz
            headers[EVENTS_RETAINED_FROM] = iso(retained_from, tz) or ""
        super().__init__(export, media_type=MEDIA_TYPE, headers=headers)
        self.export = export

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._cancel_when_gone(receive))
        try:
            await self.stream_response(send)
        except (ExportCancelled, OSError):
            return  # the client went away: there is no one left to answer
        finally:
            watcher.cancel()

    async def _cancel_when_gone(self, receive: Receive) -> None:
        await self.listen_for_disconnect(receive)
        self.export.cancel()

    async def stream_response(self, send: Send) -> None:
        chunks = self.export.chunks()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            while (chunk := await run_in_threadpool(next, chunks, None)) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(chunks.close)


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
    reader: ExportReader,
    asked: PeopleArgs,
    sort: SortParam = "-total_tokens",
    granularity: GranularityParam = "summary",
    bom: BomParam = False,
    user_id: UserIdParam = None,
    by: Literal["team", "department"] = "team",
) -> StreamingResponse:
    """The User Usage report as a CSV file, with the same filters; `sort` orders the
    users (of each day for `daily`); `events` are always chronological. Parameters are
    checked before the first byte; a failure after it breaks the download, and a
    client that goes away stops the work. Every export is written to the audit log
    when it starts (who, the filters) and when it ends (the rows sent, complete or
    not)."""
    report_params = params.parse(ctx, asked, span=EXPORTS[granularity], sort=sort, user_id=user_id)
    request = ExportRequest(
        local_range=report_params.local_range,
        users=report_params.users,
        sort=report_params.sort,
        granularity=granularity,
        bom=bom,
        by=by,
    )
    export = CsvExport(ctx.store, request)
    retained_from = None
    if granularity == "events":
        retained_from = events_removed_before(ctx.store, report_params.local_range)
    else:  # a 400 now rather than a download that breaks off
        check_retained(ctx.store, report_params.local_range)

    def observe(outcome: ExportOutcome) -> None:
        ctx.metrics.export_finished(granularity, rows=outcome.rows, complete=outcome.complete)

    audit_export(
        export,
        ctx.db,
        actor=reader.actor,
        client=reader.client,
        clock=ctx.clock,
        observe=observe,
    )
    return ExportResponse(export, retained_from=retained_from)
