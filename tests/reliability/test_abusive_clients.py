"""Slow and abusive clients against a real server: bodies sent a byte at a time, idle
connections, headers dribbled, more connections than allowed. Others keep ingesting
while they hold their connections, and the server drops them by itself.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text

from tests.conftest import make_event
from tests.reliability.checks import stored_event_ids
from tests.reliability.conftest import Keys, Servers, create_account, create_keys
from tests.reliability.workload import wait_until
from tests.support.console import PASSWORD
from tests.support.server import ServerProcess
from tests.web.test_route_matrix import route_table
from tokenledger.auth import csrf
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.web.app import create_app
from tokenledger.web.session_middleware import API_PATHS

TIMEOUT_S = 5  # body and header timeouts of these servers
# What is tested here is the HTTP layer, in front of either database: SQLite only.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _connect(
    server: ServerProcess, count: int, *, sources: int = 1, first_source: int = 2
) -> list[socket.socket]:
    """``count`` connections, spread over ``sources`` client addresses (127.0.0.2,
    127.0.0.3, ...: the loopback network is all ours), so that each address stays
    below the per-address cap unless a test means to pass it. The ordinary clients
    of these tests come from 127.0.0.1."""
    sockets = []
    for number in range(count):
        source = f"127.0.0.{first_source + number % sources}"
        sock = socket.create_connection(
            ("127.0.0.1", server.port), timeout=30, source_address=(source, 0)
        )
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
    """Everything the server sent until it closed the connection.

    A server that closes a connection on which bytes are still arriving (a dribbler's,
    or a body it will not read) closes it with a reset, not a FIN: the answer before
    the reset is there all the same, and the reset is the end of it."""
    sock.setblocking(True)
    sock.settimeout(30)
    chunks = []
    with suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def _dribbling(sockets: list[socket.socket], byte: bytes, every: float = 0.2) -> Iterator[None]:
    """Send ``byte`` on each socket every ``every`` seconds while inside the block,
    until the server has answered it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            for sock in sockets:
                if _state(sock) != "open":
                    continue  # answered: more bytes would only make the close a reset
                # OSError if the server closed it meanwhile: what the test waits for.
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
    """Send 10 batches the ordinary way: all must be stored, and at least the first
    while ``holders`` still hold their connections, untouched.

    On a loaded machine the later batches may be answered after the holders' deadline
    (the server then rightly closed them): what counts is that the batches answered
    before it were answered while all holders were there, and none failed."""
    sent, held = [], []
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {keys.ingest}"}, timeout=60
    ) as client:
        for number in range(10):
            events = [make_event(event_id=f"ok-{number}-{i}") for i in range(20)]
            response = client.post("/api/v1/events", json={"events": events})
            assert response.status_code == 200, response.text
            sent += [event["event_id"] for event in events]
            held.append(all(_state(sock) == "open" for sock in holders))
    assert held[0], "the first batch must be stored while the abusive clients hold on"
    assert held == sorted(held, reverse=True), "connections, once dropped, stay dropped"
    return sent


