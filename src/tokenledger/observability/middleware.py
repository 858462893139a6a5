"""Observing each request: its id, its metrics and its log line."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenledger.observability.logs import REQUEST_ID, request_id_from
from tokenledger.observability.metrics import Metrics

log = logging.getLogger("tokenledger.request")
UNMATCHED = "unmatched"  # the route of a 404: never the raw path (one series per typo)


class RequestObservation:
    """The outermost middleware. Gives each request an id (the client's
    ``X-Request-ID`` when sane, else a new one), sends it back in ``X-Request-ID``, and
    once the answer has ended (a streamed export included) counts it, adds its
    duration to its route template's histogram and writes its log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(Headers(scope=scope).get("x-request-id"))
        context = REQUEST_ID.set(request_id)
        status = 500  # unless an answer starts: an exception escaped the app

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _record(scope, status, time.perf_counter() - started)
            REQUEST_ID.reset(context)


def route_template(scope: Scope) -> str:
    """The route that served the request, as declared (``/admin/keys/{key_id}/revoke``),
    a mount as ``/static/{path}``, or ``unmatched``."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path_format", None) or route.path)
    mounted = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
    if mounted and scope.get("endpoint") is not None:
        return f"{mounted}/{{path}}"
    return UNMATCHED


def _record(scope: Scope, status: int, seconds: float) -> None:
    method, route = scope["method"], route_template(scope)
    metrics: Metrics = scope["app"].state.ctx.metrics
    metrics.http_requests.labels(method, route, str(status)).inc()
    metrics.http_duration.labels(method, route).observe(seconds)
    state: dict[str, Any] = scope.get("state", {})
    client = state.get("client") or (scope["client"][0] if scope.get("client") else "")
    level = logging.INFO if status < 500 else logging.WARNING if status == 503 else logging.ERROR
    log.log(
        level,
        "%s %s %d",
        method,
        route,
        status,
        extra={
            "method": method,
            "route": route,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client,
        },
    )
