"""The official ``openai`` client, sync and async, plain and streamed, through a real
``tokenledger serve`` to the fake provider: what the client gets, and what the ledger
records (exact tokens, person, status)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai
import pytest

from tests.gateway.conftest import Served, person, tokens
from tests.support.fake_upstream import EMBEDDING, MODELS, OPENAI_TOKENS, OPENAI_USAGE, PIECES, TEXT
from tokenledger.auth.keys import create_key

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to Thảo."}]
CHAT_TOKENS = {**OPENAI_TOKENS, "cache_write": None}


def _client(served: Served, key: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.openai_base, api_key=key, max_retries=0, **options)


def _stream_into(received: list[str], client: openai.OpenAI, model: str) -> None:
    """Stream a chat answer, keeping its text as it comes (until the client raises)."""
    for chunk in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
        received.append(chunk.choices[0].delta.content or "")


def _one_event(served: Served, user_id: str) -> dict[str, Any]:
    [event] = served.ledger.wait_for(user_id)
    return event


def _assert_ok(event: dict[str, Any], user_id: str, endpoint: str, *, stream: bool) -> None:
    assert event["external_id"] == user_id
    assert event["status"] == "ok"
    assert event["provider"] == "openai"
    assert event["event_id"].startswith("gateway:")
    assert event["metadata"]["gateway"] == endpoint
    assert event["metadata"]["stream"] is stream
    assert event["metadata"]["upstream"] == "fake-openai"
    assert "usage_missing" not in event["metadata"]


def test_chat_plain(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert answer.choices[0].message.content == TEXT
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == 2854
    event = _one_event(served, user_id)
    _assert_ok(event, user_id, "chat.completions", stream=False)
    assert tokens(event) == CHAT_TOKENS
    assert event["model"] == "gpt-4o-2024-08-06"  # the model that answered
    assert event["metadata"]["requested_model"] == "gpt-4o"


def test_chat_stream_gets_no_usage_chunk_it_did_not_ask_for(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == TEXT
    assert all(chunk.choices for chunk in chunks)  # the usage chunk has none: not passed on
    assert all(chunk.usage is None for chunk in chunks)
    event = _one_event(served, user_id)
    _assert_ok(event, user_id, "chat.completions", stream=True)
    assert tokens(event) == CHAT_TOKENS
    # The upstream was asked for the usage.
    asked = [r.body for r in served.upstream.requests if r.body and r.body.get("stream")]
    assert asked[-1]["stream_options"] == {"include_usage": True}


def test_chat_stream_with_usage_is_byte_identical_to_the_upstream(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == OPENAI_USAGE
    # The same request, raw, through the gateway and straight to the upstream.
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    body["stream_options"] = {"include_usage": True}
    key = served.person_key(user_id)
    through = httpx2.post(
        f"{served.openai_base}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    direct = httpx2.post(f"{served.upstream.openai_base}/chat/completions", json=body, timeout=30)
    assert through.status_code == 200
    assert through.headers["content-type"] == direct.headers["content-type"]
    assert through.content == direct.content
    events = served.ledger.wait_for(user_id, 2)
    assert [tokens(event) for event in events] == [CHAT_TOKENS, CHAT_TOKENS]


def test_async_chat_plain_and_streamed(served: Served) -> None:
    user_id = person()
    key = served.person_key(user_id)

    async def run() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=served.openai_base, api_key=key, max_retries=0
        ) as client:
            plain = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )
            pieces = [chunk.choices[0].delta.content or "" async for chunk in stream]
            return plain.choices[0].message.content or "", "".join(pieces)

    assert asyncio.run(run()) == (TEXT, TEXT)
    events = served.ledger.wait_for(user_id, 2)
    assert [event["metadata"]["stream"] for event in events] == [False, True]
    assert [tokens(event) for event in events] == [CHAT_TOKENS, CHAT_TOKENS]
    assert {event["status"] for event in events} == {"ok"}


def test_completions_plain_and_streamed(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        plain = client.completions.create(model="gpt-4o", prompt="Hello")
        streamed = list(client.completions.create(model="gpt-4o", prompt="Hello", stream=True))
    assert plain.choices[0].text == TEXT
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == TEXT
    events = served.ledger.wait_for(user_id, 2)
    assert [event["metadata"]["gateway"] for event in events] == ["completions"] * 2
    assert [tokens(event) for event in events] == [CHAT_TOKENS, CHAT_TOKENS]


def test_embeddings(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        answer = client.embeddings.create(model="text-embedding-3-small", input="Xin chào")
    assert answer.data[0].embedding == EMBEDDING  # sent as base64, decoded by the client
    event = _one_event(served, user_id)
    _assert_ok(event, user_id, "embeddings", stream=False)
    assert tokens(event) == {
        "input": 8,
        "output": 0,
        "cache_read": None,
        "cache_write": None,
        "reasoning": None,
    }


def test_responses_plain_and_streamed(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        plain = client.responses.create(model="gpt-4o", input="Hello")
        deltas = [
            event.delta
            for event in client.responses.create(model="gpt-4o", input="Hello", stream=True)
            if event.type == "response.output_text.delta"
        ]
    assert plain.output_text == TEXT
    assert deltas == PIECES
    events = served.ledger.wait_for(user_id, 2)
    for event, stream in zip(events, (False, True), strict=True):
        _assert_ok(event, user_id, "responses", stream=stream)
        assert tokens(event) == CHAT_TOKENS


def test_models_lists_what_the_allow_lists_let_through(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        ids = [model.id for model in client.models.list()]
    # "reasoning" allows o3-* only; "fake-openai" allows all; each model once.
    assert ids == ["o3-mini", *[name for name in MODELS if name != "o3-mini"]]
    assert served.ledger.events(user_id) == []  # listing models uses no tokens


def test_a_model_goes_to_the_first_upstream_that_allows_it(served: Served) -> None:
    user_id = person()
    with _client(served, served.person_key(user_id)) as client:
        client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    event = _one_event(served, user_id)
    assert event["metadata"]["upstream"] == "reasoning"
    assert event["provider"] == "openai-reasoning"


def test_an_upstream_refusal_is_passed_on_with_its_status_and_body(served: Served) -> None:
    user_id = person()
    with (
        _client(served, served.person_key(user_id)) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        client.chat.completions.create(model="gpt-4o-upstream-400", messages=MESSAGES)
    assert refused.value.status_code == 400
    assert refused.value.body == {
        "message": "messages: too short",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    event = _one_event(served, user_id)
    assert event["status"] == "error"
    assert tokens(event)["input"] == tokens(event)["output"] == 0
    assert event["metadata"]["upstream_status"] == 400
    assert event["metadata"]["error"] == "upstream_status"
    assert "usage_missing" not in event["metadata"]  # a refused request uses no tokens


def test_an_error_in_the_middle_of_a_stream(served: Served) -> None:
    user_id = person()
    received: list[str] = []
    with (
        _client(served, served.person_key(user_id)) as client,
        pytest.raises(openai.APIError, match="Overloaded"),
    ):
        _stream_into(received, client, "gpt-4o-midstream-error")
    assert "".join(received) == PIECES[0]
    event = _one_event(served, user_id)
    assert event["status"] == "error"
    assert event["metadata"]["error"] == "upstream_error_event"
    assert event["metadata"]["usage_missing"] is True
    assert tokens(event)["input"] == 0


def test_an_upstream_that_dies_mid_stream_is_an_error_for_the_client(served: Served) -> None:
    user_id = person()
    received: list[str] = []
    with (
        _client(served, served.person_key(user_id)) as client,
        pytest.raises(openai.APIError, match="broke off"),
    ):
        _stream_into(received, client, "gpt-4o-die")
    assert "".join(received) == PIECES[0]
    event = _one_event(served, user_id)
    assert event["status"] == "error"
    assert event["metadata"]["error"] == "upstream_stream_cut"
    assert event["metadata"]["usage_missing"] is True
    # The reports count it as a request without usage, never a silent 0.
    key = create_key(served.db, name="reports", scope="report:read", now_us=0)[1]
    today = datetime.now(UTC).date().isoformat()
    report = httpx2.get(
        f"{served.url}/api/v1/reports/user-usage",
        params={"q": user_id, "start": today, "end": today, "tz": "UTC"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    assert report["totals"]["requests"] == 1
    assert report["totals"]["usage_missing_requests"] == 1
    assert report["users"][0]["usage_missing_requests"] == 1


def test_a_client_that_leaves_cancels_the_upstream_request(served: Served) -> None:
    user_id = person()
    hung_up = served.upstream.hung_up
    body = {"model": "gpt-4o-hang", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {served.person_key(user_id)}"}
    with httpx2.Client(timeout=30) as client:
        url = f"{served.openai_base}/chat/completions"
        with client.stream("POST", url, json=body, headers=headers) as response:
            first = next(response.iter_raw())
    assert first.startswith(b"data: ")
    event = _one_event(served, user_id)
    assert event["status"] == "error"
    assert event["metadata"]["error"] == "client_disconnected"
    assert event["metadata"]["usage_missing"] is True
    # The upstream sees its request go (it may notice just after the event is written).
    deadline = time.monotonic() + 10
    while served.upstream.hung_up == hung_up and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.upstream.hung_up == hung_up + 1


def test_an_application_key_names_the_person(served: Served) -> None:
    by_header, by_body = person(), person()
    headers = {"X-TokenLedger-User": by_header}
    with _client(served, served.app_key, default_headers=headers) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with _client(served, served.app_key) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, user=by_body)
    for user_id in (by_header, by_body):
        event = _one_event(served, user_id)
        assert tokens(event) == CHAT_TOKENS
    upstream_headers = served.upstream.requests[-2].headers
    assert "x-tokenledger-user" not in upstream_headers


def test_an_application_key_without_a_person_is_refused(served: Served) -> None:
    with (
        _client(served, served.app_key) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert refused.value.body == {
        "message": refused.value.body["message"],  # type: ignore[index]
        "type": "invalid_request_error",
        "param": "user",
        "code": "missing_user",
    }
    assert "X-TokenLedger-User" in str(refused.value)


def test_unknown_and_revoked_keys_are_refused(served: Served) -> None:
    from tokenledger.auth.keys import list_keys, revoke_key

    user_id = person()
    key = served.person_key(user_id)
    with _client(served, key) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        [made] = [found for found in list_keys(served.db) if found.user_id == user_id]
        revoke_key(served.db, made.id, now_us=1)
        with pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    with _client(served, "tl_not-a-key") as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(served.ledger.events(user_id)) == 1


def test_the_upstream_gets_its_key_never_the_callers(served: Served) -> None:
    from tests.gateway.conftest import UPSTREAM_KEY

    user_id = person()
    key = served.person_key(user_id)
    with _client(served, key) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # sets a cookie
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    seen = served.upstream.requests[-1].headers
    assert seen["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert key not in str(seen)
    assert "cookie" not in seen  # an upstream's cookie is never replayed for another person
    assert UPSTREAM_KEY not in served.server.log()
