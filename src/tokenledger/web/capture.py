"""Receivers for usage that other tools send: OTLP/HTTP traces and LiteLLM's callback.

Both take an ``ingest`` key and store through the path of ``POST /api/v1/events``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tokenledger import ingest as ingest_service
from tokenledger.capture import litellm, otlp_wire, receive
from tokenledger.clock import now_us
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.web.api import ingest_status
from tokenledger.web.context import AppContext
from tokenledger.web.deps import Ctx, IngestKey, require_key
from tokenledger.web.encoded_body import read_encoded_body
from tokenledger.web.errors import JSON, ApiError, error_body
from tokenledger.web.schemas import IngestResult

router = APIRouter()

_require_ingest_key = require_key("ingest")
_OTLP_CONTENT: dict[str, Any] = {
    otlp_wire.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
    otlp_wire.JSON: {"schema": {"type": "object"}},
}


def _otlp(description: str) -> dict[str, Any]:
    return {"description": description, "content": _OTLP_CONTENT}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


@router.post(
    "/v1/traces",
    summary="Receive OpenTelemetry traces (OTLP/HTTP)",
    tags=["integrations"],
    response_model=None,
    openapi_extra={"requestBody": {"required": True, "content": _OTLP_CONTENT}},
    responses={
        200: _otlp("ExportTraceServiceResponse (partial_success: what was not stored)"),
        400: _otlp("google.rpc.Status: the body is not an export request"),
        401: _otlp("google.rpc.Status: missing or unknown key"),
        403: _otlp("google.rpc.Status: not an ingest key"),
        408: _otlp("google.rpc.Status: the body came too slowly (retry)"),
        413: _otlp("google.rpc.Status: body too large (also once decompressed)"),
        415: _otlp("google.rpc.Status: neither protobuf nor JSON, or not gzip"),
        503: _otlp("google.rpc.Status: the database is unavailable (retry)"),
    },
)
async def post_traces(request: Request, ctx: Ctx) -> Response:
    """OTLP/HTTP trace export (`application/x-protobuf` or `application/json`, optionally
    gzip). Spans with GenAI usage become events (`otel:<trace id><span id>`); the answer
    comes after the commit."""
    media_type = _media_type(request)
    answer_type = otlp_wire.PROTOBUF if media_type == otlp_wire.PROTOBUF else otlp_wire.JSON
    try:
        outcome = await _receive_traces(request, ctx, media_type)
    except ApiError as exc:
        return _status(answer_type, exc.status, exc.message, exc.headers)
    except otlp_wire.OtlpError as exc:
        return _status(answer_type, 400, str(exc))
    except DatabaseUnavailable as exc:
        message = f"the database cannot be used right now ({exc}); nothing was stored, retry later"
        return _status(answer_type, 503, message, {"Retry-After": "5"})
    body = otlp_wire.export_response(
        answer_type, rejected=outcome.rejected, message=outcome.message()
    )
    return Response(body, media_type=answer_type)


async def _receive_traces(
    request: Request, ctx: AppContext, media_type: str
) -> receive.TraceOutcome:
    await run_in_threadpool(_require_ingest_key, request, ctx)
    if media_type not in {otlp_wire.PROTOBUF, otlp_wire.JSON}:
        raise ApiError(
            415,
            "unsupported_media_type",
            "content-type must be application/x-protobuf or application/json",
        )
    settings = ctx.settings
    body = await read_encoded_body(request, limit=settings.max_body_bytes)
    return await run_in_threadpool(
        receive.receive_export,
        ctx.writes,
        body,
        media_type,
        now_us=now_us(ctx.clock),
        future_tolerance_s=settings.future_tolerance_s,
        user_attributes=settings.otel_user_attribute_names,
    )


def _status(
    media_type: str, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = otlp_wire.error_status(media_type, http_status=status, message=message)
    return Response(body, status_code=status, media_type=media_type, headers=headers)


_LITELLM_TYPES = {"application/json", "application/x-ndjson", "application/jsonl"}


@router.post(
    "/api/v1/integrations/litellm",
    summary="Receive LiteLLM's generic_api callback",
    tags=["integrations"],
    status_code=200,
    response_model=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": ["array", "object"]}}},
        }
    },
    responses={
        200: {"model": IngestResult, "description": "Every log is stored (or already was)."},
        207: {"model": IngestResult, "description": "Some logs were rejected; see `results`."},
        422: {"model": IngestResult, "description": "Every log was rejected: nothing stored."},
        **{
            status: {"description": "Error: nothing stored"}
            for status in (400, 401, 403, 408, 413, 415, 503)
        },
    },
)
async def post_litellm(request: Request, ctx: Ctx, _key: IngestKey) -> Response:
    """LiteLLM's StandardLoggingPayload logs (`log_format` `json_array`, `ndjson` or
    `single`). Each becomes an event `litellm:<litellm_call_id>`; the answer comes after
    the commit, and a batch sent again adds nothing."""
    if _media_type(request) not in _LITELLM_TYPES:
        raise ApiError(415, "unsupported_media_type", "content-type must be application/json")
    settings = ctx.settings
    body = await read_encoded_body(request, limit=settings.max_body_bytes)
    try:
        records = litellm.parse_records(body, max_records=settings.max_batch_events)
    except ingest_service.EnvelopeError as exc:
        return JSON(error_body(exc.code, exc.message), status_code=exc.status)
    mapped = [litellm.record_event(record) for record in records]
    payload: dict[str, Any] = await run_in_threadpool(
        receive.answer_mapped,
        ctx.writes,
        mapped,
        now_us=now_us(ctx.clock),
        future_tolerance_s=settings.future_tolerance_s,
    )
    return JSON(payload, status_code=ingest_status(payload))
