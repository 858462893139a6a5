"""The ledger's event for a call, stored through the ingest path (validation,
idempotency by ``event_id``, group commit).

An event is recorded for every call that was forwarded, failed or not. Its status is
``error`` when the upstream refused or failed, the stream was cut, or the client left
before the end. When the upstream may have used tokens that it never reported (the
final usage did not arrive: a stream cut, a client gone, a timeout, an answer without
usage), the event's metadata says ``"usage_missing": true`` and its counts are what
was reported until then (often 0): never a silent 0.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from tokenledger.capture import receive
from tokenledger.capture.contract import rfc3339_from_us
from tokenledger.capture.tokens import Tokens
from tokenledger.clock import Clock, now_us
from tokenledger.events import USAGE_MISSING
from tokenledger.gateway.calls import Call, Outcome
from tokenledger.gateway.meters import Meter
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.store.group_commit import GroupCommit

log = logging.getLogger("tokenledger.gateway")


def usage_missing(call_outcome: Outcome, meter: Meter) -> bool:
    """Whether the upstream may have used tokens it did not report."""
    return call_outcome.sent and not call_outcome.upstream_failed and not meter.complete


def failure(outcome: Outcome, meter: Meter) -> str | None:
    """Why the call failed, or None."""
    if outcome.error is not None:
        return outcome.error
    if outcome.upstream_failed:
        return "upstream_status"
    if meter.failure is not None:
        return meter.failure
    if outcome.client_gone and not meter.complete:
        return "client_disconnected"
    return None


def gateway_event(
    call: Call, outcome: Outcome, meter: Meter, *, duration_ms: int
) -> dict[str, Any]:
    """The event ``POST /api/v1/events`` would take for this call."""
    error = failure(outcome, meter)
    metadata: dict[str, Any] = {
        "gateway": call.endpoint.name,
        "upstream": call.upstream.name,
        "stream": call.stream,
        "key_id": call.caller.key.id,
    }
    if outcome.upstream_status is not None:
        metadata["upstream_status"] = outcome.upstream_status
    if error is not None:
        metadata["error"] = error
    if usage_missing(outcome, meter):
        metadata[USAGE_MISSING] = True
    if meter.problem is not None:
        metadata["usage_problem"] = meter.problem[:500]
    model = meter.model or call.requested_model
    if call.requested_model and model != call.requested_model:
        metadata["requested_model"] = call.requested_model[:255]
    return {
        "event_id": call.event_id,
        "user": {"id": call.caller.user_id},
        "started_at": rfc3339_from_us(call.started_us),
        "duration_ms": duration_ms,
        "model": model[:255] if model else None,
        "provider": call.upstream.provider,
        **(meter.tokens or Tokens(0, 0)).event_fields(),
        "status": "error" if error else "ok",
        "metadata": metadata,
    }


class Recorder:
    """Stores gateway events (from a worker thread: the commit waits for the disk)."""

    def __init__(self, writes: GroupCommit, *, clock: Clock, future_tolerance_s: int) -> None:
        self._writes = writes
        self._clock = clock
        self._future_tolerance_s = future_tolerance_s

    def store(self, event: dict[str, Any]) -> None:
        """Store ``event``; a failure is logged with the event, which an admin can load
        with ``tokenledger import`` (the upstream key is never part of it)."""
        try:
            result = receive.store_mapped(
                self._writes,
                [event],
                now_us=now_us(self._clock),
                future_tolerance_s=self._future_tolerance_s,
            )
        except DatabaseUnavailable as exc:
            self._lost(event, str(exc))
            return
        rejection = result.outcomes[0].rejection
        if rejection is not None:
            self._lost(event, rejection.message)

    def _lost(self, event: dict[str, Any], reason: str) -> None:
        log.error(
            "gateway event not recorded (%s): %s",
            reason,
            orjson.dumps(event).decode(),
            extra={"event_id": event["event_id"]},
        )
