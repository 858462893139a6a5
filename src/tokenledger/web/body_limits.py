"""Limits on every request body, whichever route reads it: a deadline and a size.

A client that declares ``Content-Length: 100`` and then sends nothing (or a byte now
and then) would otherwise hold its connection, and a worker, for as long as it likes:
enough of them lock everyone out. So every body must arrive within
``body_timeout_s`` of the moment it is first read (408 after), and be at most the
route's size (413): the ingest limit for ``/api/v1/events``, the capture receivers and
the gateway, a form's size for every other route (sign-in, account and admin forms).

It works on the ASGI receive channel, so it covers bodies read by route parameters
(``Form()``), by the CSRF check and by handlers alike. When a limit is passed, the
refusal replaces whatever answer the application makes of its interrupted read, and
the connection is closed: the rest of the body will not be read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenledger.web.errors import error_response

# Routes that take batches of usage (ingest, and the OTLP and LiteLLM receivers).
INGEST_PATHS = frozenset({"/api/v1/events", "/v1/traces", "/api/v1/integrations/litellm"})
# The gateway's routes take AI requests, which may be as large as an ingest batch.
GATEWAY_PREFIX = "/gateway/"
MAX_FORM_BYTES = 256 * 1024
# Routes that take a file: the people directory (about 100,000 people).
UPLOAD_PATHS = frozenset({"/admin/people"})
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
_CLOSE = {"Connection": "close"}


class BodyRefused(Exception):
    """Raised into the application's read when its body passes a limit."""


# How a refusal is answered on a path: (path, status, code, message, headers).
Refusal = Callable[[str, int, str, str, dict[str, str]], Response]


def _refusal(path: str, status: int, code: str, message: str, headers: dict[str, str]) -> Response:
    return error_response(status, code, message, headers=headers)


class BodyLimits:
    """ASGI middleware: a deadline and a size limit on each request's body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        timeout_s: float,
        max_bytes: Callable[[str], int],
        refusal: Refusal = _refusal,
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.refusal = refusal

    def too_large(self, path: str, limit: int) -> Response:
        message = f"body is larger than {limit} bytes"
        return self.refusal(path, 413, "payload_too_large", message, _CLOSE)

    def too_slow(self, path: str) -> Response:
        message = f"body not received within {self.timeout_s:g} s"
        return self.refusal(path, 408, "body_timeout", message, _CLOSE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.max_bytes(path)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await self.too_large(path, limit)(scope, receive, send)
            return
        body = _GuardedBody(
            receive,
            limit=limit,
            timeout_s=self.timeout_s,
            too_large=lambda: self.too_large(path, limit),
            too_slow=lambda: self.too_slow(path),
        )

        async def guarded_send(message: Message) -> None:
            if body.refusal is None:
                body.answered |= message["type"] == "http.response.start"
                await send(message)

        with suppress(BodyRefused):
            await self.app(scope, body.receive, guarded_send)
        if body.refusal is not None and not body.answered:
            await body.refusal(scope, receive, send)


class _GuardedBody:
    """The receive channel of one request, with its limits."""

    def __init__(
        self,
        receive: Receive,
        *,
        limit: int,
        timeout_s: float,
        too_large: Callable[[], Response],
        too_slow: Callable[[], Response],
    ) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout_s = timeout_s
        self._too_large = too_large
        self._too_slow = too_slow
        self._deadline: float | None = None
        self._size = 0
        self._complete = False
        self.refusal: Response | None = None
        self.answered = False

    async def receive(self) -> Message:
        if self._complete:  # after the body: waiting for a disconnect is not bounded
            return await self._receive()
        if self.refusal is not None:
            raise BodyRefused()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self._timeout_s
        try:
            message = await asyncio.wait_for(self._receive(), self._deadline - loop.time())
        except TimeoutError:
            self.refusal = self._too_slow()
            raise BodyRefused() from None
        if message["type"] != "http.request":
            self._complete = True
            return message
        self._size += len(message.get("body", b""))
        if self._size > self._limit:
            self.refusal = self._too_large()
            raise BodyRefused()
        self._complete = not message.get("more_body", False)
        return message


def body_size_limit(max_ingest_bytes: int) -> Callable[[str], int]:
    """The largest body of each path: ingest batches and AI requests, or a form."""

    def limit(path: str) -> int:
        if path in INGEST_PATHS or path.startswith(GATEWAY_PREFIX):
            return max_ingest_bytes
        return MAX_UPLOAD_BYTES if path in UPLOAD_PATHS else MAX_FORM_BYTES

    return limit
