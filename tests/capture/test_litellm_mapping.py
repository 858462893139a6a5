"""LiteLLM StandardLoggingPayload logs as events; Anthropic and Gemini through the usage
objects LiteLLM's own transformations produce from the providers' documented usage."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from tests.capture.test_tokens import ANTHROPIC_CACHE_WRITE, GEMINI_THINKING
from tokenledger.capture.contract import PENDING_FIELDS, to_contract
from tokenledger.capture.litellm import cost_usd, parse_records, record_event
from tokenledger.events import Rejection
from tokenledger.ingest import EnvelopeError


def log(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "chatcmpl-9",
        "litellm_call_id": "0f6f1617-dfe8-4f5f-b9bc-c5608dcee393",
        "call_type": "acompletion",
        "status": "success",
        "model": "gpt-4o",
        "custom_llm_provider": "openai",
        "startTime": 1795600000.123456,
        "endTime": 1795600002.263857,
        "prompt_tokens": 1830,
        "completion_tokens": 412,
        "response_cost": 0.00022500000000000002,
        "end_user": None,
        "metadata": {
            "user_api_key_user_id": "emp-1",
            "user_api_key_user_email": "li.wei@example.com",
            "user_api_key_team_id": "team-7",
            "user_api_key_team_alias": "Research",
            "usage_object": {
                "prompt_tokens": 1830,
                "completion_tokens": 412,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 128},
            },
        },
    }
    record.update(overrides)
    return record


def test_a_log_as_an_event_with_its_cost_and_team_kept_for_later() -> None:
    event = record_event(log())
    assert event == {
        "event_id": "litellm:0f6f1617-dfe8-4f5f-b9bc-c5608dcee393",
        "user": {"id": "emp-1", "email": "li.wei@example.com", "team": "Research"},
        "started_at": "2026-11-25T09:46:40.123456+00:00",
        "duration_ms": 2140,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1830,
        "output_tokens": 412,
        "cache_read_tokens": 1024,
        "reasoning_tokens": 128,
        "cost_usd": "0.000225",
        "status": "ok",
        "metadata": {"source": "litellm", "call_type": "acompletion"},
    }
    # The contract takes the cost (issue 13) and the team (issue 14).
    assert frozenset() == PENDING_FIELDS
    stored = to_contract(event)
    assert stored["cost_usd"] == "0.000225"
    assert stored["user"] == {"id": "emp-1", "email": "li.wei@example.com", "team": "Research"}
    assert {k: v for k, v in event.items() if k != "user"} == {
        k: v for k, v in stored.items() if k != "user"
    }


def test_the_team_falls_back_to_its_id() -> None:
    metadata = {**log()["metadata"], "user_api_key_team_alias": None}
    event = record_event(log(metadata=metadata))
    assert isinstance(event, dict)
    assert event["user"]["team"] == "team-7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.00022500000000000002, "0.000225"), (0, "0"), (1.5e-10, "0"), (12, "12"), (None, None)],
)
def test_response_cost_is_an_exact_decimal(value: Any, expected: str | None) -> None:
    assert cost_usd(value) == expected


@pytest.mark.parametrize("value", [float("nan"), -1.0, "abc", True])
def test_no_cost_rather_than_a_wrong_one(value: Any) -> None:
    assert cost_usd(value) is None


def test_the_person_falls_back_to_end_user_then_the_key() -> None:
    metadata = {"user_api_key_alias": "batch-jobs"}
    assert record_event(log(metadata=metadata, end_user="cust-42"))["user"] == {  # type: ignore[index]
        "id": "cust-42"
    }
    assert record_event(log(metadata=metadata))["user"] == {"id": "litellm-key:batch-jobs"}  # type: ignore[index]
    assert record_event(log(metadata={}))["user"] == {"id": "litellm-key:unknown"}  # type: ignore[index]


def test_a_failure_is_an_error_event_and_without_usage_counts_zero_tokens() -> None:
    event = record_event(
        log(status="failure", prompt_tokens=0, completion_tokens=0, metadata={"usage_object": {}})
    )
    assert isinstance(event, dict)
    assert (event["status"], event["input_tokens"], event["output_tokens"]) == ("error", 0, 0)


def test_the_call_id_is_the_event_id_even_on_a_cache_hit() -> None:
    event = record_event(log(id="chatcmpl-9_cache_hit1795600003.2", cache_hit=True))
    assert isinstance(event, dict)
    assert event["event_id"] == "litellm:0f6f1617-dfe8-4f5f-b9bc-c5608dcee393"
    assert event["metadata"]["cache_hit"] is True


def _litellm_usage(provider: str, usage: dict[str, Any]) -> dict[str, Any]:
    """The usage_object LiteLLM logs for a provider's response (its own transformation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from litellm.llms.anthropic.chat.transformation import AnthropicConfig
        from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import (
            VertexGeminiConfig,
        )
    if provider == "anthropic":
        result = AnthropicConfig().calculate_usage(usage, reasoning_content=None)
    else:
        result = VertexGeminiConfig.calculate_usage({"usageMetadata": usage})  # type: ignore[typeddict-item]
    dumped: dict[str, Any] = result.model_dump()
    return dumped


PARTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@pytest.mark.parametrize(
    ("provider", "usage", "as_logged", "expected"),
    [
        # LiteLLM's transformation already summed the cache into prompt_tokens.
        ("anthropic", ANTHROPIC_CACHE_WRITE, "litellm", (188107, 393, 0, 188086, 0)),
        # A pass-through call logs Anthropic's own object: ours sums it.
        ("anthropic", ANTHROPIC_CACHE_WRITE, "provider", (188107, 393, 0, 188086, None)),
        ("gemini", GEMINI_THINKING, "litellm", (2210, 1453, 2048, None, 1152)),
        ("gemini", GEMINI_THINKING, "provider", (2210, 1453, 2048, None, 1152)),
    ],
)
def test_anthropic_and_gemini_through_litellm(
    provider: str, usage: dict[str, Any], as_logged: str, expected: tuple[Any, ...]
) -> None:
    usage_object = _litellm_usage(provider, usage) if as_logged == "litellm" else usage
    event = record_event(log(custom_llm_provider=provider, metadata={"usage_object": usage_object}))
    assert isinstance(event, dict)
    assert tuple(event.get(name) for name in (*PARTS, "reasoning_tokens")) == expected


@pytest.mark.parametrize(
    ("body", "count"),
    [
        (b'[{"a": 1}, {"a": 2}]', 2),  # json_array
        (b'{"a": 1}\n{"a": 2}\n', 2),  # ndjson
        (b'{"a": 1}', 1),  # single
        (b'{\n  "a": 1\n}', 1),  # single, pretty-printed
    ],
)
def test_every_log_format(body: bytes, count: int) -> None:
    assert len(parse_records(body, max_records=10)) == count


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (b"", "empty_body", 400),
        (b"[]", "invalid_envelope", 400),
        (b"{oops", "invalid_json", 400),
        (b'{"a": 1}\n{oops', "invalid_json", 400),
        (b"\xff", "invalid_utf8", 400),
        (b"[" + b",".join([b"{}"] * 11) + b"]", "too_many_events", 413),
    ],
)
def test_bad_bodies(body: bytes, code: str, status: int) -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_records(body, max_records=10)
    assert (caught.value.code, caught.value.status) == (code, status)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ("text", ""),
        ({"startTime": 1.0}, "litellm_call_id"),
        ({"litellm_call_id": "x", "startTime": "yesterday"}, "startTime"),
        ({"litellm_call_id": "x", "startTime": 1e300}, "startTime"),
        ({"litellm_call_id": "x", "startTime": 1.0, "prompt_tokens": -1}, "prompt_tokens"),
    ],
)
def test_a_bad_log_is_rejected_naming_the_field(record: Any, field: str) -> None:
    rejection = record_event(record)
    assert isinstance(rejection, Rejection)
    assert rejection.field == field
