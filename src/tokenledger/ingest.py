"""Ingest: from request bytes (or file lines) to stored events and per-item outcomes.

Used by the HTTP API, ``tokenledger import`` and ``tokenledger demo``, so every path
applies the same validation and the same write path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenledger.events import Event, Rejection, validate_event
from tokenledger.store.group_commit import GroupCommit
from tokenledger.store.port import UsagePort
from tokenledger.store.writes import BatchResult, Outcome


class EnvelopeError(ValueError):
    """The request body is not ``{"events": [...]}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TooManyEvents(EnvelopeError):
    """A well-formed body with more events than one request may carry."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EnvelopeError("duplicate_key", f"JSON object has the key {key!r} twice")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise EnvelopeError("invalid_json", f"{name} is not valid JSON")


def loads_strict(body: bytes) -> Any:
    """Decode JSON, refusing invalid UTF-8, duplicate keys, NaN and Infinity."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvelopeError("invalid_utf8", f"body is not valid UTF-8 (byte {exc.start})") from exc
    if not text.strip():
        raise EnvelopeError("empty_body", 'body is empty; expected {"events": [...]}')
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except RecursionError as exc:
        raise EnvelopeError("invalid_json", "JSON nests too deeply") from exc
    except json.JSONDecodeError as exc:
        raise EnvelopeError(
            "invalid_json",
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from exc


def parse_envelope(body: bytes, *, max_events: int) -> list[Any]:
    """The list of raw events in a request body, or EnvelopeError."""
    document = loads_strict(body)
    if not isinstance(document, dict):
        raise EnvelopeError("invalid_envelope", 'body must be a JSON object {"events": [...]}')
    unknown = sorted(set(document) - {"events"})
    if unknown:
        raise EnvelopeError(
            "invalid_envelope", f"unknown top-level field {unknown[0]!r}; only 'events' is allowed"
        )
    raw_events = document.get("events")
    if not isinstance(raw_events, list):
        raise EnvelopeError("invalid_envelope", "'events' must be a list of event objects")
    if not raw_events:
        raise EnvelopeError("invalid_envelope", "'events' is empty")
    if len(raw_events) > max_events:
        raise TooManyEvents(
            "too_many_events", f"{len(raw_events)} events in one request; at most {max_events}"
        )
    return raw_events


def validate_all(
    raw_events: Sequence[Any], *, now_us: int, future_tolerance_s: int
) -> list[Event | Rejection]:
    return [
        validate_event(raw, now_us=now_us, future_tolerance_s=future_tolerance_s)
        for raw in raw_events
    ]


def ingest(
    store: UsagePort | GroupCommit,
    raw_events: Sequence[Any],
    *,
    now_us: int,
    future_tolerance_s: int = 300,
) -> BatchResult:
    """Validate and store ``raw_events``; returns after the commit (alone, or with the
    other batches waiting when ``store`` is a :class:`GroupCommit`)."""
    items = validate_all(raw_events, now_us=now_us, future_tolerance_s=future_tolerance_s)
    return store.store_batch(items, now_us=now_us)


@dataclass(frozen=True)
class Tally:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0

    def plus(self, result: BatchResult) -> Tally:
        return Tally(
            self.accepted + result.count("accepted"),
            self.duplicate + result.count("duplicate"),
            self.rejected + result.count("rejected"),
        )


def outcome_json(index: int, outcome: Outcome, raw: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"index": index, "status": outcome.status}
    event_id = outcome.event_id
    if event_id is None and isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
        event_id = raw["event_id"]
    if event_id is not None:
        item["event_id"] = event_id
    if outcome.rejection is not None:
        rejection = outcome.rejection
        item.update(code=rejection.code, field=rejection.field, message=rejection.message)
        if len(rejection.errors) > 1:
            item["errors"] = [
                {"code": error.code, "field": error.field, "message": error.message}
                for error in rejection.errors
            ]
    return item


def result_json(result: BatchResult, raw_events: Sequence[Any]) -> dict[str, Any]:
    """The ingest response: counts and one entry per input index."""
    return {
        "accepted": result.count("accepted"),
        "duplicates": result.count("duplicate"),
        "rejected": result.count("rejected"),
        "results": [
            outcome_json(index, outcome, raw)
            for index, (outcome, raw) in enumerate(zip(result.outcomes, raw_events, strict=True))
        ],
    }
