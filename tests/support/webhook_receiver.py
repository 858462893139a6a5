"""A webhook receiver on 127.0.0.1 that records what it is sent (alerts' tests)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Answers 500 to the first ``fail_first`` attempts of each alert (by its
    ``X-TokenLedger-Alert`` header, or by path), then 200; keeps every request. With
    ``hold`` the first request waits until it is set, then gets a 500 (its sender
    may be dead by then: such a request never counts as delivered)."""

    fail_first: int = 0
    hold: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    _tries: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                key = item.headers.get("x-tokenledger-alert", self.path)
                with receiver._lock:
                    receiver.received.append(item)
                    receiver._tries[key] += 1
                    held = receiver.hold is not None and len(receiver.received) == 1
                    ok = not held and receiver._tries[key] > receiver.fail_first
                    if ok:
                        receiver.accepted.append(item)
                if held and receiver.hold is not None:
                    receiver.hold.wait(60)
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
