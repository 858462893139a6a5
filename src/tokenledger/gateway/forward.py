"""The connection to the upstreams: one pooled HTTP client per process, the request
as the upstream gets it and the headers of its answer that are passed on.

What goes upstream is the client's body (plus ``stream_options.include_usage`` when
the gateway needs a stream's usage) with the upstream's own key; the client's
TokenLedger key, cookies and other headers never leave the server.
"""

from __future__ import annotations

import asyncio
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx2

from tokenledger import __version__
from tokenledger.gateway.calls import Call

ANTHROPIC_VERSION = "2023-06-01"
_PASSED_UP = ("accept", "anthropic-version", "anthropic-beta", "openai-beta")
# Answer headers a client uses (retry advice, the provider's request id for support).
_PASSED_DOWN = (
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "openai-processing-ms",
    "request-id",
)
_RENAMED_DOWN = {"x-request-id": "x-upstream-request-id"}  # ours is X-Request-ID
_USER_AGENT = f"TokenLedger-Gateway/{__version__}"


class UpstreamClient:
    """The process's pooled HTTP client (made in the running event loop on first use)."""

    def __init__(self, *, timeout_s: float, connections: int) -> None:
        self._timeout = httpx2.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._limits = httpx2.Limits(
            max_connections=connections, max_keepalive_connections=connections
        )
        self._client: httpx2.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx2.AsyncClient(
                timeout=self._timeout,
                limits=self._limits,
                follow_redirects=False,
                # One client serves every person: an upstream's cookie must not be kept
                # and sent along with someone else's request.
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def upstream_request(client: httpx2.AsyncClient, call: Call) -> httpx2.Request:
    upstream, endpoint = call.upstream, call.endpoint
    headers = {name: call.headers[name] for name in _PASSED_UP if name in call.headers}
    headers["user-agent"] = _USER_AGENT
    if call.stream:  # compression would hold events back until a block is full
        headers["accept-encoding"] = "identity"
    if endpoint.method == "POST":
        headers["content-type"] = "application/json"
    if upstream.kind == "anthropic":
        headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
        if upstream.key:
            headers["x-api-key"] = upstream.key
    elif upstream.key:
        headers["authorization"] = f"Bearer {upstream.key}"
    url = upstream.base_url + endpoint.upstream_path + (f"?{call.query}" if call.query else "")
    content = call.body if endpoint.method == "POST" else None
    return client.build_request(endpoint.method, url, headers=headers, content=content)


def answer_headers(response: httpx2.Response) -> list[tuple[bytes, bytes]]:
    """The upstream answer's headers that the client gets."""
    passed = []
    for name, value in response.headers.items():
        lower = name.lower()
        if lower in _PASSED_DOWN:
            passed.append((lower.encode(), value.encode("latin-1")))
        elif lower in _RENAMED_DOWN:
            passed.append((_RENAMED_DOWN[lower].encode(), value.encode("latin-1")))
    return passed


def is_event_stream(response: httpx2.Response) -> bool:
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "text/event-stream"
