"""The gateway in process, on SQLite and PostgreSQL: refusals in each provider's
format, the budget seam, the body limit, timeouts, and the event it records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_event
from tests.gateway.conftest import InProcess, person, tokens
from tests.support.fake_upstream import OPENAI_TOKENS
from tokenledger.auth.keys import create_key
from tokenledger.budgets.check import Budgets
from tokenledger.gateway.budget import BudgetInfo, Decision
from tokenledger.ingest import ingest
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

CHAT = "/gateway/openai/v1/chat/completions"
MESSAGES_PATH = "/gateway/anthropic/v1/messages"
REQUEST: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
ANTHROPIC_REQUEST: dict[str, Any] = {**REQUEST, "model": "claude-x", "max_tokens": 5}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Refusing:
    """A budget gate that refuses everyone, as a block budget at 100 % would."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def check(self, user_id: str, *, now_us: int) -> Decision:
        self.asked.append(user_id)
        budget = BudgetInfo(
            id="b-7",
            metric="tokens",
            limit=2_000_000,
            used=2_000_412,
            period_start_us=1_793_491_200_000_000,  # 2026-11-01T00:00:00Z
            period_end_us=1_796_083_200_000_000,  # 2026-12-01T00:00:00Z
        )
        return Decision(allowed=False, retry_after_s=518_400, budget=budget)


def test_over_budget_is_a_429_in_each_format_and_nothing_is_forwarded(
    make_gateway: Any,
) -> None:
    gate = Refusing()
    gateway: InProcess = make_gateway(budget_gate=gate)
    user_id = person()
    key = gateway.person_key(user_id)
    forwarded = len(gateway.upstream.requests)
    answer = gateway.client.post(CHAT, json=REQUEST, headers=_bearer(key))
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "518400"
    assert answer.headers["x-should-retry"] == "false"  # the clients would retry in vain
    budget = {
        "id": "b-7",
        "metric": "tokens",
        "limit": 2_000_000,
        "used": 2_000_412,
        "period_start": "2026-11-01T00:00:00+00:00",
        "period_end": "2026-12-01T00:00:00+00:00",
    }
    message = (
        f"{user_id} is over a budget: 2000412 of 2000000 tokens used; it resets at "
        "2026-12-01T00:00:00+00:00"
    )
    assert answer.json() == {
        "error": {
            "message": message,
            "type": "budget_exceeded",
            "param": None,
            "code": "budget_exceeded",
            "budget": budget,
        }
    }
    anthropic = gateway.client.post(
        MESSAGES_PATH, json=ANTHROPIC_REQUEST, headers={"x-api-key": key}
    )
    assert anthropic.status_code == 429
    assert anthropic.json() == {
        "type": "error",
        "error": {"type": "budget_exceeded", "message": message, "budget": budget},
    }
    assert gate.asked == [user_id, user_id]
    assert len(gateway.upstream.requests) == forwarded
    assert gateway.ledger.events(user_id) == []


def test_the_default_gate_lets_requests_through_and_they_are_recorded(make_gateway: Any) -> None:
    gateway: InProcess = make_gateway()
    user_id = person()
    answer = gateway.client.post(CHAT, json=REQUEST, headers=_bearer(gateway.person_key(user_id)))
    assert answer.status_code == 200
    [event] = gateway.ledger.events(user_id)  # recorded before the answer ended
    assert answer.headers["x-tokenledger-event-id"] == event["event_id"]
    assert tokens(event) == {**OPENAI_TOKENS, "cache_write": None}
    assert event["status"] == "ok"
    assert event["started_us"] == 1_795_608_000_000_000  # the app's clock
    assert event["metadata"] == {
        "gateway": "chat.completions",
        "key_id": event["metadata"]["key_id"],
        "requested_model": "gpt-4o",
        "stream": False,
        "upstream": "fake-openai",
        "upstream_status": 200,
    }


def test_an_upstream_timeout_is_a_504_and_an_error_event_without_usage(
    make_gateway: Any,
) -> None:
    gateway: InProcess = make_gateway(gateway_timeout_s=0.5)
    user_id = person()
    body = {**REQUEST, "model": "gpt-4o-slow"}
    answer = gateway.client.post(CHAT, json=body, headers=_bearer(gateway.person_key(user_id)))
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "upstream_timeout"
    [event] = gateway.ledger.events(user_id)
    assert event["status"] == "error"
    assert event["metadata"]["error"] == "upstream_timeout"
    assert event["metadata"]["usage_missing"] is True  # it was sent: tokens may be used


def test_an_unreachable_upstream_is_a_502_with_nothing_used(
    make_gateway: Any, tmp_path: Path
) -> None:
    config = tmp_path / "closed.toml"
    config.write_text(
        '[[upstreams]]\nname = "gone"\nkind = "openai"\nbase_url = "http://127.0.0.1:9"\n'
    )
    gateway: InProcess = make_gateway(gateway_config=str(config))
    user_id = person()
    answer = gateway.client.post(CHAT, json=REQUEST, headers=_bearer(gateway.person_key(user_id)))
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_unreachable"
    [event] = gateway.ledger.events(user_id)
    assert event["status"] == "error"
    assert "usage_missing" not in event["metadata"]  # never reached: nothing used


