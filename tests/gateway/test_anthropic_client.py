"""The official ``anthropic`` client, sync and async, plain and streamed, through a
real ``tokenledger serve`` to the fake provider."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx2
import pytest

from tests.gateway.conftest import Served, person, tokens
from tests.support.fake_upstream import ANTHROPIC_TOKENS, PIECES, TEXT

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to Thảo."}]
MODEL = "claude-gateway-test"  # not a real model: never in the deprecation list
LEDGER_TOKENS = {**ANTHROPIC_TOKENS, "reasoning": None}


def _client(served: Served, key: str, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=served.anthropic_base, api_key=key, max_retries=0, **options
    )


def _assert_recorded(event: dict[str, Any], user_id: str, *, stream: bool) -> None:
    assert event["external_id"] == user_id
    assert event["status"] == "ok"
    assert event["provider"] == "anthropic"
    assert event["model"] == MODEL
    assert event["metadata"]["gateway"] == "messages"
    assert event["metadata"]["stream"] is stream
    assert event["metadata"]["upstream"] == "fake-anthropic"
    assert "usage_missing" not in event["metadata"]
    # 1830 new + 1024 cache read + 376 cache write; the stream's message_delta repeats
    # the input counts, which are not added again.
    assert tokens(event) == LEDGER_TOKENS


def test_messages_plain_and_streamed(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        plain = client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)
        with client.messages.stream(model=MODEL, max_tokens=512, messages=MESSAGES) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
    assert plain.content[0].type == "text"
    assert plain.content[0].text == TEXT
    assert plain.usage.cache_read_input_tokens == 1024
    assert pieces == PIECES
    assert final.usage.output_tokens == 412
    events = served.ledger.wait_for(user_id, 2)
    for event, stream_flag in zip(events, (False, True), strict=True):
        _assert_recorded(event, user_id, stream=stream_flag)


def test_async_messages_plain_and_streamed(served: Served) -> None:
    user_id = person()
    key = served.person_key(user_id)

    async def run() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            base_url=served.anthropic_base, api_key=key, max_retries=0
        ) as client:
            plain = await client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)
            stream = await client.messages.create(
                model=MODEL, max_tokens=512, messages=MESSAGES, stream=True
            )
            pieces = [
                event.delta.text
                async for event in stream
                if event.type == "content_block_delta" and event.delta.type == "text_delta"
            ]
            block = plain.content[0]
            return (block.text if block.type == "text" else ""), "".join(pieces)

    assert asyncio.run(run()) == (TEXT, TEXT)
    events = served.ledger.wait_for(user_id, 2)
    for event, stream_flag in zip(events, (False, True), strict=True):
        _assert_recorded(event, user_id, stream=stream_flag)


def test_a_stream_is_byte_identical_to_the_upstreams(served: Served) -> None:
    user_id = person()
    body = {"model": MODEL, "max_tokens": 512, "messages": MESSAGES, "stream": True}
    headers = {"anthropic-version": "2023-06-01"}
    through = httpx2.post(
        f"{served.anthropic_base}/v1/messages",
        json=body,
        headers={**headers, "x-api-key": served.person_key(user_id)},
        timeout=30,
    )
    direct = httpx2.post(
        f"{served.upstream.url}/v1/messages", json=body, headers=headers, timeout=30
    )
    assert through.status_code == 200
    assert through.content == direct.content
    assert b"message_delta" in through.content
    [event] = served.ledger.wait_for(user_id)
    _assert_recorded(event, user_id, stream=True)


def test_an_error_in_the_middle_of_a_stream(served: Served) -> None:
    user_id = person()
    received: list[str] = []

    def consume() -> None:
        with _client(served, served.person_key(user_id)) as client:
            stream = client.messages.create(
                model=f"{MODEL}-midstream-error", max_tokens=512, messages=MESSAGES, stream=True
            )
            for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    received.append(event.delta.text)

    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        consume()
    assert received == []  # the error came after message_start and the block start
    [event] = served.ledger.wait_for(user_id)
    assert event["status"] == "error"
    assert event["metadata"]["error"] == "upstream_error_event"
    assert event["metadata"]["usage_missing"] is True
    # What message_start reported, no more: the input, and 1 output token so far.
    assert tokens(event) == {**LEDGER_TOKENS, "output": 1}


def test_an_application_key_names_the_person_in_metadata_or_a_header(served: Served) -> None:
    in_metadata, in_header = person(), person()
    with _client(served, served.app_key) as client:
        client.messages.create(
            model=MODEL, max_tokens=512, messages=MESSAGES, metadata={"user_id": in_metadata}
        )
        client.messages.create(
            model=MODEL,
            max_tokens=512,
            messages=MESSAGES,
            extra_headers={"X-TokenLedger-User": in_header},
        )
    for user_id in (in_metadata, in_header):
        [event] = served.ledger.wait_for(user_id)
        _assert_recorded(event, user_id, stream=False)


def test_refusals_are_anthropic_shaped(served: Served) -> None:
    with _client(served, served.app_key) as client, pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)
    assert (
        e.value.body
        == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": e.value.message.split(" - ")[-1]},
        }
        or e.value.body["error"]["type"] == "invalid_request_error"
    )  # type: ignore[index]
    assert "metadata.user_id" in e.value.message
    with _client(served, "tl_unknown") as client, pytest.raises(anthropic.AuthenticationError) as a:
        client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)
    assert a.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "unknown or revoked API key"},
    }


def test_an_upstream_refusal_is_passed_on(served: Served) -> None:
    user_id = person()
    with (
        _client(served, served.person_key(user_id)) as client,
        pytest.raises(anthropic.BadRequestError) as refused,
    ):
        client.messages.create(model=f"{MODEL}-upstream-400", max_tokens=5, messages=MESSAGES)
    assert refused.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "messages: too short"},
    }
    [event] = served.ledger.wait_for(user_id)
    assert event["status"] == "error"
    assert event["metadata"]["upstream_status"] == 400


def test_the_upstream_gets_the_anthropic_headers_and_its_own_key(served: Served) -> None:
    from tests.gateway.conftest import UPSTREAM_KEY

    user_id = person()
    key = served.person_key(user_id)
    with _client(served, key) as client:
        client.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=MESSAGES,
            extra_headers={
                "anthropic-beta": "prompt-caching-2024-07-31",
                "anthropic-version": "2023-06-01",
            },
        )
    seen = served.upstream.requests[-1].headers
    assert seen["x-api-key"] == UPSTREAM_KEY
    assert seen["anthropic-version"] == "2023-06-01"
    assert seen["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert key not in str(seen)
