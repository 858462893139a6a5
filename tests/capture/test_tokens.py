"""Each provider's usage object in our terms, from the providers' documented examples.

Expected values are written out by hand from the documented rule, and checked against
the provider's own total where it reports one."""

from __future__ import annotations

from typing import Any

import pytest

from tokenledger.capture.tokens import Tokens, UsageError, count, from_usage

# OpenAI prompt caching guide: prompt_tokens includes the cached ones.
OPENAI_CACHED = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
# OpenAI reasoning guide: completion_tokens includes the reasoning ones.
OPENAI_REASONING = {
    "prompt_tokens": 75,
    "completion_tokens": 1186,
    "total_tokens": 1261,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 1024},
}
OPENAI_RESPONSES = {
    "input_tokens": 2006,
    "input_tokens_details": {"cached_tokens": 1920},
    "output_tokens": 1186,
    "output_tokens_details": {"reasoning_tokens": 1024},
    "total_tokens": 3192,
}
# Anthropic prompt caching guide: input_tokens excludes both cache counts.
ANTHROPIC_CACHE_WRITE = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188086,
    "cache_read_input_tokens": 0,
    "output_tokens": 393,
}
ANTHROPIC_CACHE_READ = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 188086,
    "output_tokens": 393,
}
# Gemini usageMetadata: promptTokenCount includes the cached content; thoughts are
# not in candidatesTokenCount (totalTokenCount = prompt + candidates + thoughts).
GEMINI_THINKING = {
    "promptTokenCount": 2210,
    "cachedContentTokenCount": 2048,
    "candidatesTokenCount": 301,
    "thoughtsTokenCount": 1152,
    "totalTokenCount": 3663,
}
GEMINI_SDK = {
    "prompt_token_count": 2210,
    "cached_content_token_count": 2048,
    "candidates_token_count": 301,
    "thoughts_token_count": 1152,
    "tool_use_prompt_token_count": 40,
    "total_token_count": 3703,
}

CASES = [
    (OPENAI_CACHED, Tokens(2006, 300, cache_read=1920, reasoning=0)),
    (OPENAI_REASONING, Tokens(75, 1186, cache_read=0, reasoning=1024)),
    (OPENAI_RESPONSES, Tokens(2006, 1186, cache_read=1920, reasoning=1024)),
    (ANTHROPIC_CACHE_WRITE, Tokens(188107, 393, cache_read=0, cache_write=188086)),
    (ANTHROPIC_CACHE_READ, Tokens(188107, 393, cache_read=188086, cache_write=0)),
    (GEMINI_THINKING, Tokens(2210, 1453, cache_read=2048, reasoning=1152)),
    (GEMINI_SDK, Tokens(2250, 1453, cache_read=2048, reasoning=1152)),
]


@pytest.mark.parametrize(("usage", "expected"), CASES, ids=lambda case: str(case)[:40])
def test_documented_usage_objects(usage: dict[str, Any], expected: Tokens) -> None:
    assert from_usage(usage) == expected


@pytest.mark.parametrize(
    ("usage", "total"),
    [
        (OPENAI_CACHED, "total_tokens"),
        (OPENAI_RESPONSES, "total_tokens"),
        (GEMINI_THINKING, "totalTokenCount"),
        (GEMINI_SDK, "total_token_count"),
    ],
)
def test_our_total_is_the_providers_total(usage: dict[str, Any], total: str) -> None:
    tokens = from_usage(usage)
    assert tokens.input + tokens.output == usage[total]


def test_parts_stay_within_their_wholes() -> None:
    for usage, _expected in CASES:
        tokens = from_usage(usage)
        assert (tokens.cache_read or 0) + (tokens.cache_write or 0) <= tokens.input
        assert (tokens.reasoning or 0) <= tokens.output


def test_litellm_usage_object_of_anthropic_is_not_summed_again() -> None:
    # What LiteLLM's Anthropic transformation logs for ANTHROPIC_CACHE_WRITE (its
    # usage_object): prompt_tokens already holds the cache, kept also at the top level.
    usage = {
        "prompt_tokens": 188107,
        "completion_tokens": 393,
        "total_tokens": 188500,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 188086},
        "cache_creation_input_tokens": 188086,
        "cache_read_input_tokens": 0,
    }
    assert from_usage(usage) == Tokens(188107, 393, cache_read=0, cache_write=188086)


def test_deepseek_cache_hits() -> None:
    usage = {"prompt_tokens": 500, "completion_tokens": 20, "prompt_cache_hit_tokens": 320}
    assert from_usage(usage) == Tokens(500, 20, cache_read=320)


@pytest.mark.parametrize("value", ["12", -1, 1.5, True, 2**53 + 1, [3]])
def test_a_count_that_is_not_a_token_count_is_named(value: Any) -> None:
    with pytest.raises(UsageError) as caught:
        from_usage({"prompt_tokens": value, "completion_tokens": 1})
    assert caught.value.field == "prompt_tokens"


def test_a_nested_bad_count_names_its_path() -> None:
    with pytest.raises(UsageError, match=r"prompt_tokens_details\.cached_tokens"):
        from_usage({"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": "x"}})


def test_integral_json_numbers_are_counts() -> None:
    assert count(12.0, "x") == 12
    assert count(None, "x") is None


def test_event_fields_leave_out_unknown_parts() -> None:
    assert Tokens(10, 5, reasoning=2).event_fields() == {
        "input_tokens": 10,
        "output_tokens": 5,
        "reasoning_tokens": 2,
    }
