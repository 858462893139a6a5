"""Usage read from answers, by each API's rule (the arithmetic is capture.tokens')."""

from __future__ import annotations

import json
from typing import Any

from tokenledger.capture.tokens import Tokens
from tokenledger.gateway.meters import MessagesMeter, Meter, ResponsesMeter
from tokenledger.gateway.sse import parse


def _event(document: dict[str, Any], name: str | None = None) -> Any:
    head = f"event: {name}\n" if name else ""
    return parse(f"{head}data: {json.dumps(document)}\n\n".encode())


def test_anthropic_stream_counts_are_cumulative_never_summed() -> None:
    meter = MessagesMeter()
    start_usage = {"input_tokens": 100, "cache_read_input_tokens": 50, "output_tokens": 1}
    start = {"type": "message_start", "message": {"model": "claude-x", "usage": start_usage}}
    assert meter.event(_event(start, "message_start"))
    assert meter.tokens == Tokens(150, 1, 50, None, None)
    assert not meter.complete
    delta = {"type": "message_delta", "usage": {"output_tokens": 30}}
    meter.event(_event(delta, "message_delta"))
    # A later delta repeats every count so far (the input too): replaced, not added.
    last = {"type": "message_delta", "usage": {"input_tokens": 100, "output_tokens": 42}}
    meter.event(_event(last, "message_delta"))
    assert meter.tokens == Tokens(150, 42, 50, None, None)
    assert meter.complete
    assert meter.model == "claude-x"


def test_a_message_delta_without_usage_does_not_complete_it() -> None:
    meter = MessagesMeter()
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 3}}}
    meter.event(_event(start))
    meter.event(_event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}))
    assert not meter.complete


def test_chat_stream_usage_chunk_is_dropped_only_when_asked_for_the_ledger() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    chunk = _event({"choices": [], "usage": usage})
    with_choices = _event({"choices": [{"delta": {}}], "usage": usage})
    assert Meter().event(chunk) is True
    dropping = Meter(drop_usage_chunk=True)
    assert dropping.event(chunk) is False
    assert dropping.tokens == Tokens(10, 5)
    assert dropping.complete
    assert Meter(drop_usage_chunk=True).event(with_choices) is True  # it carries content


def test_usage_that_is_not_counts_is_a_problem_not_usage() -> None:
    meter = Meter()
    meter.body(b'{"usage": {"prompt_tokens": "12", "completion_tokens": 1}}')
    assert not meter.complete
    assert meter.problem is not None
    assert "prompt_tokens" in meter.problem


def test_responses_usage_comes_with_the_final_event() -> None:
    meter = ResponsesMeter()
    meter.event(_event({"type": "response.created", "response": {"model": "gpt-x"}}))
    usage = {
        "input_tokens": 20,
        "output_tokens": 9,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens_details": {"reasoning_tokens": 6},
    }
    done = {"type": "response.completed", "response": {"model": "gpt-x", "usage": usage}}
    meter.event(_event(done))
    assert meter.tokens == Tokens(20, 9, 4, None, 6)
    assert meter.complete
    assert meter.failure is None


def test_not_json_and_done_pass_through_untouched() -> None:
    meter = Meter(drop_usage_chunk=True)
    assert meter.event(parse(b"data: [DONE]\n\n"))
    assert meter.event(parse(b"data: {broken\n\n"))
    assert meter.tokens is None


def test_an_events_metadata_flags_missing_usage_only_at_its_top_level() -> None:
    from tests.conftest import make_event
    from tokenledger.events import Event, validate_event

    def missing(metadata: dict[str, object] | None) -> bool:
        event = validate_event(make_event(metadata=metadata), now_us=2**62, future_tolerance_s=0)
        assert isinstance(event, Event)
        return event.usage_missing

    assert missing({"gateway": "messages", "usage_missing": True})
    assert not missing({"usage_missing": False})
    assert not missing({"usage_missing": 1})
    assert not missing({"app": {"usage_missing": True}})
    assert not missing(None)
