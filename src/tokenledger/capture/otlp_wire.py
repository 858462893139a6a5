"""OTLP/HTTP trace export, on the wire: request bodies in, answers out.

Both encodings of the OTLP specification: binary protobuf (``application/x-protobuf``,
via ``opentelemetry-proto``) and JSON (``application/json``: lowerCamelCase field
names, trace and span ids in hex, 64-bit integers as strings or numbers, enums as
integers or names, unknown fields ignored). Either becomes the same list of
:class:`Span`; only the attributes a usage event needs are read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
STATUS_CODE_ERROR = 2
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class OtlpError(ValueError):
    """The body is not an export request in the encoding it claims (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Span:
    """One span, with what a usage event is made of. Attribute values are scalars
    (arrays and maps, which no usage attribute is, are left out)."""

    trace_id: bytes
    span_id: bytes
    name: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]
    scope: str

    @property
    def event_id(self) -> str:
        return f"otel:{self.trace_id.hex()}{self.span_id.hex()}"


def decode(body: bytes, media_type: str) -> list[Span]:
    """The spans of an ``ExportTraceServiceRequest`` (OtlpError when it is not one)."""
    if media_type == PROTOBUF:
        return list(_protobuf_spans(body))
    return list(_json_spans(body))


# Protobuf


def _scalar(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in {"string_value", "int_value", "double_value", "bool_value"}:
        return getattr(value, kind)
    return None


def _proto_attributes(attributes: Iterator[KeyValue] | Any) -> dict[str, Any]:
    return {item.key: _scalar(item.value) for item in attributes}


def _protobuf_spans(body: bytes) -> Iterator[Span]:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RuntimeError) as exc:  # RuntimeError: nesting too deep
        raise OtlpError(f"body is not a protobuf ExportTraceServiceRequest ({exc})") from exc
    for resource_spans in request.resource_spans:
        resource = _proto_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                yield Span(
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                    name=span.name,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    error=span.status.code == STATUS_CODE_ERROR,
                    attributes=_proto_attributes(span.attributes),
                    resource=resource,
                    scope=scope,
                )


# JSON


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpError(f"{where} must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpError(f"{where} must be a JSON array")
    return value


def _int64(value: Any, where: str) -> int:
    """A fixed64/int64 field: a decimal string or a number."""
    if value is None:
        return 0
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise OtlpError(f"{where} must be an integer (a decimal string), not {value!r}")


def _hex_id(value: Any, where: str) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise OtlpError(f"{where} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise OtlpError(f"{where} is not hex: {value!r}") from exc


def _json_scalar(value: Any, where: str) -> Any:
    value = _object(value, where)
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return _int64(value["intValue"], f"{where}.intValue")
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    return None


def _json_attributes(items: Any, where: str) -> dict[str, Any]:
    attributes = {}
    for index, item in enumerate(_list(items, where)):
        item = _object(item, f"{where}[{index}]")
        key = item.get("key")
        if not isinstance(key, str):
            raise OtlpError(f"{where}[{index}].key must be a string")
        attributes[key] = _json_scalar(item.get("value"), f"{where}[{index}].value")
    return attributes


def _status_code(status: Mapping[str, Any], where: str) -> int:
    code = status.get("code", 0)
    if isinstance(code, str) and code in _STATUS_NAMES:
        return _STATUS_NAMES[code]
    return _int64(code, where)


def _json_spans(body: bytes) -> Iterator[Span]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):  # ``null`` too: the body must be the request object
        raise OtlpError("body must be a JSON object (an ExportTraceServiceRequest)")
    for r, resource_spans in enumerate(_list(document.get("resourceSpans"), "resourceSpans")):
        yield from _json_resource_spans(resource_spans, f"resourceSpans[{r}]")


def _json_resource_spans(value: Any, where: str) -> Iterator[Span]:
    resource_spans = _object(value, where)
    resource_doc = _object(resource_spans.get("resource"), f"{where}.resource")
    resource = _json_attributes(resource_doc.get("attributes"), f"{where}.resource.attributes")
    for s, scope_spans in enumerate(_list(resource_spans.get("scopeSpans"), f"{where}.scopeSpans")):
        scope_where = f"{where}.scopeSpans[{s}]"
        scope_spans = _object(scope_spans, scope_where)
        scope_name = _object(scope_spans.get("scope"), f"{scope_where}.scope").get("name", "")
        scope = scope_name if isinstance(scope_name, str) else ""
        for n, span in enumerate(_list(scope_spans.get("spans"), f"{scope_where}.spans")):
            yield _json_span(span, f"{scope_where}.spans[{n}]", resource, scope)


def _json_span(value: Any, where: str, resource: Mapping[str, Any], scope: str) -> Span:
    span = _object(value, where)
    status = _object(span.get("status"), f"{where}.status")
    name = span.get("name", "")
    return Span(
        trace_id=_hex_id(span.get("traceId"), f"{where}.traceId"),
        span_id=_hex_id(span.get("spanId"), f"{where}.spanId"),
        name=name if isinstance(name, str) else "",
        start_ns=_int64(span.get("startTimeUnixNano"), f"{where}.startTimeUnixNano"),
        end_ns=_int64(span.get("endTimeUnixNano"), f"{where}.endTimeUnixNano"),
        error=_status_code(status, f"{where}.status.code") == STATUS_CODE_ERROR,
        attributes=_json_attributes(span.get("attributes"), f"{where}.attributes"),
        resource=resource,
        scope=scope,
    )


# Answers


def export_response(media_type: str, *, rejected: int, message: str) -> bytes:
    """An ``ExportTraceServiceResponse``; ``partial_success`` only when there is
    something to say (rejected spans, or a warning with 0 rejected)."""
    if media_type == PROTOBUF:
        response = ExportTraceServiceResponse()
        if rejected or message:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        serialized: bytes = response.SerializeToString()
        return serialized
    document: dict[str, Any] = {}
    if rejected or message:
        document["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
    return orjson.dumps(document)


# gRPC status codes for the HTTP statuses a receiver answers with (google.rpc.Code).
_RPC_CODES = {400: 3, 401: 16, 403: 7, 408: 4, 413: 3, 415: 3, 429: 8, 503: 14}


def error_status(media_type: str, *, http_status: int, message: str) -> bytes:
    """The body of a failed export: a ``google.rpc.Status`` in the request's encoding."""
    code = _RPC_CODES.get(http_status, 2)  # 2: UNKNOWN
    if media_type == PROTOBUF:
        status: bytes = RpcStatus(code=code, message=message).SerializeToString()
        return status
    return orjson.dumps({"code": code, "message": message})
