"""The ``litellm`` package itself, its ``generic_api`` callback posting to a running
``tokenledger serve``: the payload is the one LiteLLM really sends."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import litellm
import pytest
from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
from litellm.types.utils import ModelResponse

from tests.capture.conftest import Served, tokens_of

USAGE = {
    "prompt_tokens": 1830,
    "completion_tokens": 412,
    "total_tokens": 2242,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 128},
}
PERSON = {
    "user_api_key_user_id": "emp-litellm",
    "user_api_key_user_email": "li.wei@example.com",
    "user_api_key_team_id": "team-7",
    "user_api_key_team_alias": "Research",
}


def _response() -> ModelResponse:
    return ModelResponse(
        model="gpt-4o",
        choices=[
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi."},
                "finish_reason": "stop",
            }
        ],
        usage=USAGE,
    )


async def _complete_and_flush(
    logger: GenericAPILogger, *, calls: int, metadata: dict[str, str]
) -> list[Any]:
    """``calls`` completions; once the callback queued them all, one flush (a batch)."""
    litellm.callbacks = [logger]
    try:
        for _ in range(calls):
            await litellm.acompletion(
                model="openai/gpt-4o",
                messages=[{"role": "user", "content": "Hello?"}],
                mock_response=_response(),
                metadata=metadata,
            )
        for _ in range(200):  # the success callback runs as a task of its own
            if len(logger.log_queue) >= calls:
                break
            await asyncio.sleep(0.02)
        batch = list(logger.log_queue)
        assert len(batch) == calls
        await logger.flush_queue()
        return batch
    finally:
        litellm.callbacks = []


def _logger(served: Served, log_format: str) -> GenericAPILogger:
    return GenericAPILogger(
        endpoint=f"{served.url}/api/v1/integrations/litellm",
        headers=served.auth,
        log_format=log_format,  # type: ignore[arg-type]
    )


async def _send_again(logger: GenericAPILogger, batch: list[Any]) -> None:
    logger.log_queue.extend(batch)  # the same batch, as a retry would post it
    await logger.flush_queue()


# LiteLLM's own warnings: pydantic about its TypedDicts, and its aiohttp transport's
# __del__ at interpreter exit.
@pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("log_format", ["json_array", "ndjson", "single"])
def test_litellm_generic_api_callback_lands_in_the_report_once(
    served: Served, log_format: str
) -> None:
    user_id = f"emp-litellm-{log_format}"
    person = {**PERSON, "user_api_key_user_id": user_id}

    async def scenario() -> list[Any]:
        logger = _logger(served, log_format)
        batch = await _complete_and_flush(logger, calls=2, metadata=person)
        await _send_again(logger, batch)
        return batch

    batch = asyncio.run(scenario())
    row = served.usage(user_id)
    assert tokens_of(row) == {
        "requests": 2,
        "input_tokens": 2 * 1830,
        "output_tokens": 2 * 412,
        "cache_read_tokens": 2 * 1024,
        "cache_write_tokens": 0,
        "reasoning_tokens": 2 * 128,
    }
    assert row["email"] == "li.wei@example.com"
    # The cost LiteLLM computed (response_cost, a float) arrives, to the nano-dollar.
    costs = [Decimal(repr(log["response_cost"])) for log in batch]
    assert all(cost > 0 for cost in costs)
    expected_cost = sum(cost.quantize(Decimal("1e-9")) for cost in costs)
    assert (Decimal(row["cost_usd"]), row["unpriced_requests"]) == (expected_cost, 0)
    expected_ms = sum(
        (round(log["endTime"] * 1e6) - round(log["startTime"] * 1e6) + 500) // 1000 for log in batch
    )
    assert abs(row["duration_ms"] - expected_ms) <= 1
    events = served.events(user_id)
    assert {(e["model"], e["provider"], e["status"]) for e in events} == {
        ("gpt-4o", "openai", "ok")
    }
    assert {e["event_id"] for e in events} == {f"litellm:{log['litellm_call_id']}" for log in batch}
