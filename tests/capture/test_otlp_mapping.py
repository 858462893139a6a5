"""GenAI spans as events, with the attribute sets each emitter really writes (read in
their sources: opentelemetry-instrumentation-openai-v2 2.4b0 with opentelemetry-util-genai,
OpenLLMetry 0.62, OpenLIT 1.45, Logfire 5.4, Pydantic AI)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tokenledger.capture.otlp import kind, person, span_event
from tokenledger.capture.otlp_wire import Span
from tokenledger.events import Rejection

START_NS = 1_795_600_000_123_456_789  # 2026-11-25T09:46:40.123456789Z
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")


def span(attributes: dict[str, Any], resource: dict[str, Any] | None = None, **kw: Any) -> Span:
    fields: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "name": "chat",
        "start_ns": START_NS,
        "end_ns": START_NS + 2_140_400_000,
        "error": False,
        "attributes": {"user.id": "emp-1", **attributes},
        "resource": {"service.name": "chat-app", **(resource or {})},
        "scope": "tests",
    }
    return Span(**{**fields, **kw})


def tokens(event: Any) -> tuple[int, int, int | None, int | None, int | None]:
    assert isinstance(event, dict), event
    return (
        event["input_tokens"],
        event["output_tokens"],
        event.get("cache_read_tokens"),
        event.get("cache_write_tokens"),
        event.get("reasoning_tokens"),
    )


# (emitter, provider's usage, attributes it writes, our counts)
EMITTERS: list[tuple[str, dict[str, Any], tuple[int, int, int | None, int | None, int | None]]] = [
    (
        "openai-v2 (util-genai), chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 2006,
            "gen_ai.usage.output_tokens": 300,
        },
        (2006, 300, None, None, None),
    ),
    (
        "util-genai 1.3 with cache and reasoning",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 2006,
            "gen_ai.usage.cache_read.input_tokens": 1920,
            "gen_ai.usage.output_tokens": 1186,
            "gen_ai.usage.reasoning.output_tokens": 1024,
        },
        (2006, 1186, 1920, None, 1024),
    ),
    (
        "OpenLLMetry openai",
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 2006,
            "gen_ai.usage.output_tokens": 1186,
            "gen_ai.usage.total_tokens": 3192,
            "gen_ai.usage.cache_read.input_tokens": 1920,
            "gen_ai.usage.reasoning_tokens": 1024,
        },
        (2006, 1186, 1920, None, 1024),
    ),
    (
        "OpenLLMetry anthropic (input already holds the cache)",
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 188107,
            "gen_ai.usage.output_tokens": 393,
            "gen_ai.usage.total_tokens": 188500,
            "gen_ai.usage.cache_read.input_tokens": 0,
            "gen_ai.usage.cache_creation.input_tokens": 188086,
        },
        (188107, 393, 0, 188086, None),
    ),
    (
        "older OpenLLMetry names",
        {
            "gen_ai.system": "Anthropic",
            "gen_ai.usage.prompt_tokens": 188107,
            "gen_ai.usage.completion_tokens": 393,
            "llm.usage.total_tokens": 188500,
            "gen_ai.usage.cache_read_input_tokens": 188086,
            "gen_ai.usage.cache_creation_input_tokens": 0,
        },
        (188107, 393, 188086, 0, None),
    ),
    (
        "OpenLIT anthropic (input excludes the cache)",
        {
            "telemetry.sdk.name": "openlit",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 21,
            "gen_ai.usage.output_tokens": 393,
            "gen_ai.usage.cache_read.input_tokens": 0,
            "gen_ai.usage.cache_creation.input_tokens": 188086,
            "gen_ai.usage.cost": 0.7,
        },
        (188107, 393, 0, 188086, None),
    ),
    (
        "OpenLIT gemini (output excludes the thoughts)",
        {
            "telemetry.sdk.name": "openlit",
            "gen_ai.provider.name": "gemini",
            "gen_ai.usage.input_tokens": 2210,
            "gen_ai.usage.output_tokens": 301,
            "gen_ai.usage.reasoning_tokens": 1152,
            "gen_ai.usage.cache_read.input_tokens": 2048,
            "gen_ai.usage.cache_creation.input_tokens": 0,
        },
        (2210, 1453, 2048, 0, 1152),
    ),
    (
        "OpenLIT openai",
        {
            "telemetry.sdk.name": "openlit",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 2006,
            "gen_ai.usage.output_tokens": 1186,
            "gen_ai.usage.reasoning_tokens": 1024,
            "gen_ai.usage.cache_read.input_tokens": 1920,
            "gen_ai.usage.cache_creation.input_tokens": 0,
        },
        (2006, 1186, 1920, 0, 1024),
    ),
    (
        "Logfire openai (reasoning only in gen_ai.usage.raw)",
        {
            "gen_ai.system": "openai",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 75,
            "gen_ai.usage.output_tokens": 1186,
            "gen_ai.usage.raw": orjson.dumps(
                {
                    "prompt_tokens": 75,
                    "completion_tokens": 1186,
                    "completion_tokens_details": {"reasoning_tokens": 1024},
                }
            ).decode(),
        },
        (75, 1186, None, None, 1024),
    ),
    (
        "Logfire anthropic",
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 188107,
            "gen_ai.usage.output_tokens": 393,
            "gen_ai.usage.cache_read.input_tokens": 188086,
        },
        (188107, 393, 188086, None, None),
    ),
    (
        "Pydantic AI (details)",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 2006,
            "gen_ai.usage.output_tokens": 1186,
            "gen_ai.usage.cache_read.input_tokens": 1920,
            "gen_ai.usage.details.cache_read_tokens": 1920,
            "gen_ai.usage.details.reasoning_tokens": 1024,
        },
        (2006, 1186, 1920, None, 1024),
    ),
]


@pytest.mark.parametrize(
    ("emitter", "attributes", "expected"), EMITTERS, ids=[e[0] for e in EMITTERS]
)
def test_each_emitters_attributes(
    emitter: str, attributes: dict[str, Any], expected: tuple[int, ...]
) -> None:
    item = span(attributes)
    assert kind(item) == "usage"
    assert tokens(span_event(item)) == expected


def test_the_event_of_a_span() -> None:
    event = span_event(
        span(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 5,
            },
            error=True,
        )
    )
    assert event == {
        "event_id": "otel:5b8efff798038103d269b633813fc60ceee19b7ec3c1b174",
        "user": {"id": "emp-1"},
        "started_at": "2026-11-25T09:46:40.123456+00:00",
        "duration_ms": 2140,
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
        "status": "error",
        "metadata": {"source": "opentelemetry", "span": "chat", "service": "chat-app"},
    }


def test_model_and_provider_fall_back() -> None:
    event = span_event(
        span(
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude",
                "gen_ai.usage.input_tokens": 1,
            }
        )
    )
    assert isinstance(event, dict)
    assert (event["model"], event["provider"], event["output_tokens"]) == ("claude", "anthropic", 0)


def test_duration_rounds_to_the_nearest_millisecond_and_never_goes_negative() -> None:
    usage = {"gen_ai.usage.input_tokens": 1}
    assert span_event(span(usage, end_ns=START_NS + 1_499_999))["duration_ms"] == 1  # type: ignore[index]
    assert span_event(span(usage, end_ns=START_NS + 1_500_000))["duration_ms"] == 2  # type: ignore[index]
    assert span_event(span(usage, end_ns=0))["duration_ms"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("attributes", "resource", "expected"),
    [
        ({"user.id": "a", "enduser.id": "b"}, {}, {"id": "a"}),
        ({"user.id": None, "enduser.id": "b"}, {"user.id": "r"}, {"id": "b"}),
        ({"user.id": None}, {"user.id": "r"}, {"id": "r"}),
        ({"user.id": None, "langfuse.user.id": "lf"}, {}, {"id": "lf"}),
        ({"user.id": None, "gen_ai.request.user": "u-9"}, {}, {"id": "u-9"}),
        ({"user.id": 1042}, {}, {"id": "1042"}),
        (
            {"user.full_name": "Ada L", "user.email": "ada@example.com"},
            {},
            {"id": "emp-1", "name": "Ada L", "email": "ada@example.com"},
        ),
        ({"user.email": "not an address"}, {}, {"id": "emp-1"}),
        ({"user.id": None}, {"service.name": "batch"}, {"id": "service:batch"}),
        ({"user.id": " "}, {"service.name": None}, {"id": "service:unknown_service"}),
    ],
)
def test_the_person(
    attributes: dict[str, Any], resource: dict[str, Any], expected: dict[str, str]
) -> None:
    defaults = ("user.id", "enduser.id", "langfuse.user.id", "gen_ai.request.user")
    assert person(span(attributes, resource), defaults) == expected


def test_the_person_attributes_are_configurable() -> None:
    item = span({"user.id": "emp-1", "app.employee": "E-77"})
    assert person(item, ("app.employee", "user.id")) == {"id": "E-77"}


def test_spans_without_usage_and_aggregate_spans_are_not_events() -> None:
    assert kind(span({"http.method": "GET"})) == "no_usage"
    # Pydantic AI's agent run: by default its sums use other names, ...
    assert kind(span({"gen_ai.aggregated_usage.input_tokens": 9})) == "no_usage"
    # ... and when told to use gen_ai.usage.*, the operation says it is an aggregate.
    for operation in ("invoke_agent", "execute_tool", "invoke_workflow"):
        assert kind(span({"gen_ai.operation.name": operation, "gen_ai.usage.input_tokens": 9})) == (
            "aggregate"
        )


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"gen_ai.usage.input_tokens": "12"}, "gen_ai.usage.input_tokens"),
        ({"gen_ai.usage.input_tokens": -3}, "gen_ai.usage.input_tokens"),
        ({"gen_ai.usage.output_tokens": 1.5}, "gen_ai.usage.output_tokens"),
    ],
)
def test_a_bad_count_rejects_the_span_naming_the_attribute(
    attributes: dict[str, Any], field: str
) -> None:
    rejection = span_event(span(attributes))
    assert isinstance(rejection, Rejection)
    assert rejection.field == field


def test_a_span_with_bad_ids_or_no_start_is_rejected() -> None:
    usage = {"gen_ai.usage.input_tokens": 1}
    assert isinstance(span_event(span(usage, span_id=b"\x01")), Rejection)
    assert isinstance(span_event(span(usage, start_ns=0)), Rejection)
