"""Slow and abusive clients against a real server: bodies sent a byte at a time, idle
connections, headers dribbled, more connections than allowed. Others keep ingesting
while they hold their connections, and the server drops them by itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import httpx2 as httpx
import pytest

from tests.conftest import make_event
from tests.reliability.checks import stored_event_ids
from tests.reliability.conftest import Keys, Servers, create_keys
from tests.reliability.workload import wait_until
from tests.support.server import ServerProcess

TIMEOUT_S = 5  # body and header timeouts of these servers
# What is tested here is the HTTP layer, in front of either database: SQLite only.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _connect(server: ServerProcess, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def _state(sock: socket.socket) -> str:
    """ "open" (nothing received), "answered" (bytes waiting) or "closed" (EOF)."""
    try:
        data = sock.recv(65536, socket.MSG_PEEK)
    except BlockingIOError:
        return "open"
    except ConnectionResetError:
        return "closed"
    return "answered" if data else "closed"


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed the connection."""
    sock.setblocking(True)
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def _dribbling(sockets: list[socket.socket], byte: bytes, every: float = 0.2) -> Iterator[None]:
    """Send ``byte`` on each socket every ``every`` seconds while inside the block."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            for sock in sockets:
                # OSError once the server has closed it: what the test waits for.
                with suppress(BlockingIOError, OSError):
                    sock.send(byte)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _ingest_while(server: ServerProcess, keys: Keys, holders: list[socket.socket]) -> list[str]:
    """Send 10 batches the ordinary way; all must be stored while ``holders`` still
    hold their connections, untouched."""
    sent = []
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {keys.ingest}"}, timeout=30
    ) as client:
        for number in range(10):
            events = [make_event(event_id=f"ok-{number}-{i}") for i in range(20)]
            response = client.post("/api/v1/events", json={"events": events})
            assert response.status_code == 200, response.text
            sent += [event["event_id"] for event in events]
    assert [_state(sock) for sock in holders] == ["open"] * len(holders), (
        "the abusive clients must still hold their connections while others ingest"
    )
    return sent


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def test_slow_bodies_get_408_while_others_ingest(database_url: str, servers: Servers) -> None:
    keys = create_keys(database_url)
    server = servers.start(database_url, TOKENLEDGER_BODY_TIMEOUT_S=str(TIMEOUT_S))
    slow = _connect(server, 20)
    try:
        head = (
            "POST /api/v1/events HTTP/1.1\r\nHost: tokenledger\r\n"
            f"Authorization: Bearer {keys.ingest}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n"
        )
        for sock in slow:
            sock.send(head.encode() + b'{"events": [')
        with _dribbling(slow, b" "):
            sent = _ingest_while(server, keys, slow)
            wait_until(
                lambda: all(_state(sock) != "open" for sock in slow),
                timeout=TIMEOUT_S + 10,
                message="the server answers every slow body",
            )
        for sock in slow:
            answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b'"code":"body_timeout"' in answer
    finally:
        _close(slow)
    assert sorted(stored_event_ids(database_url)) == sorted(sent)


def test_idle_and_dribbling_connections_do_not_stop_others(
    database_url: str, servers: Servers
) -> None:
    keys = create_keys(database_url)
    server = servers.start(database_url, TOKENLEDGER_HEADER_TIMEOUT_S=str(TIMEOUT_S))
    idle = _connect(server, 300)
    dribblers = _connect(server, 20)
    try:
        for sock in dribblers:
            sock.send(b"POST /api/v1/events HTTP/1.1\r\nHost: tokenledger\r\nX-Slow: ")
        with _dribbling(dribblers, b"z"):
            sent = _ingest_while(server, keys, idle + dribblers)
            wait_until(
                lambda: all(_state(sock) != "open" for sock in idle + dribblers),
                timeout=TIMEOUT_S + 10,
                message="the server closes connections that send no request",
            )
        for sock in idle + dribblers:
            answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b'"code":"header_timeout"' in answer
    finally:
        _close(idle + dribblers)
    assert sorted(stored_event_ids(database_url)) == sorted(sent)


def test_more_connections_than_allowed_are_shed_then_clear(
    database_url: str, servers: Servers
) -> None:
    # Beyond max_connections the server answers 503 at once instead of queueing; the
    # flood clears by itself as its connections reach the header deadline.
    keys = create_keys(database_url)
    server = servers.start(
        database_url,
        TOKENLEDGER_MAX_CONNECTIONS="20",
        TOKENLEDGER_HEADER_TIMEOUT_S=str(TIMEOUT_S),
    )
    flood = _connect(server, 30)
    headers = {"Authorization": f"Bearer {keys.ingest}"}
    events = {"events": [make_event(event_id="after-the-flood")]}
    try:
        shed = httpx.post(f"{server.url}/api/v1/events", json=events, headers=headers)
        assert shed.status_code == 503
        started = time.monotonic()
        wait_until(
            lambda: (
                httpx.post(f"{server.url}/api/v1/events", json=events, headers=headers).status_code
                == 200
            ),
            timeout=TIMEOUT_S + 10,
            every=0.2,
            message="ingest works again once the flood's connections time out",
        )
        assert time.monotonic() - started < TIMEOUT_S + 5
        assert all(_state(sock) != "open" for sock in flood)
    finally:
        _close(flood)
    assert stored_event_ids(database_url) == ["after-the-flood"]


def test_a_low_open_file_limit_is_raised_to_serve_max_connections(
    database_url: str, servers: Servers
) -> None:
    # A service manager's default of 1024 open files (256 here) would stop the server
    # from accepting connections long before max_connections (1000).
    keys = create_keys(database_url)
    server = servers.start(
        database_url, open_files=256, TOKENLEDGER_HEADER_TIMEOUT_S=str(TIMEOUT_S * 4)
    )
    idle = _connect(server, 400)
    try:
        sent = _ingest_while(server, keys, idle)
    finally:
        _close(idle)
    assert sorted(stored_event_ids(database_url)) == sorted(sent)
