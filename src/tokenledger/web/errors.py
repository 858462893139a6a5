"""One error shape for the whole API: ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from tokenledger.auth.passwords import PasswordsBusy
from tokenledger.report_params import InvalidParameter
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.store.retention import EventsRemoved
from tokenledger.web.error_pages import error_page


class JSON(JSONResponse):
    """JSON rendered by orjson (fast, and strict about what it accepts)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


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


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses (all in the error shape)."""
    return {
        status: {"description": "Error", "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
        for status in statuses
    }


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return JSON(error_body(code, message, field), status_code=status, headers=headers)


_STATUS_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def is_api(request: Request) -> bool:
    """Whether the request is for the JSON API (else a console page, answered in HTML)."""
    return request.url.path.startswith("/api/")


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into the error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(InvalidParameter)
    async def _invalid_parameter(_request: Request, exc: InvalidParameter) -> Response:
        return error_response(400, exc.code, exc.message, exc.field)

    @app.exception_handler(EventsRemoved)
    async def _events_removed(request: Request, exc: EventsRemoved) -> Response:
        # A zone with a historical non-quarter-hour offset needs raw events retention
        # deleted: refused, never answered short.
        message = f"start: {exc.args[0]}"
        if not is_api(request):
            return error_page(request, status=400, title="Bad request", message=message)
        return error_response(400, "events_removed", message, "start")

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ()) if part not in {"query", "path", "body"}]
        field = ".".join(loc) or None
        message = str(first.get("msg", "invalid value")).replace("Input should", "must")
        text = f"{field}: {message}" if field else message
        if not is_api(request):
            return error_page(request, status=400, title="Bad request", message=text)
        return error_response(400, "invalid_parameter", text, field)

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
        if not is_api(request):
            return error_page(
                request,
                status=503,
                title="The database is unavailable",
                message=f"{exc}. Nothing is lost; try again in a moment.",
                headers={"Retry-After": "5"},
            )
        stored = "nothing was stored, " if request.method == "POST" else ""
        return error_response(
            503,
            "database_unavailable",
            f"the database cannot be used right now ({exc}); {stored}retry later",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(PasswordsBusy)
    async def _busy(request: Request, exc: PasswordsBusy) -> Response:
        headers = {"Retry-After": "1"}
        message = "Too many password checks at this moment; nothing was changed. Try again."
        if not is_api(request):
            return error_page(request, status=503, title="Busy", message=message, headers=headers)
        return error_response(503, "busy", message, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)
