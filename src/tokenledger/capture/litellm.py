"""LiteLLM's ``generic_api`` logging callback: its batches as usage events.

LiteLLM posts its ``StandardLoggingPayload`` (one per request) with ``Content-Type:
application/json`` in one of three ``log_format``s: ``json_array`` (a JSON array, the
default), ``ndjson`` (one object per line) and ``single`` (one object per request).

- Event id: ``litellm:<litellm_call_id>``, the same in every retry of a batch (the
  payload's ``id`` is the provider's response id, which gains a suffix on a cache hit).
- Person: ``metadata.user_api_key_user_id`` (with ``user_api_key_user_email``), else
  ``end_user``; without either, the key (``litellm-key:<alias>``).
- Tokens: ``metadata.usage_object`` (the response's usage; LiteLLM's own OpenAI-shaped
  object for most calls, a provider's object for some pass-through calls), read with
  :func:`tokenledger.capture.tokens.from_usage`; else the payload's ``prompt_tokens`` /
  ``completion_tokens``.
- ``startTime`` / ``endTime``: epoch seconds as floats. ``status: failure``: an error.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from tokenledger.capture.contract import Mapped, rejection, rfc3339_from_us
from tokenledger.capture.tokens import Tokens, UsageError, from_usage, openai_chat
from tokenledger.ingest import EnvelopeError, TooManyEvents

NANO = Decimal("0.000000001")
_YEAR_10000_S = 253_402_300_800


def parse_records(body: bytes, *, max_records: int) -> list[Any]:
    """The logs of one post, whatever its ``log_format`` (EnvelopeError when none)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvelopeError("invalid_utf8", f"body is not valid UTF-8 (byte {exc.start})") from exc
    if not text.strip():
        raise EnvelopeError("empty_body", "body is empty; expected LiteLLM logs")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as whole:
        document = _ndjson(text, whole)
    except RecursionError as exc:
        raise EnvelopeError("invalid_json", "JSON nests too deeply") from exc
    records = document if isinstance(document, list) else [document]
    if not records:
        raise EnvelopeError("invalid_envelope", "the array of logs is empty")
    if len(records) > max_records:
        message = f"{len(records)} logs in one request; at most {max_records}"
        raise TooManyEvents("too_many_events", message)
    return records


def _ndjson(text: str, whole: json.JSONDecodeError) -> list[Any]:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise _invalid(whole)
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise EnvelopeError(
                "invalid_json", f"line {number} is not valid JSON (ndjson): {exc}"
            ) from exc
    return records


def _invalid(exc: json.JSONDecodeError) -> EnvelopeError:
    return EnvelopeError(
        "invalid_json",
        f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
    )


def _epoch_us(value: Any) -> int | None:
    """Epoch seconds (a float) in microseconds, exact to what was written."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 < value < _YEAR_10000_S:
        return None
    return int((Decimal(str(value)) * 1_000_000).to_integral_value())


def cost_usd(value: Any) -> str | None:
    """``response_cost`` as a decimal string rounded to the nano-dollar (LiteLLM's
    float ``0.00022500000000000002`` is ``"0.000225"``); ``None`` when there is none."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value)).quantize(NANO)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return format(amount.normalize(), "f")


def _text(value: Any) -> str | None:
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def person(record: dict[str, Any], metadata: dict[str, Any]) -> dict[str, str]:
    user_id = _text(metadata.get("user_api_key_user_id"))
    if user_id is not None:
        user = {"id": user_id}
        email = _text(metadata.get("user_api_key_user_email"))
        if email:
            user["email"] = email
        return user
    end_user = _text(record.get("end_user"))
    if end_user is not None:
        return {"id": end_user}
    key = (
        _text(metadata.get("user_api_key_alias"))
        or (_text(metadata.get("user_api_key_hash")) or "unknown")[:16]
    )
    return {"id": f"litellm-key:{key}"}


def tokens(record: dict[str, Any], metadata: dict[str, Any]) -> Tokens:
    usage = metadata.get("usage_object")
    if isinstance(usage, dict) and usage:
        return from_usage(usage)
    return openai_chat(record)


def record_event(record: Any) -> Mapped:
    """The usage event of one ``StandardLoggingPayload``."""
    if not isinstance(record, dict):
        return rejection("", "a LiteLLM log must be a JSON object", code="invalid_type")
    call_id = _text(record.get("litellm_call_id")) or _text(record.get("id"))
    if call_id is None:
        return rejection("litellm_call_id", "is required", code="missing")
    metadata = record.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    start_us, end_us = _epoch_us(record.get("startTime")), _epoch_us(record.get("endTime"))
    if start_us is None:
        return rejection("startTime", "must be epoch seconds (a number)")
    try:
        counts = tokens(record, metadata)
    except UsageError as exc:
        return rejection(exc.field, exc.message)
    event: dict[str, Any] = {
        "event_id": f"litellm:{call_id}",
        "user": person(record, metadata),
        "started_at": rfc3339_from_us(start_us),
        "duration_ms": max(0, (end_us or start_us) - start_us + 500) // 1000,
        **counts.event_fields(),
        "status": "error" if record.get("status") == "failure" else "ok",
        "metadata": _metadata(record),
    }
    for field, value in (
        ("model", _text(record.get("model"))),
        ("provider", _text(record.get("custom_llm_provider"))),
        ("cost_usd", cost_usd(record.get("response_cost"))),
    ):
        if value is not None:
            event[field] = value
    team = _text(metadata.get("user_api_key_team_alias")) or _text(
        metadata.get("user_api_key_team_id")
    )
    if team is not None:
        event["user"]["team"] = team
    return event


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"source": "litellm"}
    call_type = _text(record.get("call_type"))
    if call_type:
        kept["call_type"] = call_type
    if record.get("cache_hit") is True:
        kept["cache_hit"] = True
    return kept
