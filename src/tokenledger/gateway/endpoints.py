"""The routes of the gateway and what each means upstream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tokenledger.gateway.meters import MessagesMeter, Meter, ResponsesMeter
from tokenledger.gateway.upstreams import Kind


@dataclass(frozen=True)
class Endpoint:
    kind: Kind
    route: str  # the gateway's path
    upstream_path: str  # appended to the upstream's base URL
    name: str  # as events' metadata names it
    meter: Callable[[], Meter] = Meter
    method: str = "POST"
    # Chat Completions and Completions report a stream's usage only when asked to.
    asks_stream_usage: bool = False
    # Listing models uses no tokens: it is forwarded, not recorded.
    metered: bool = True


OPENAI = "/gateway/openai/v1"
ANTHROPIC = "/gateway/anthropic/v1"
ENDPOINTS = (
    Endpoint(
        "openai", f"{OPENAI}/chat/completions", "/chat/completions", "chat.completions",
        asks_stream_usage=True,
    ),
    Endpoint(
        "openai", f"{OPENAI}/completions", "/completions", "completions", asks_stream_usage=True
    ),
    Endpoint("openai", f"{OPENAI}/embeddings", "/embeddings", "embeddings"),
    Endpoint("openai", f"{OPENAI}/responses", "/responses", "responses", meter=ResponsesMeter),
    Endpoint("openai", f"{OPENAI}/models", "/models", "models", method="GET", metered=False),
    Endpoint("anthropic", f"{ANTHROPIC}/messages", "/v1/messages", "messages", meter=MessagesMeter),
)  # fmt: skip