def _status(server: ServerProcess, body: Any, headers: dict[str, str]) -> int | None:
    """The status of one ingest request, or None if it got no answer."""
    try:
        response = httpx.post(f"{server.url}/api/v1/events", json=body, headers=headers, timeout=30)
    except httpx.TransportError:
        return None
    return response.status_code


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def test_slow_bodies_get_408_while_others_ingest(database_url: str, servers: Servers) -> None:
    keys = create_keys(database_url)
    server = servers.start(database_url, TOKENLEDGER_BODY_TIMEOUT_S=str(TIMEOUT_S))
    slow = _connect(server, 20, sources=2)
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
                timeout=TIMEOUT_S + 30,
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
    idle = _connect(server, 300, sources=4)
    dribblers = _connect(server, 20, first_source=6)
    try:
        for sock in dribblers:
            sock.send(b"POST /api/v1/events HTTP/1.1\r\nHost: tokenledger\r\nX-Slow: ")
        with _dribbling(dribblers, b"z"):
            sent = _ingest_while(server, keys, idle + dribblers)
            wait_until(
                lambda: all(_state(sock) != "open" for sock in idle + dribblers),
                timeout=TIMEOUT_S + 30,
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
        shed = httpx.post(f"{server.url}/api/v1/events", json=events, headers=headers, timeout=60)
        assert shed.status_code == 503
        # The flood never closes a connection itself: only the header deadline can.
        wait_until(
            lambda: _status(server, events, headers) == 200,
            timeout=TIMEOUT_S + 30,
            every=0.2,
            message="ingest works again once the flood's connections time out",
        )
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
    idle = _connect(server, 400, sources=5)
    try:
        sent = _ingest_while(server, keys, idle)
    finally:
        _close(idle)
    assert sorted(stored_event_ids(database_url)) == sorted(sent)


def _signed_in_admin(server: ServerProcess) -> tuple[dict[str, str], str]:
    """Cookies and CSRF token of an admin signed in over HTTP, as a browser would."""
    create_account(server.database_url, "admin@example.com", role="admin")
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        browser.get("/sign-in")
        pre_session = browser.cookies["tokenledger_csrf"]
        signed_in = browser.post(
            "/sign-in",
            data={
                "email": "admin@example.com",
                "password": PASSWORD,
                "csrf_token": csrf.token_for(pre_session),
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        session = browser.cookies["tokenledger_session"]
    cookies = {"tokenledger_session": session}
    return cookies, csrf.token_for(session)


def _audited_actions(database_url: str) -> list[str]:
    db = open_database(Settings(database_url=database_url))
    try:
        with db.read() as conn:
            return list(conn.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars())
    finally:
        db.dispose()


class _AnyId(dict[str, str]):
    """Path parameters filled in with 1, whatever their name (account_id, budget_id...)."""

    def __missing__(self, key: str) -> str:
        return "1"


def _post_routes(database_url: str) -> dict[str, bool]:
    """Every POST route of the console (forms; the API's machine routes, ingest and the
    capture receivers, check their key before reading a body: ingest's body deadline has
    its own test above), with ids filled in, and whether it has form fields."""
    app = create_app(Settings(database_url=database_url))
    app.state.ctx.db.dispose()
    return {
        path.format_map(_AnyId()): getattr(route, "body_field", None) is not None
        for (method, path), route in sorted(route_table(app).items())
        if method == "POST" and not path.startswith(API_PATHS)
    }


def test_every_form_route_with_a_stalled_body_gets_408(database_url: str, servers: Servers) -> None:
    # A Content-Length of 100 and then 10 bytes, and nothing more: each route must
    # answer 408 at the body deadline (issue 11, 3), whether the body is being read
    # by the CSRF check (no token header: anonymous) or by the form fields (a signed-in
    # admin with the token in a header), and stores nothing. (A route without form
    # fields never reads a body it does not need, unless the CSRF check must.)
    server = servers.start(database_url, TOKENLEDGER_BODY_TIMEOUT_S=str(TIMEOUT_S))
    cookies, token = _signed_in_admin(server)
    cookie_header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    routes = _post_routes(database_url)
    assert len(routes) >= 13, routes
    assert sum(routes.values()) >= 8, routes
    heads = []
    for path, has_form in routes.items():
        common = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n"
        )
        heads.append(common + "\r\n")  # anonymous: the CSRF check reads the body
        if has_form:
            heads.append(common + f"Cookie: {cookie_header}\r\nX-CSRF-Token: {token}\r\n\r\n")
    stalled = _connect(server, len(heads), sources=2)
    try:
        for sock, head in zip(stalled, heads, strict=True):
            sock.send(head.encode() + b"display_na")
        wait_until(
            lambda: all(_state(sock) != "open" for sock in stalled),
            timeout=TIMEOUT_S + 30,
            message="every stalled form body is answered",
        )
        for head, sock in zip(heads, stalled, strict=True):
            answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), (head.split("\r\n")[0], answer[:300])
            assert b'"code":"body_timeout"' in answer
    finally:
        _close(stalled)
    assert _audited_actions(database_url) == ["account_created", "sign_in"]


def _healthz_on_new_connection(server: ServerProcess, source: int) -> bytes:
    """The answer to one request on a fresh connection from 127.0.0.<source>."""
    sock = _connect(server, 1, first_source=source)[0]
    try:
        sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return _answer(sock)
    finally:
        sock.close()


def test_one_address_is_capped_while_others_connect(database_url: str, servers: Servers) -> None:
    # One client address holds at most TOKENLEDGER_MAX_CONNECTIONS_PER_CLIENT
    # connections; the next is answered 429 at once, while other addresses go on.
    keys = create_keys(database_url)
    server = servers.start(
        database_url,
        TOKENLEDGER_MAX_CONNECTIONS_PER_CLIENT="10",
        TOKENLEDGER_HEADER_TIMEOUT_S="60",
    )
    held = _connect(server, 10)  # from 127.0.0.2
    try:
        refused = _healthz_on_new_connection(server, 2)
        assert refused.startswith(b"HTTP/1.1 429 "), refused[:200]
        assert b'"code":"too_many_connections"' in refused
        assert _healthz_on_new_connection(server, 3).startswith(b"HTTP/1.1 200 ")
        sent = _ingest_while(server, keys, held)  # from 127.0.0.1
        held.pop().close()
        wait_until(
            lambda: _healthz_on_new_connection(server, 2).startswith(b"HTTP/1.1 200 "),
            timeout=30,
            message="a closed connection makes room for the next one from its address",
        )
    finally:
        _close(held)
    assert sorted(stored_event_ids(database_url)) == sorted(sent)
