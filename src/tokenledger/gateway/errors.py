"""Errors as each provider's clients expect them, so that the ``openai`` and
``anthropic`` libraries raise their usual exceptions with our message.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``; Anthropic:
``{"type": "error", "error": {"type", "message"}}``. Anything more (a refusing
budget) is added inside ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

from tokenledger.gateway.upstreams import Kind

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
}
# Our codes that are also the error's type (what a client should branch on).
_OWN_TYPES = frozenset({"budget_exceeded"})


@dataclass
class GatewayError(Exception):
    """A request the gateway answers itself, with ``status`` and a machine ``code``."""

    status: int
    code: str
    message: str
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


def error_json(kind: Kind, error: GatewayError) -> dict[str, Any]:
    """The body of ``error`` in ``kind``'s wire format."""
    if kind == "anthropic":
        kind_type = _type(error, _ANTHROPIC_TYPES)
        return {
            "type": "error",
            "error": {"type": kind_type, "message": error.message, **error.details},
        }
    return {
        "error": {
            "message": error.message,
            "type": _type(error, _OPENAI_TYPES),
            "param": error.param,
            "code": error.code,
            **error.details,
        }
    }


def _type(error: GatewayError, types: dict[int, str]) -> str:
    if error.code in _OWN_TYPES:
        return error.code
    return types.get(error.status, "api_error")


def error_response(kind: Kind, error: GatewayError) -> Response:
    return Response(
        orjson.dumps(error_json(kind, error)),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


def stream_error_event(kind: Kind, error: GatewayError) -> bytes:
    """``error`` as a server-sent event, for a stream that already began: both clients
    raise it as an API error."""
    data = orjson.dumps(error_json(kind, error))
    if kind == "anthropic":
        return b"event: error\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"


def kind_of_path(path: str) -> Kind:
    """Which wire format a gateway path speaks."""
    return "anthropic" if path.startswith("/gateway/anthropic/") else "openai"


def refusal(path: str, status: int, code: str, message: str, headers: dict[str, str]) -> Response:
    """A request refused before its route ran (body too large, too slow) in the
    format of the gateway route it was for."""
    error = GatewayError(status, code, message, headers=headers)
    return error_response(kind_of_path(path), error)