def test_a_body_over_the_ingest_limit_is_refused_in_the_providers_format(
    make_gateway: Any,
) -> None:
    gateway: InProcess = make_gateway(max_body_bytes=2048)
    key = gateway.person_key(person())
    big = {**REQUEST, "messages": [{"role": "user", "content": "x" * 4000}]}
    openai_answer = gateway.client.post(CHAT, json=big, headers=_bearer(key))
    assert openai_answer.status_code == 413
    assert openai_answer.json()["error"]["code"] == "payload_too_large"
    anthropic_answer = gateway.client.post(
        MESSAGES_PATH, json={**big, "max_tokens": 5}, headers={"x-api-key": key}
    )
    assert anthropic_answer.status_code == 413
    assert anthropic_answer.json() == {
        "type": "error",
        "error": {"type": "request_too_large", "message": "body is larger than 2048 bytes"},
    }


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no key", 401, "missing_api_key"),
        ("ingest key", 403, "insufficient_scope"),
        ("not JSON", 400, "invalid_json"),
        ("app key, no person", 400, "missing_user"),
        ("app key, user not a string", 400, "invalid_user"),
        ("app key, header with spaces", 400, "invalid_user"),
        ("model not allowed", 404, "model_not_found"),
    ],
)
def test_refusals(
    make_gateway: Any, db: Any, tmp_path: Path, case: str, status: int, code: str
) -> None:
    config = tmp_path / "only-o3.toml"
    config.write_text(
        '[[upstreams]]\nname = "o3"\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'models = ["o3-*"]\n'
    )
    gateway: InProcess = make_gateway(gateway_config=str(config))
    app_key = create_key(db, name="app", scope="gateway-app", now_us=0)[1]
    requests: dict[str, dict[str, Any]] = {
        "no key": {"json": REQUEST},
        "ingest key": {
            "json": REQUEST,
            "headers": _bearer(create_key(db, name="i", scope="ingest", now_us=0)[1]),
        },
        "not JSON": {"content": b"{not json", "headers": _bearer(app_key)},
        "app key, no person": {"json": REQUEST, "headers": _bearer(app_key)},
        "app key, user not a string": {"json": {**REQUEST, "user": 7}, "headers": _bearer(app_key)},
        "app key, header with spaces": {
            "json": REQUEST,
            "headers": {**_bearer(app_key), "X-TokenLedger-User": " emp-1 "},
        },
        "model not allowed": {"json": REQUEST, "headers": _bearer(gateway.person_key(person()))},
    }
    answer = gateway.client.post(CHAT, **requests[case])
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]


def test_without_upstreams_the_gateway_says_so(make_gateway: Any) -> None:
    gateway: InProcess = make_gateway(gateway_config="")
    key = gateway.person_key(person())
    answer = gateway.client.post(MESSAGES_PATH, json=ANTHROPIC_REQUEST, headers={"x-api-key": key})
    assert answer.status_code == 404
    assert answer.json() == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "the gateway has no anthropic upstream configured",
        },
    }


def test_a_person_key_speaks_for_its_person_only(make_gateway: Any) -> None:
    gateway: InProcess = make_gateway()
    user_id = person()
    headers = {**_bearer(gateway.person_key(user_id)), "X-TokenLedger-User": "someone-else"}
    answer = gateway.client.post(CHAT, json={**REQUEST, "user": "another"}, headers=headers)
    assert answer.status_code == 200
    assert len(gateway.ledger.events(user_id)) == 1
    assert gateway.ledger.events("someone-else") == gateway.ledger.events("another") == []


def test_budget_end_to_end_over_the_limit_then_refused_then_raised(
    make_gateway: Any, db: Database
) -> None:
    """The real budgets (the default gate): a monthly ``block`` budget of tokens."""
    budgets = Budgets(UsageStore(db))
    spec: dict[str, Any] = {
        "name": "monthly",
        "scope": "everyone",
        "scope_value": None,
        "metric": "tokens",
        "period": "month",
        "timezone": "UTC",
        "thresholds": None,
        "action": "block",
    }
    budget = budgets.create(actor="tests", client=None, now_us=0, limit=100_000, **spec)
    gateway: InProcess = make_gateway()
    user_id = person()
    earlier = make_event(
        user={"id": user_id},
        started_at="2026-11-25T11:00:00Z",
        input_tokens=99_000,
        output_tokens=0,
    )
    stored = ingest(UsageStore(db), [earlier], now_us=1_795_608_000_000_000)
    assert stored.count("accepted") == 1
    headers = _bearer(gateway.person_key(user_id))
    # At 99 %: allowed (the check comes before), and this request takes them over.
    assert gateway.client.post(CHAT, json=REQUEST, headers=headers).status_code == 200
    refused = gateway.client.post(CHAT, json=REQUEST, headers=headers)
    assert refused.status_code == 429
    # To the end of the period: 2026-12-01T00:00Z is 5.5 days after the clock's noon.
    assert refused.headers["retry-after"] == str(int(5.5 * 86400))
    assert refused.json()["error"]["budget"]["used"] == 99_000 + 2854 + 412
    budgets.update(budget.id, actor="tests", client=None, now_us=0, limit=200_000, **spec)
    # Raised: the next request goes through.
    assert gateway.client.post(CHAT, json=REQUEST, headers=headers).status_code == 200
    assert len(gateway.ledger.events(user_id)) == 3  # the earlier one and two through
