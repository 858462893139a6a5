"""A fake AI provider on 127.0.0.1 speaking OpenAI's and Anthropic's documented wire
formats: Chat Completions, Completions, Embeddings, Responses and Models (under
``/v1``, as OpenAI's base URL), and Anthropic's Messages (``/v1/messages``), plain or
streamed as server-sent events, with usage that has cached and reasoning tokens.

It runs an asyncio HTTP/1.1 server (keep-alive, chunked streams) in a thread of its
own, so that it can serve hundreds of streams at once (the gateway benchmark) and be
used from synchronous tests. What a request gets is chosen by its model's name:

- ``...-upstream-400``: a 400 in the provider's error format;
- ``...-midstream-error``: a stream that sends two events, then an error event;
- ``...-die``: a stream that sends two events, then drops the connection;
- ``...-slow``: the answer comes after ``slow_s`` seconds;
- ``...-hang``: a stream that sends one event, then waits for the client to leave
  (``hung_up`` counts the ones that saw it leave);
- ``...-no-usage``: no usage, even when asked for;
- ``...-paced``: a stream's events come ``event_delay_s`` apart;
- anything else: a complete answer, at once.

Every request received is kept in ``requests`` (method, path, headers, JSON body).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

# The answer's text, in pieces as a stream sends it (non-ASCII on purpose).
PIECES = ["Xin chào", ", Thảo", "! Here is", " the answer", " 👋", "."]
TEXT = "".join(PIECES)
EMBEDDING = [0.25, -0.5, 0.125]
MODELS = ["gpt-4o-2024-08-06", "gpt-4o-mini", "text-embedding-3-small", "o3-mini"]

# Chat Completions / Completions: prompt includes cached, completion includes reasoning.
OPENAI_USAGE: dict[str, Any] = {
    "prompt_tokens": 2854,
    "completion_tokens": 412,
    "total_tokens": 3266,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0},
}
OPENAI_TOKENS = {"input": 2854, "output": 412, "cache_read": 1024, "reasoning": 128}
RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 2854,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 412,
    "output_tokens_details": {"reasoning_tokens": 128},
    "total_tokens": 3266,
}
EMBEDDING_USAGE: dict[str, Any] = {"prompt_tokens": 8, "total_tokens": 8}
# Anthropic: input_tokens excludes the cache; a stream's message_delta repeats the
# cumulative counts (summing them would double the input).
ANTHROPIC_START_USAGE: dict[str, Any] = {
    "input_tokens": 1830,
    "cache_read_input_tokens": 1024,
    "cache_creation_input_tokens": 376,
    "output_tokens": 1,
}
ANTHROPIC_USAGE: dict[str, Any] = {**ANTHROPIC_START_USAGE, "output_tokens": 412}
ANTHROPIC_TOKENS = {"input": 3230, "output": 412, "cache_read": 1024, "cache_write": 376}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Hangup(Exception):
    """The answer ends by closing the connection."""


class FakeUpstream:
    def __init__(self, *, slow_s: float = 0.0, event_delay_s: float = 0.0) -> None:
        self.slow_s = slow_s
        self.event_delay_s = event_delay_s
        self.requests: list[Received] = []
        self.hung_up = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    # Running ----------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _shutdown(self) -> None:
        """Stop listening and end the answers still running (a slow one sleeps)."""
        if self._server is not None:
            self._server.close()
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=2048)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, _Hangup):
            pass
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        body = json.loads(raw) if raw else None
        path = target.split("?")[0]
        self.requests.append(Received(method, path, headers, body))
        answer = _Answer(self, reader, writer, body if isinstance(body, dict) else {})
        await answer.send(path)
        return True


class _Answer:
    """One answer of the fake upstream."""

    def __init__(
        self,
        upstream: FakeUpstream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: dict[str, Any],
    ) -> None:
        self.upstream = upstream
        self.reader = reader
        self.writer = writer
        self.request = request
        self.model = str(request.get("model", ""))

    async def send(self, path: str) -> None:
        if self.model.endswith("-slow"):
            await asyncio.sleep(self.upstream.slow_s)
        anthropic = path == "/v1/messages"
        if self.model.endswith("-upstream-400"):
            await self._json(400, _error(anthropic, "invalid_request_error", "messages: too short"))
            return
        if path == "/v1/models":
            data = [
                {"id": name, "object": "model", "created": 1, "owned_by": "fake"} for name in MODELS
            ]
            await self._json(200, {"object": "list", "data": data})
            return
        answers = {
            "/v1/chat/completions": (self._chat, _chat_stream),
            "/v1/completions": (self._completion, _completion_stream),
            "/v1/responses": (self._response, _responses_stream),
            "/v1/messages": (self._message, _messages_stream),
        }
        if path == "/v1/embeddings":
            await self._json(200, self._embeddings())
        elif path not in answers:
            await self._json(404, _error(anthropic, "not_found_error", f"no route {path}"))
        elif self.request.get("stream"):
            await self._stream(answers[path][1](self), anthropic=anthropic)
        else:
            await self._json(200, answers[path][0]())

    # Plain answers -------------------------------------------------------------------

    def _usage(self, usage: dict[str, Any]) -> dict[str, Any] | None:
        return None if self.model.endswith("-no-usage") else usage

    def _chat(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": TEXT, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return {
            **self._base("chat.completion"),
            "choices": [choice],
            "usage": self._usage(OPENAI_USAGE),
        }

    def _completion(self) -> dict[str, Any]:
        choice = {"index": 0, "text": TEXT, "logprobs": None, "finish_reason": "stop"}
        return {
            **self._base("text_completion"),
            "choices": [choice],
            "usage": self._usage(OPENAI_USAGE),
        }

    def _embeddings(self) -> dict[str, Any]:
        vector: Any = EMBEDDING
        if self.request.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
        item = {"object": "embedding", "index": 0, "embedding": vector}
        return {
            "object": "list",
            "data": [item],
            "model": self.model,
            "usage": self._usage(EMBEDDING_USAGE),
        }

    def _response(self, status: str = "completed") -> dict[str, Any]:
        content = {"type": "output_text", "text": TEXT, "annotations": []}
        item = {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [content],
        }
        return {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "status": status,
            "model": self._resolved(),
            "output": [item] if status == "completed" else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": self._usage(RESPONSES_USAGE) if status == "completed" else None,
        }

    def _message(self) -> dict[str, Any]:
        return {
            **self._message_base(),
            "content": [{"type": "text", "text": TEXT}],
            "stop_reason": "end_turn",
            "usage": self._usage(ANTHROPIC_USAGE),
        }

    def _message_base(self) -> dict[str, Any]:
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": self._resolved(),
            "stop_sequence": None,
        }

    def _base(self, kind: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": kind,
            "created": 1,
            "model": self._resolved(),
            "system_fingerprint": "fp_1",
        }

    def _resolved(self) -> str:
        """The model as the answer names it (a dated version of the one asked for)."""
        return f"{self.model}-2024-08-06" if self.model == "gpt-4o" else self.model

    async def _json(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
            f"x-request-id: req_fake\r\nset-cookie: __cf_bm=fake-{len(self.upstream.requests)}; "
            f"Path=/\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await self.writer.drain()

    # Streams ------------------------------------------------------------------------

    async def _stream(self, events: Iterator[bytes], *, anthropic: bool) -> None:
        self.writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"x-request-id: req_fake\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for index, event in enumerate(events):
            if index and self.upstream.event_delay_s and self.model.endswith("-paced"):
                await asyncio.sleep(self.upstream.event_delay_s)
            self.writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await self.writer.drain()
            if index == 0 and self.model.endswith("-hang"):
                await self.reader.read()  # until the client leaves
                self.upstream.hung_up += 1
                raise _Hangup()
            if index == 1 and self.model.endswith("-die"):
                self.writer.transport.abort()
                raise _Hangup()
            if index == 1 and self.model.endswith("-midstream-error"):
                error = _error(anthropic, "overloaded_error", "Overloaded")
                self.writer.write(_chunk(_sse(error, "error" if anthropic else None)))
                self.writer.write(b"0\r\n\r\n")
                await self.writer.drain()
                return
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    def wants_usage(self) -> bool:
        options = self.request.get("stream_options") or {}
        return bool(options.get("include_usage")) and not self.model.endswith("-no-usage")


def _error(anthropic: bool, kind: str, message: str) -> dict[str, Any]:
    if anthropic:
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _sse(document: dict[str, Any], event: str | None = None) -> bytes:
    data = f"data: {json.dumps(document, ensure_ascii=False)}\n\n".encode()
    return f"event: {event}\n".encode() + data if event else data


def _chunk(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def _chat_stream(answer: _Answer) -> Iterator[bytes]:
    base = answer._base("chat.completion.chunk")
    usage_field = {"usage": None} if answer.wants_usage() else {}
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    yield _sse({**base, "choices": [first], **usage_field})
    for piece in PIECES:
        choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        yield _sse({**base, "choices": [choice], **usage_field})
    yield _sse(
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **usage_field}
    )
    if answer.wants_usage():
        yield _sse({**base, "choices": [], "usage": OPENAI_USAGE})
    yield b"data: [DONE]\n\n"


def _completion_stream(answer: _Answer) -> Iterator[bytes]:
    base = answer._base("text_completion")
    for piece in PIECES:
        yield _sse(
            {
                **base,
                "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}],
            }
        )
    yield _sse(
        {**base, "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]}
    )
    if answer.wants_usage():
        yield _sse({**base, "choices": [], "usage": OPENAI_USAGE})
    yield b"data: [DONE]\n\n"


def _responses_stream(answer: _Answer) -> Iterator[bytes]:
    started = answer._response(status="in_progress")
    yield _sse(
        {"type": "response.created", "sequence_number": 0, "response": started}, "response.created"
    )
    for number, piece in enumerate(PIECES, start=1):
        delta = {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": piece,
            "logprobs": [],
            "sequence_number": number,
        }
        yield _sse(delta, "response.output_text.delta")
    done = {
        "type": "response.completed",
        "sequence_number": len(PIECES) + 1,
        "response": answer._response(),
    }
    yield _sse(done, "response.completed")


def _messages_stream(answer: _Answer) -> Iterator[bytes]:
    start = {
        **answer._message_base(),
        "content": [],
        "stop_reason": None,
        "usage": ANTHROPIC_START_USAGE,
    }
    yield _sse({"type": "message_start", "message": start}, "message_start")
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    yield _sse(block, "content_block_start")
    yield _sse({"type": "ping"}, "ping")
    for piece in PIECES:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
        yield _sse(delta, "content_block_delta")
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    if not answer.model.endswith("-no-usage"):
        final = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": ANTHROPIC_USAGE,
        }
        yield _sse(final, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")


def main() -> None:
    """``python -m tests.support.fake_upstream [EVENT_DELAY_S]``: serve in a process of
    its own (the gateway benchmark), print the port, stop when standard input closes."""
    import sys

    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    with FakeUpstream(event_delay_s=delay) as fake:
        print(fake.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
