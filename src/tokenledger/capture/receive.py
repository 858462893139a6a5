"""Captured usage stored through the ingest path of ``POST /api/v1/events``: the same
validation, idempotency by ``event_id`` and group commit, and the answer only after
the commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenledger.capture import otlp
from tokenledger.capture.contract import Mapped, to_contract
from tokenledger.capture.otlp_wire import Span, decode
from tokenledger.ingest import ingest, ingest_answered
from tokenledger.store.group_commit import GroupCommit
from tokenledger.store.port import UsagePort
from tokenledger.store.writes import BatchResult

MAX_PROBLEMS = 5


def store_mapped(
    store: UsagePort | GroupCommit,
    mapped: Sequence[Mapped],
    *,
    now_us: int,
    future_tolerance_s: int,
) -> BatchResult:
    """Store mapped events (without the fields the contract does not take yet)."""
    return ingest(store, _contract(mapped), now_us=now_us, future_tolerance_s=future_tolerance_s)


def answer_mapped(
    writes: GroupCommit, mapped: Sequence[Mapped], *, now_us: int, future_tolerance_s: int
) -> dict[str, Any]:
    """:func:`store_mapped` answered as ``POST /api/v1/events`` is: the answer drafted
    (and checked to encode) before the commit, completed after it."""
    return ingest_answered(
        writes, _contract(mapped), now_us=now_us, future_tolerance_s=future_tolerance_s
    )


def _contract(mapped: Sequence[Mapped]) -> list[Any]:
    return [to_contract(item) if isinstance(item, dict) else item for item in mapped]


@dataclass(frozen=True)
class TraceOutcome:
    """What became of the spans of one export."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_usage: int = 0
    aggregate: int = 0
    problems: tuple[str, ...] = ()

    def message(self) -> str:
        """The answer's ``partial_success.error_message`` (empty: nothing to say)."""
        parts = []
        if self.rejected:
            parts.append(f"{self.rejected} spans with usage rejected: " + "; ".join(self.problems))
        if self.not_usage:
            parts.append(f"{self.not_usage} spans without GenAI usage ignored")
        if self.aggregate:
            parts.append(
                f"{self.aggregate} agent, workflow or tool spans ignored "
                "(the model calls under them are counted)"
            )
        return "; ".join(parts)


def receive_spans(
    store: UsagePort | GroupCommit,
    spans: Sequence[Span],
    *,
    now_us: int,
    future_tolerance_s: int,
    user_attributes: Sequence[str],
) -> TraceOutcome:
    usage: list[Span] = []
    skipped = {"no_usage": 0, "aggregate": 0}
    for span in spans:
        kind = otlp.kind(span)
        if kind == "usage":
            usage.append(span)
        else:
            skipped[kind] += 1
    if not usage:
        return TraceOutcome(not_usage=skipped["no_usage"], aggregate=skipped["aggregate"])
    mapped = [otlp.span_event(span, user_attributes=user_attributes) for span in usage]
    result = store_mapped(store, mapped, now_us=now_us, future_tolerance_s=future_tolerance_s)
    problems = [
        f"span {span.span_id.hex() or '(no id)'}: {outcome.rejection.message}"
        for span, outcome in zip(usage, result.outcomes, strict=True)
        if outcome.rejection is not None
    ]
    return TraceOutcome(
        accepted=result.count("accepted"),
        duplicates=result.count("duplicate"),
        rejected=result.count("rejected"),
        not_usage=skipped["no_usage"],
        aggregate=skipped["aggregate"],
        problems=tuple(problems[:MAX_PROBLEMS]),
    )


def receive_export(
    store: UsagePort | GroupCommit,
    body: bytes,
    media_type: str,
    *,
    now_us: int,
    future_tolerance_s: int,
    user_attributes: Sequence[str],
) -> TraceOutcome:
    """Decode an OTLP trace export (OtlpError when it is not one) and store its usage."""
    return receive_spans(
        store,
        decode(body, media_type),
        now_us=now_us,
        future_tolerance_s=future_tolerance_s,
        user_attributes=user_attributes,
    )
