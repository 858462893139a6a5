"""Limits on every request body, whichever route reads it: a deadline and a size.

A client that declares ``Content-Length: 100`` and then sends nothing (or a byte now
and then) would otherwise hold its connection, and a worker, for as long as it likes:
enough of them lock everyone out. So every body must arrive within
``body_timeout_s`` of the moment it is first read (408 after), and be at most the
route's size (413): the ingest limit for ``/api/v1/events`` and the capture receivers,
a form's size for every other route (sign-in, account and admin forms).

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
MAX_FORM_BYTES = 256 * 1024
# Routes that take a file: the people directory (about 100,000 people).
UPLOAD_PATHS = frozenset({"/admin/people"})
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
_CLOSE = {"Connection": "close"}


class BodyRefused(Exception):
    """Raised into the application's read when its body passes a limit."""


def too_large(limit: int) -> Response:
    return error_response(
        413, "payload_too_large", f"body is larger than {limit} bytes", headers=_CLOSE
    )


def too_slow(timeout_s: float) -> Response:
    return error_response(
        408, "body_timeout", f"body not received within {timeout_s:g} s", headers=_CLOSE
    )


class BodyLimits:
    """ASGI middleware: a deadline and a size limit on each request's body."""

    def __init__(self, app: ASGIApp, *, timeout_s: float, max_bytes: Callable[[str], int]) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await too_large(limit)(scope, receive, send)
            return
        body = _GuardedBody(receive, limit=limit, timeout_s=self.timeout_s)

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

    def __init__(self, receive: Receive, *, limit: int, timeout_s: float) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout_s = timeout_s
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
            self.refusal = too_slow(self._timeout_s)
            raise BodyRefused() from None
        if message["type"] != "http.request":
            self._complete = True
            return message
        self._size += len(message.get("body", b""))
        if self._size > self._limit:
            self.refusal = too_large(self._limit)
            raise BodyRefused()
        self._complete = not message.get("more_body", False)
        return message


def body_size_limit(max_ingest_bytes: int) -> Callable[[str], int]:
    """The largest body of each path: ingest batches, or a form."""

    def limit(path: str) -> int:
        if path in INGEST_PATHS:
            return max_ingest_bytes
        return MAX_UPLOAD_BYTES if path in UPLOAD_PATHS else MAX_FORM_BYTES

    return limit
