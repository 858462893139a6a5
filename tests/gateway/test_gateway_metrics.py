"""The gateway's requests and upstream latency on ``/metrics``."""

from __future__ import annotations

from typing import Any

from tests.gateway.conftest import InProcess, person
from tests.gateway.test_gateway_app import CHAT, REQUEST
from tests.observability.conftest import Samples, parse_metrics, value
from tokenledger.auth.keys import create_key

REQUESTS = "tokenledger_gateway_requests_total"
LATENCY = "tokenledger_gateway_upstream_latency_seconds_count"


def _scrape(gateway: InProcess) -> Samples:
    key = create_key(gateway.db, name="prometheus", scope="metrics", now_us=0)[1]
    answer = gateway.client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    return parse_metrics(answer.text)


def _chat(gateway: InProcess, key: str, **changes: Any) -> Any:
    return gateway.client.post(
        CHAT, json={**REQUEST, **changes}, headers={"Authorization": f"Bearer {key}"}
    )


def test_gateway_requests_and_upstream_latency_after_known_traffic(make_gateway: Any) -> None:
    gateway: InProcess = make_gateway(gateway_timeout_s=0.5)
    key = gateway.person_key(person())
    for _ in range(3):
        assert _chat(gateway, key).status_code == 200
    refused = _chat(gateway, "tl_not_a_key")
    slow = _chat(gateway, key, model="gpt-4o-slow")
    assert (refused.status_code, slow.status_code) == (401, 504)

    samples = _scrape(gateway)
    chat = {"kind": "openai", "endpoint": "chat.completions"}
    assert value(samples, REQUESTS, **chat, upstream="fake-openai", status="200", error="") == 3
    refusal = refused.json()["error"]["code"]
    assert value(samples, REQUESTS, **chat, upstream="", status="401", error=refusal) == 1
    timeout = {"upstream": "fake-openai", "status": "504", "error": "upstream_timeout"}
    assert value(samples, REQUESTS, **chat, **timeout) == 1
    # Three answers came back; the slow one never did.
    assert value(samples, LATENCY, upstream="fake-openai") == 3
    assert (
        value(samples, "tokenledger_gateway_upstream_latency_seconds_sum", upstream="fake-openai")
        > 0
    )
