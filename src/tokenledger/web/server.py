"""Serving the app with uvicorn, with the timeouts and limits that keep one slow or
abusive client from stopping the others.

uvicorn closes idle keep-alive connections and sheds connections above a limit, but it
waits forever for a request's line and headers: a client that connects and sends
nothing, or a header byte now and then, holds a connection (and a file descriptor)
for good. :class:`HeaderDeadline` closes such a connection after ``header_timeout_s``.
Bodies have their own deadline, on every route (``body_timeout_s``, see
``web.body_limits``). uvicorn's limit counts all connections together, so one address
could take them all: :class:`ClientConnectionCap` answers an address's connection past
``max_connections_per_client`` with a 429 at once.
"""

from __future__ import annotations

import asyncio
import os
import resource
from http import HTTPStatus
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI

from tokenledger.observability.logs import logging_config
from tokenledger.observability.metrics import multiprocess_directory
from tokenledger.settings import Settings
from tokenledger.web import proxy
from tokenledger.web.proxy import Networks

# Descriptors the process needs beside its connections: database pool, log, listener.
_SPARE_DESCRIPTORS = 64


class HeaderDeadline(asyncio.Protocol):
    """Mixin for uvicorn's HTTP protocols: a connection waiting for a request (just
    opened, or done with the previous one) must deliver the whole request head within
    ``header_timeout_s``, or it gets a 408 and is closed."""

    header_timeout_s: float = 10.0
    # Set by uvicorn's protocols; ``cycle`` is the current request, created once its
    # head is parsed.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    _deadline: asyncio.TimerHandle | None = None
    _waiting_after: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and self.cycle is not self._waiting_after:
            self._disarm()  # a new request's head is complete

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request
        if idle and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        message = f"request headers not received within {self.header_timeout_s:g} s"
        _refuse(self.transport, 408, "header_timeout", message)


class ClientConnectionCap(asyncio.Protocol):
    """Mixin for uvicorn's HTTP protocols: at most ``max_per_client`` connections open
    at once from one client address; the next one is answered 429 and closed at once.
    Trusted proxies are not capped (their connections carry many clients).

    The count is per process (each worker keeps its own)."""

    max_per_client: int = 100
    trusted: Networks = ()
    open_by_client: dict[str, int]  # one dict per protocol class, shared by its connections
    transport: asyncio.Transport
    _counted: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not address or proxy.is_trusted(address, self.trusted):
            return
        if self.open_by_client.get(address, 0) >= self.max_per_client:
            _refuse(self.transport, 429, "too_many_connections", self._too_many())
            return
        self.open_by_client[address] = self.open_by_client.get(address, 0) + 1
        self._counted = address

    def connection_lost(self, exc: Exception | None) -> None:
        address, self._counted = self._counted, None
        if address is not None:
            left = self.open_by_client[address] - 1
            if left:
                self.open_by_client[address] = left
            else:
                del self.open_by_client[address]
        super().connection_lost(exc)

    def _too_many(self) -> str:
        return (
            f"more than {self.max_per_client} connections at once from this address; "
            "close some, or reuse them (keep-alive)"
        )


def _refuse(transport: asyncio.Transport, status: int, code: str, message: str) -> None:
    """Answer ``status`` before any request was read, and close the connection."""
    if transport.is_closing():
        return
    body = orjson.dumps({"error": {"code": code, "message": message}})
    reason = HTTPStatus(status).phrase.encode()
    transport.write(
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (status, reason, len(body), body)
    )
    transport.close()


def http_protocol(
    header_timeout_s: float, *, max_per_client: int = 100, trusted: Networks = ()
) -> type[asyncio.Protocol]:
    """uvicorn's own HTTP protocol (httptools, else h11) with a header deadline and a
    cap on each client address's connections."""
    base: type[asyncio.Protocol]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools is part of uvicorn[standard]; h11 is the fallback
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    return type(
        f"Guarded{base.__name__}",
        (HeaderDeadline, ClientConnectionCap, base),
        {
            "header_timeout_s": header_timeout_s,
            "max_per_client": max_per_client,
            "trusted": trusted,
            "open_by_client": {},
        },
    )


def protocol_for(settings: Settings) -> type[asyncio.Protocol]:
    return http_protocol(
        settings.header_timeout_s,
        max_per_client=settings.max_connections_per_client,
        trusted=settings.trusted_proxy_networks,
    )


def raise_open_file_limit(connections: int) -> int:
    """Raise the soft limit on open files so ``connections`` can be open at once (up to
    the hard limit); return the limit in force. A common default of 1024 would make
    the server stop accepting connections below ``max_connections``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + _SPARE_DESCRIPTORS
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def serve(app: FastAPI, settings: Settings, *, host: str, port: int) -> None:
    """Serve ``app`` until stopped, with the limits from ``settings``.

    With ``settings.workers`` > 1, uvicorn starts that many processes; each builds its
    own app and protocol from the environment (``app_from_environment`` and this
    module's ``WorkerProtocol``), so the settings are handed over through it, and
    their metrics through a directory of this run (see ``observability.metrics``).
    Logs are JSON lines; the request lines are TokenLedger's, not uvicorn's.
    """
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": logging_config(settings.log_level),
        "log_level": settings.log_level,
        "access_log": False,
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_connections,
        "timeout_graceful_shutdown": 10,
        "proxy_headers": False,
        "server_header": False,  # no "server: uvicorn": nothing to fingerprint
    }
    if settings.workers > 1:
        os.environ["TOKENLEDGER_DATABASE_URL"] = settings.database_url
        os.environ["TOKENLEDGER_HEADER_TIMEOUT_S"] = str(settings.header_timeout_s)
        os.environ["TOKENLEDGER_MAX_CONNECTIONS_PER_CLIENT"] = str(
            settings.max_connections_per_client
        )
        with multiprocess_directory():
            uvicorn.run(
                "tokenledger.web.app:app_from_environment",
                factory=True,
                workers=settings.workers,
                http="tokenledger.web.server:WorkerProtocol",
                **options,
            )
    else:
        uvicorn.run(app, http=protocol_for(settings), **options)


def __getattr__(name: str) -> Any:
    """``WorkerProtocol``: the HTTP protocol of worker processes, which import it by
    name; built on first use from the settings in the environment."""
    if name == "WorkerProtocol":
        protocol = protocol_for(Settings())
        globals()[name] = protocol
        return protocol
    raise AttributeError(name)
