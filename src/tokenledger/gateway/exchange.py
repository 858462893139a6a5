"""One forwarded call as an ASGI answer: the upstream's answer passed on as it comes,
the client's departure watched for, and the event recorded before the answer ends.

A stream is passed on event by event as each arrives (nothing is held back but the
rest of an incomplete event). When the client disconnects, the upstream request is
cancelled at once (its connection closed). When the upstream stream breaks, the client
gets a provider-shaped error event, so its library raises instead of taking a cut
answer for a whole one. The event is stored right after the answer ends: its commit
(a disk flush) adds nothing to what the client waits for.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpx2
import orjson
from starlette.types import Message, Receive, Scope, Send

from tokenledger.gateway import forward, recording
from tokenledger.gateway.calls import Call, Outcome
from tokenledger.gateway.errors import GatewayError, error_json, stream_error_event
from tokenledger.gateway.observer import Observer, Unobserved
from tokenledger.gateway.sse import Event, Splitter

Record = Callable[[dict[str, Any]], Awaitable[None]]
EVENT_ID_HEADER = "x-tokenledger-event-id"
# An upstream's error answer is passed on whole; one larger than this is cut short.
MAX_ERROR_BODY = 1024 * 1024
# The status counted for a call whose client left before any answer (nginx's "client
# closed request").
CLIENT_GONE = 499


class Exchange:
    def __init__(
        self,
        call: Call,
        *,
        client: httpx2.AsyncClient,
        record: Record,
        observer: Observer | None = None,
    ) -> None:
        self.call = call
        self.client = client
        self.record = record
        self.observer = observer or Unobserved()
        self.status: int | None = None  # the status the client was answered
        self.outcome = Outcome()
        self.meter = call.endpoint.meter()
        self.meter.drop_usage_chunk = call.drop_usage_chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch, receive, group.cancel_scope)
                await self._forward(send)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish(send)

    async def _watch(self, receive: Receive, scope: anyio.CancelScope) -> None:
        """Cancel the call when the client disconnects before its answer ended."""
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self.outcome.done:
            self.outcome.client_gone = True
            scope.cancel()

    async def _forward(self, send: Send) -> None:
        request = forward.upstream_request(self.client, self.call)
        sent_s = time.monotonic()
        try:
            response = await self.client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            await self._refuse(send, _transport_error(exc, self.outcome))
            return
        self.observer.gateway_upstream_answered(
            upstream=self.call.upstream.name, seconds=time.monotonic() - sent_s
        )
        self.outcome.sent = True
        self.outcome.upstream_status = response.status_code
        try:
            if self.outcome.upstream_failed:
                await self._pass_error(send, response)
            elif forward.is_event_stream(response):
                await self._pass_stream(send, response)
            else:
                await self._pass_body(send, response)
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def _pass_body(self, send: Send, response: httpx2.Response) -> None:
        try:
            body = await response.aread()
        except httpx2.HTTPError as exc:
            await self._refuse(send, _transport_error(exc, self.outcome))
            return
        if self.call.endpoint.metered:
            self.meter.body(body)
        await self._start(send, response.status_code, forward.answer_headers(response))
        await self._body(send, body)

    async def _pass_error(self, send: Send, response: httpx2.Response) -> None:
        """The upstream's refusal, status and body as it sent them."""
        body = b""
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_ERROR_BODY:
                    break
        except httpx2.HTTPError:
            pass  # what arrived is passed on
        await self._start(send, response.status_code, forward.answer_headers(response))
        await self._body(send, body[:MAX_ERROR_BODY])

    async def _pass_stream(self, send: Send, response: httpx2.Response) -> None:
        await self._start(send, response.status_code, forward.answer_headers(response), stream=True)
        splitter = Splitter()
        try:
            async for chunk in response.aiter_bytes():
                await self._events(send, splitter.feed(chunk))
        except httpx2.HTTPError as exc:
            error = _transport_error(exc, self.outcome)
            self.outcome.error = (
                "upstream_timeout" if error.status == 504 else "upstream_stream_cut"
            )
            await self._body(send, stream_error_event(self.call.upstream.kind, error))
            return
        rest = splitter.rest()
        if rest is not None:
            await self._events(send, [rest])

    async def _events(self, send: Send, events: Iterable[Event]) -> None:
        passed = b"".join(event.raw for event in events if self.meter.event(event))
        if passed:
            await self._body(send, passed)

    async def _refuse(self, send: Send, error: GatewayError) -> None:
        """An answer of the gateway's own (the upstream could not be reached)."""
        self.outcome.error = self.outcome.error or error.code
        headers = [(b"content-type", b"application/json")]
        await self._start(send, error.status, headers)
        await self._body(send, orjson.dumps(error_json(self.call.upstream.kind, error)))

    async def _start(
        self, send: Send, status: int, headers: list[tuple[bytes, bytes]], *, stream: bool = False
    ) -> None:
        headers = [*headers, (EVENT_ID_HEADER.encode(), self.call.event_id.encode())]
        if stream:
            headers.append((b"x-accel-buffering", b"no"))  # nor buffered by a proxy
        self.outcome.answered = True
        self.status = status
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def _body(self, send: Send, body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})

    def _observe(self) -> None:
        outcome = self.outcome
        error = outcome.error or ("client_gone" if outcome.client_gone else "")
        self.observer.gateway_answered(
            kind=self.call.endpoint.kind,
            endpoint=self.call.endpoint.name,
            upstream=self.call.upstream.name,
            status=self.status if self.status is not None else CLIENT_GONE,
            error=error,
        )

    async def _finish(self, send: Send) -> None:
        """End the answer, then record the call."""
        self.outcome.done = True
        duration_ms = round((time.monotonic() - self.call.started_s) * 1000)
        if self.outcome.answered and not self.outcome.client_gone:
            end: Message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(end)
        self._observe()
        if self.call.endpoint.metered:
            event = recording.gateway_event(
                self.call, self.outcome, self.meter, duration_ms=duration_ms
            )
            await self.record(event)


def _transport_error(exc: httpx2.HTTPError, outcome: Outcome) -> GatewayError:
    """What to tell the client when the upstream could not be used. Whether the request
    was sent decides whether usage may be missing."""
    if isinstance(exc, httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return GatewayError(
            504, "upstream_timeout", "the upstream did not accept a connection in time"
        )
    if isinstance(exc, httpx2.ConnectError):
        return GatewayError(502, "upstream_unreachable", "the upstream cannot be reached")
    outcome.sent = True
    if isinstance(exc, httpx2.TimeoutException):
        return GatewayError(504, "upstream_timeout", "the upstream did not answer in time")
    return GatewayError(502, "upstream_failed", "the upstream's answer broke off")
