"""Ingest: from request bytes (or file lines) to stored events and per-item outcomes.

Used by the HTTP API, ``tokenledger import`` and ``tokenledger demo``, so every path
applies the same validation and the same write path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tokenledger.events import Event, Rejection, escape_surrogates, validate_event
from tokenledger.store.group_commit import GroupCommit
from tokenledger.store.port import UsagePort
from tokenledger.store.writes import BatchResult


class EnvelopeError(ValueError):
    """The request body is not ``{"events": [...]}``."""

    status = 400  # the HTTP status that answers it

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TooManyEvents(EnvelopeError):
    """A well-formed body with more events than one request may carry."""

    status = 413


# Python refuses to read an integer of more digits (sys.get_int_max_str_digits()).
_MAX_DIGITS = 4300


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
    except EnvelopeError:
        raise
    except RecursionError as exc:
        raise EnvelopeError("invalid_json", "JSON nests too deeply") from exc
    except json.JSONDecodeError as exc:
        raise EnvelopeError(
            "invalid_json",
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from exc
    except ValueError as exc:  # Python's limit on the digits of an integer
        raise EnvelopeError(
            "invalid_json", f"body holds a number with too many digits (at most {_MAX_DIGITS})"
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
    """Each raw event validated; a :class:`Rejection` (an item that a capture mapping
    could not turn into an event) is kept as it is."""
    return [
        raw
        if isinstance(raw, Rejection)
        else validate_event(raw, now_us=now_us, future_tolerance_s=future_tolerance_s)
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


def _rejection_json(rejection: Rejection) -> dict[str, Any]:
    item: dict[str, Any] = {
        "code": rejection.code,
        "field": escape_surrogates(rejection.field),
        "message": escape_surrogates(rejection.message),
    }
    if len(rejection.errors) > 1:
        item["errors"] = [
            {
                "code": error.code,
                "field": escape_surrogates(error.field),
                "message": escape_surrogates(error.message),
            }
            for error in rejection.errors
        ]
    return item


def _echoed_id(raw: Any, item: Event | Rejection) -> str | None:
    if isinstance(item, Event):
        return item.event_id
    if isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
        return escape_surrogates(raw["event_id"])
    return None


@dataclass(frozen=True)
class Answer:
    """The ingest response, drafted from the validated batch *before* the commit:
    everything it echoes from the input is in it already, encoded once to be sure.
    After the commit only the statuses are filled in, which cannot fail, so an
    answer never goes missing for a batch that was stored."""

    entries: list[dict[str, Any]]

    @classmethod
    def draft(cls, items: Sequence[Event | Rejection], raw_events: Sequence[Any]) -> Answer:
        entries: list[dict[str, Any]] = []
        for index, (item, raw) in enumerate(zip(items, raw_events, strict=True)):
            rejected = isinstance(item, Rejection)
            entry: dict[str, Any] = {"index": index, "status": "rejected" if rejected else None}
            event_id = _echoed_id(raw, item)
            if event_id is not None:
                entry["event_id"] = event_id
            if isinstance(item, Rejection):
                entry.update(_rejection_json(item))
            entries.append(entry)
        orjson.dumps(entries)  # raises here, before anything is stored
        return cls(entries)

    def complete(self, result: BatchResult) -> dict[str, Any]:
        """The response body: counts and one entry per input index."""
        results = []
        for entry, outcome in zip(self.entries, result.outcomes, strict=True):
            item = {**entry, "status": outcome.status}
            if outcome.rejection is not None and "code" not in entry:  # a conflict
                item.update(_rejection_json(outcome.rejection))
            results.append(item)
        return {
            "accepted": result.count("accepted"),
            "duplicates": result.count("duplicate"),
            "rejected": result.count("rejected"),
            "results": results,
        }


def ingest_answered(
    writes: GroupCommit, raw_events: Sequence[Any], *, now_us: int, future_tolerance_s: int
) -> dict[str, Any]:
    """Validate, draft the answer, store, and complete the answer (the API's path)."""
    items = validate_all(raw_events, now_us=now_us, future_tolerance_s=future_tolerance_s)
    answer = Answer.draft(items, raw_events)
    return answer.complete(writes.store_batch(items, now_us=now_us))
