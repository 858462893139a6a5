"""One request through the gateway: what was asked, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenledger.gateway.callers import Caller
from tokenledger.gateway.endpoints import Endpoint
from tokenledger.gateway.upstreams import Upstream


@dataclass(frozen=True)
class Call:
    """A request the gateway accepted and forwards."""

    endpoint: Endpoint
    upstream: Upstream
    caller: Caller
    body: bytes  # as forwarded
    headers: dict[str, str]  # the client's
    query: str
    stream: bool  # the client asked for a stream
    requested_model: str | None
    event_id: str
    started_us: int  # wall clock, for the event
    started_s: float  # monotonic, for its duration
    # Usage was asked of the upstream for the ledger only: its chunk is not passed on.
    drop_usage_chunk: bool = False


@dataclass
class Outcome:
    """What happened to a call, filled in as it goes."""

    sent: bool = False  # the request reached the upstream: usage may exist
    upstream_status: int | None = None
    error: str | None = None  # why the call failed (machine-readable), if it did
    client_gone: bool = False  # the client disconnected before the answer ended
    answered: bool = False  # the client's answer has started
    done: bool = False  # the answer is over (a disconnect after it is no loss)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def upstream_failed(self) -> bool:
        return self.upstream_status is not None and not 200 <= self.upstream_status < 300
