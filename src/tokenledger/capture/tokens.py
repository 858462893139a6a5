"""Token arithmetic: each provider's usage object as our event's token fields.

Our event's ``input_tokens`` includes cache reads and writes, and ``output_tokens``
includes reasoning. Providers count differently:

- OpenAI Chat Completions: ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``
  and ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``; the
  Responses API says the same with ``input_tokens`` / ``output_tokens`` and their
  ``_details``. LiteLLM's usage object has this shape for every provider (its Anthropic
  transformation adds the cache to ``prompt_tokens``; it also keeps Anthropic's
  ``cache_creation_input_tokens`` at the top level).
- Anthropic: ``input_tokens`` excludes ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``; ours is the sum of the three. ``output_tokens``
  includes extended thinking (which has no separate count).
- Gemini: ``promptTokenCount`` includes ``cachedContentTokenCount``;
  ``thoughtsTokenCount`` is not in ``candidatesTokenCount``: output = candidates +
  thoughts, reasoning = thoughts. ``toolUsePromptTokenCount`` is input too, so that
  input + output = ``totalTokenCount``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenledger.events import MAX_COUNT

ANTHROPIC_PROVIDERS = frozenset({"anthropic"})
GEMINI_PROVIDERS = frozenset(
    {"gemini", "google", "vertex_ai", "gcp.gemini", "gcp.gen_ai", "gcp.vertex_ai"}
)


class UsageError(ValueError):
    """A usage value that is not a token count; ``field`` names where it was found."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts in our event's terms (parts included in their wholes)."""

    input: int
    output: int
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None

    def event_fields(self) -> dict[str, int]:
        fields = {"input_tokens": self.input, "output_tokens": self.output}
        for name, value in (
            ("cache_read_tokens", self.cache_read),
            ("cache_write_tokens", self.cache_write),
            ("reasoning_tokens", self.reasoning),
        ):
            if value is not None:
                fields[name] = value
        return fields


def count(value: Any, field: str) -> int | None:
    """A token count: ``None`` when absent, else an integer from 0 to 2^53 (a JSON
    number such as ``12.0`` is one); anything else is a :class:`UsageError`."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(field, f"must be an integer token count, not {value!r}")
    if not 0 <= value <= MAX_COUNT:
        raise UsageError(field, f"must be from 0 to 2^53, not {value}")
    return value


def first_count(
    values: Mapping[str, Any], names: tuple[str, ...], *, prefix: str = ""
) -> int | None:
    """The first of ``names`` present in ``values`` (absent and null are the same)."""
    for name in names:
        value = values.get(name)
        if value is not None:
            return count(value, prefix + name)
    return None


def _details(usage: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    details = usage.get(name)
    return details if isinstance(details, Mapping) else {}


def from_native(
    provider: str | None,
    *,
    input: int,
    output: int,
    cache_read: int | None = None,
    cache_write: int | None = None,
    reasoning: int | None = None,
) -> Tokens:
    """Counts as ``provider``'s own API reports them, in our terms."""
    family = (provider or "").lower()
    if family in ANTHROPIC_PROVIDERS:
        input += (cache_read or 0) + (cache_write or 0)
    elif family in GEMINI_PROVIDERS:
        output += reasoning or 0
    return Tokens(input, output, cache_read, cache_write, reasoning)


def _pick(*sources: tuple[Mapping[str, Any], str, str]) -> int | None:
    """The first present of (mapping, key, prefix naming the mapping in errors)."""
    for values, name, prefix in sources:
        if values.get(name) is not None:
            return count(values[name], prefix + name)
    return None


def openai_chat(usage: Mapping[str, Any]) -> Tokens:
    """OpenAI Chat Completions usage (also LiteLLM's usage object and DeepSeek's)."""
    prompt = (_details(usage, "prompt_tokens_details"), "prompt_tokens_details.")
    completion = (_details(usage, "completion_tokens_details"), "completion_tokens_details.")
    return Tokens(
        input=count(usage.get("prompt_tokens"), "prompt_tokens") or 0,
        output=count(usage.get("completion_tokens"), "completion_tokens") or 0,
        cache_read=_pick(
            (prompt[0], "cached_tokens", prompt[1]),
            (usage, "cache_read_input_tokens", ""),
            (usage, "prompt_cache_hit_tokens", ""),
        ),
        cache_write=_pick(
            (usage, "cache_creation_input_tokens", ""),
            (prompt[0], "cache_creation_tokens", prompt[1]),
            (prompt[0], "cache_write_tokens", prompt[1]),
        ),
        reasoning=_pick((completion[0], "reasoning_tokens", completion[1])),
    )


def openai_responses(usage: Mapping[str, Any]) -> Tokens:
    """OpenAI Responses API usage."""
    return Tokens(
        input=count(usage.get("input_tokens"), "input_tokens") or 0,
        output=count(usage.get("output_tokens"), "output_tokens") or 0,
        cache_read=first_count(
            _details(usage, "input_tokens_details"),
            ("cached_tokens",),
            prefix="input_tokens_details.",
        ),
        reasoning=first_count(
            _details(usage, "output_tokens_details"),
            ("reasoning_tokens",),
            prefix="output_tokens_details.",
        ),
    )


def anthropic(usage: Mapping[str, Any]) -> Tokens:
    """Anthropic Messages API usage."""
    return from_native(
        "anthropic",
        input=count(usage.get("input_tokens"), "input_tokens") or 0,
        output=count(usage.get("output_tokens"), "output_tokens") or 0,
        cache_read=first_count(usage, ("cache_read_input_tokens",)),
        cache_write=first_count(usage, ("cache_creation_input_tokens",)),
    )


_GEMINI = {
    "prompt": ("promptTokenCount", "prompt_token_count"),
    "candidates": ("candidatesTokenCount", "candidates_token_count"),
    "thoughts": ("thoughtsTokenCount", "thoughts_token_count"),
    "cached": ("cachedContentTokenCount", "cached_content_token_count"),
    "tool_use": ("toolUsePromptTokenCount", "tool_use_prompt_token_count"),
}


def gemini(usage: Mapping[str, Any]) -> Tokens:
    """Gemini ``usageMetadata`` (REST camelCase or the SDK's snake_case)."""
    counts = {part: first_count(usage, names) for part, names in _GEMINI.items()}
    return from_native(
        "gemini",
        input=(counts["prompt"] or 0) + (counts["tool_use"] or 0),
        output=counts["candidates"] or 0,
        cache_read=counts["cached"],
        reasoning=counts["thoughts"],
    )


def from_usage(usage: Mapping[str, Any]) -> Tokens:
    """A provider's usage object, its dialect told by its keys."""
    if any(key in usage for key in (*_GEMINI["prompt"], *_GEMINI["candidates"])):
        return gemini(usage)
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return openai_chat(usage)
    if "input_tokens_details" in usage or "output_tokens_details" in usage:
        return openai_responses(usage)
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        return anthropic(usage)
    # input_tokens / output_tokens alone: Anthropic and Responses agree when nothing is cached.
    return openai_responses(usage)
