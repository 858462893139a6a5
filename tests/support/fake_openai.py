"""A fake OpenAI-compatible upstream on 127.0.0.1: Chat Completions, plain and streamed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "gpt-4o-2024-08-06"


def _handler(usage: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if request.get("stream"):
                self._stream(bool(request.get("stream_options", {}).get("include_usage")))
                return
            body = json.dumps(
                {
                    **self._base("chat.completion"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Hello."},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _base(self, kind: str) -> dict[str, Any]:
            return {"id": "chatcmpl-1", "object": kind, "created": 1, "model": MODEL}

        def _stream(self, include_usage: bool) -> None:
            chunk = self._base("chat.completion.chunk")
            chunks = [
                {**chunk, "choices": [{"index": 0, "delta": {"content": "Hello."}}]},
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
            if include_usage:
                chunks.append({**chunk, "choices": [], "usage": usage})
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for item in chunks:
                self.wfile.write(f"data: {json.dumps(item)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_openai(usage: dict[str, Any]) -> Iterator[str]:
    """Serve until the block ends; yields the base URL (``.../v1``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(usage))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
