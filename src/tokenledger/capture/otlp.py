"""GenAI spans as usage events.

A span becomes one event when it carries GenAI token usage; other spans are not
usage. Spans of agents, workflows and tools carry the sum of the model calls under
them (Pydantic AI's agent runs can), so they are skipped too: counting them would
count those calls twice.

Attribute names, as the emitters write them (read in their sources):

- OpenTelemetry GenAI conventions (``opentelemetry-instrumentation-openai-v2`` through
  ``opentelemetry-util-genai``, OpenLLMetry, Logfire, Pydantic AI):
  ``gen_ai.usage.input_tokens`` includes ``gen_ai.usage.cache_read.input_tokens`` and
  ``gen_ai.usage.cache_creation.input_tokens``; ``gen_ai.usage.output_tokens`` includes
  ``gen_ai.usage.reasoning.output_tokens``. OpenLLMetry's Anthropic spans add the cache
  to the input as the conventions say, and it writes reasoning as
  ``gen_ai.usage.reasoning_tokens``; Pydantic AI writes provider details as
  ``gen_ai.usage.details.*``; Logfire keeps the provider's usage object as JSON in
  ``gen_ai.usage.raw``.
- Older names: ``gen_ai.usage.prompt_tokens`` / ``gen_ai.usage.completion_tokens``,
  ``gen_ai.usage.cache_read_input_tokens`` / ``gen_ai.usage.cache_creation_input_tokens``.
- OpenLIT (``telemetry.sdk.name`` = ``openlit``) writes the provider's own counts under
  the convention's names: its Anthropic input excludes the cache, and its Gemini output
  excludes the thoughts (``gen_ai.usage.reasoning_tokens``). Those are converted with
  the provider's rule (:func:`tokenledger.capture.tokens.from_native`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from tokenledger.capture.contract import Mapped, rejection, rfc3339_from_us
from tokenledger.capture.otlp_wire import Span
from tokenledger.capture.tokens import Tokens, UsageError, count, from_native, from_usage
from tokenledger.events import UserIn

INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.prompt_tokens_details.cached_tokens",
    "gen_ai.usage.details.cache_read_tokens",
)
CACHE_WRITE = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.prompt_tokens_details.cache_creation_tokens",
    "gen_ai.usage.details.cache_write_tokens",
)
REASONING = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
    "gen_ai.usage.completion_tokens_details.reasoning_tokens",
    "gen_ai.usage.details.reasoning_tokens",
    "gen_ai.usage.details.thoughts_tokens",
)
RAW_USAGE = "gen_ai.usage.raw"
AGGREGATE_OPERATIONS = frozenset(
    {"invoke_agent", "invoke_workflow", "create_agent", "execute_tool"}
)
DEFAULT_USER_ATTRIBUTES = ("user.id", "enduser.id", "langfuse.user.id", "gen_ai.request.user")
NAME_ATTRIBUTES = ("user.name", "user.full_name")
EMAIL_ATTRIBUTES = ("user.email",)

Kind = Literal["usage", "no_usage", "aggregate"]


def kind(span: Span) -> Kind:
    """Whether ``span`` is a model call with usage, or something else."""
    attributes = span.attributes
    if not any(attributes.get(name) is not None for name in (*INPUT, *OUTPUT)):
        return "no_usage"
    if attributes.get("gen_ai.operation.name") in AGGREGATE_OPERATIONS:
        return "aggregate"
    return "usage"


def _first_count(attributes: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return count(value, name)
    return None


def _raw_reasoning(attributes: Mapping[str, Any]) -> int | None:
    """Reasoning tokens from Logfire's copy of the provider's usage object."""
    raw = attributes.get(RAW_USAGE)
    if not isinstance(raw, str):
        return None
    try:
        usage = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(usage, dict):
        return None
    try:
        return from_usage(usage).reasoning
    except UsageError:
        return None


def _emitter(span: Span) -> str | None:
    for source in (span.attributes, span.resource):
        name = source.get("telemetry.sdk.name")
        if isinstance(name, str):
            return name.lower()
    return None


def span_tokens(span: Span, provider: str | None) -> Tokens:
    """The span's token counts in our terms (UsageError naming a bad attribute)."""
    attributes = span.attributes
    reasoning = _first_count(attributes, REASONING)
    if reasoning is None:
        reasoning = _raw_reasoning(attributes)
    input_tokens = _first_count(attributes, INPUT) or 0
    output_tokens = _first_count(attributes, OUTPUT) or 0
    cache_read = _first_count(attributes, CACHE_READ)
    cache_write = _first_count(attributes, CACHE_WRITE)
    if _emitter(span) == "openlit":
        return from_native(
            provider,
            input=input_tokens,
            output=output_tokens,
            cache_read=cache_read,
            cache_write=cache_write,
            reasoning=reasoning,
        )
    return Tokens(input_tokens, output_tokens, cache_read, cache_write, reasoning)


def _text(span: Span, names: Sequence[str]) -> str | None:
    """The first of ``names`` among the span's attributes, then the resource's."""
    for source in (span.attributes, span.resource):
        for name in names:
            value = source.get(name)
            if isinstance(value, bool):
                continue
            if isinstance(value, int | str) and str(value).strip():
                return str(value).strip()
    return None


def _valid_email(value: str | None) -> str | None:
    """An e-mail that would be refused is left out rather than losing the usage."""
    if value is None:
        return None
    try:
        UserIn.model_validate({"id": "-", "email": value})
    except ValidationError:
        return None
    return value


def person(span: Span, user_attributes: Sequence[str]) -> dict[str, str]:
    """``user`` of the event: the first present of ``user_attributes``; without one,
    the usage is counted under the application (``service:<service.name>``)."""
    user_id = _text(span, user_attributes)
    if user_id is None:
        service = _text(span, ("service.name",)) or "unknown_service"
        return {"id": f"service:{service}"}
    user = {"id": user_id}
    name = _text(span, NAME_ATTRIBUTES)
    email = _valid_email(_text(span, EMAIL_ATTRIBUTES))
    if name:
        user["name"] = name
    if email:
        user["email"] = email
    return user


def _string(attributes: Mapping[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def span_event(span: Span, *, user_attributes: Sequence[str] = DEFAULT_USER_ATTRIBUTES) -> Mapped:
    """The usage event of a GenAI span (one that :func:`kind` calls ``usage``)."""
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        return rejection("span_id", "trace id must be 16 bytes and span id 8 bytes")
    if span.start_ns <= 0:
        return rejection("started_at", "the span has no start time")
    attributes = span.attributes
    provider = _string(attributes, ("gen_ai.provider.name", "gen_ai.system"))
    try:
        tokens = span_tokens(span, provider)
    except UsageError as exc:
        return rejection(exc.field, exc.message)
    event: dict[str, Any] = {
        "event_id": span.event_id,
        "user": person(span, user_attributes),
        "started_at": rfc3339_from_us(span.start_ns // 1000),
        "duration_ms": max(0, span.end_ns - span.start_ns + 500_000) // 1_000_000,
        **tokens.event_fields(),
        "status": "error" if span.error else "ok",
        "metadata": {"source": "opentelemetry", "span": span.name},
    }
    model = _string(attributes, ("gen_ai.response.model", "gen_ai.request.model"))
    if model:
        event["model"] = model
    if provider:
        event["provider"] = provider
    service = _text(span, ("service.name",))
    if service:
        event["metadata"]["service"] = service
    return event
