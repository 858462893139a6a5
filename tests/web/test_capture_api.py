"""The capture receivers over HTTP, on SQLite and PostgreSQL: answers as the OTLP
specification says, gzip within the body limit, retries that change nothing."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tokenledger.capture import receive
from tokenledger.store.database import DatabaseUnavailable

START_NS = 1_795_600_000_000_000_000  # 2026-11-25T09:46:40Z (the clock says 12:00)
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"stringValue": value}
    return {"intValue": str(value)}


def export_json(spans: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """An OTLP/JSON export: hex ids, int64 as strings, one span per (span id, attributes)."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "chat"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "tests"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": span_id,
                                "name": "chat",
                                "kind": 3,
                                "startTimeUnixNano": str(START_NS),
                                "endTimeUnixNano": START_NS + 1_500_000_000,
                                "status": {"code": "STATUS_CODE_OK"},
                                "attributes": [
                                    {"key": key, "value": _value(value)}
                                    for key, value in attributes.items()
                                ],
                                "futureField": {"ignored": True},
                            }
                            for span_id, attributes in spans
                        ],
                    }
                ],
            }
        ]
    }


USAGE = {"user.id": "emp-7", "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 80}
SPANS = [
    ("eee19b7ec3c1b174", USAGE),
    ("eee19b7ec3c1b175", {"http.route": "/search"}),
    ("eee19b7ec3c1b176", {**USAGE, "gen_ai.usage.output_tokens": "eighty"}),
]


def export_protobuf(spans: list[tuple[str, dict[str, Any]]]) -> bytes:
    from google.protobuf.json_format import ParseDict

    document = export_json(spans)
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:  # protobuf's JSON mapping has ids in base64
                import base64

                for key in ("traceId", "spanId"):
                    span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
                del span["futureField"]
    request = ParseDict(document, ExportTraceServiceRequest())
    serialized: bytes = request.SerializeToString()
    return serialized


@pytest.fixture
def post(client: TestClient, ingest_key: str) -> Callable[..., Any]:
    def send(path: str, content: bytes, headers: dict[str, str], key: str | None = None) -> Any:
        auth = {"Authorization": f"Bearer {key or ingest_key}"} if key != "" else {}
        return client.post(path, content=content, headers={**auth, **headers})

    return send


def _user(get_report: Callable[..., Any], user_id: str) -> dict[str, Any]:
    rows = get_report(start="2026-11-25", end="2026-11-25", tz="UTC").json()["users"]
    return next(row for row in rows if row["user_id"] == user_id)


def test_protobuf_export_partial_success_and_retry(
    post: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    body = export_protobuf(SPANS)
    answers = [post("/v1/traces", body, PROTOBUF) for _ in range(2)]  # the second is a retry
    for response in answers:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-protobuf"
        answer = ExportTraceServiceResponse.FromString(response.content)
        assert answer.partial_success.rejected_spans == 1
        message = answer.partial_success.error_message
        assert "span eee19b7ec3c1b176: gen_ai.usage.output_tokens" in message
        assert "1 spans without GenAI usage ignored" in message
    row = _user(get_report, "emp-7")
    assert (row["requests"], row["input_tokens"], row["output_tokens"], row["duration_ms"]) == (
        1,
        1200,
        80,
        1500,
    )


def test_json_export_with_gzip(post: Callable[..., Any], get_report: Callable[..., Any]) -> None:
    body = gzip.compress(orjson.dumps(export_json(SPANS[:1])))
    response = post(
        "/v1/traces", body, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}  # all accepted: nothing to say
    assert _user(get_report, "emp-7")["input_tokens"] == 1200


def test_an_export_of_spans_without_usage_stores_nothing_and_says_so(
    post: Callable[..., Any],
) -> None:
    body = orjson.dumps(export_json([SPANS[1]]))
    response = post("/v1/traces", body, {"Content-Type": "application/json"})
    assert response.json() == {
        "partialSuccess": {
            "rejectedSpans": "0",
            "errorMessage": "1 spans without GenAI usage ignored",
        }
    }


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"\x0a\x05garbage", PROTOBUF, 400),
        (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400),
        (b"", {**PROTOBUF, "Content-Encoding": "br"}, 415),
        (gzip.compress(b"\x00" * (6 * 1024 * 1024)), {**PROTOBUF, "Content-Encoding": "gzip"}, 413),
    ],
    ids=["bad protobuf", "bad gzip", "brotli", "gzip bomb"],
)
def test_bad_requests_get_a_status_message(
    post: Callable[..., Any], content: bytes, headers: dict[str, str], status: int
) -> None:
    response = post("/v1/traces", content, headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/x-protobuf"
    assert RpcStatus.FromString(response.content).message


def test_other_content_types_are_refused(post: Callable[..., Any]) -> None:
    response = post("/v1/traces", b"{}", {"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]


@pytest.mark.parametrize(
    "document",
    [
        [1],
        {"resourceSpans": {}},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "zz"}]}]}]},
    ],
)
def test_bad_json_gets_a_json_status(post: Callable[..., Any], document: Any) -> None:
    response = post("/v1/traces", orjson.dumps(document), {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert response.json()["message"]


def test_keys_are_checked(post: Callable[..., Any], read_key: str) -> None:
    body = export_protobuf(SPANS[:1])
    assert post("/v1/traces", body, PROTOBUF, key="").status_code == 401
    forbidden = post("/v1/traces", body, PROTOBUF, key=read_key)
    assert forbidden.status_code == 403
    assert "ingest" in RpcStatus.FromString(forbidden.content).message


def test_an_unavailable_database_is_a_503_to_retry(
    post: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: Any, **_kwargs: Any) -> None:
        raise DatabaseUnavailable("disk full")

    monkeypatch.setattr(receive, "receive_export", unavailable)
    response = post("/v1/traces", export_protobuf(SPANS[:1]), PROTOBUF)
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert RpcStatus.FromString(response.content).code == 14


def litellm_log(call_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "litellm_call_id": call_id,
        "status": "success",
        "model": "claude-sonnet-4",
        "custom_llm_provider": "anthropic",
        "startTime": 1795600000.25,
        "endTime": 1795600001.75,
        "response_cost": 0.0123,
        "metadata": {
            "user_api_key_user_id": "emp-8",
            "user_api_key_team_alias": "Research",
            "usage_object": {
                "input_tokens": 21,
                "cache_read_input_tokens": 188086,
                "cache_creation_input_tokens": 0,
                "output_tokens": 393,
            },
        },
        **overrides,
    }


LITELLM = "/api/v1/integrations/litellm"
JSON_TYPE = {"Content-Type": "application/json"}


def test_litellm_batch_partial_and_resent(
    post: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    batch = [litellm_log("call-1"), litellm_log("call-2", status="failure"), {"startTime": 1.0}]
    first = post(LITELLM, orjson.dumps(batch), JSON_TYPE)
    assert first.status_code == 207
    assert [item["status"] for item in first.json()["results"]] == [
        "accepted",
        "accepted",
        "rejected",
    ]
    assert first.json()["results"][2]["field"] == "litellm_call_id"
    again = post(LITELLM, orjson.dumps(batch), JSON_TYPE)
    assert [item["status"] for item in again.json()["results"]] == [
        "duplicate",
        "duplicate",
        "rejected",
    ]
    row = _user(get_report, "emp-8")
    assert (row["requests"], row["error_requests"], row["input_tokens"]) == (2, 1, 2 * 188107)
    assert (row["cache_read_tokens"], row["output_tokens"], row["duration_ms"]) == (
        2 * 188086,
        2 * 393,
        2 * 1500,
    )


def test_litellm_ndjson_and_single(
    post: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    ndjson = b"\n".join(orjson.dumps(litellm_log(f"nd-{n}")) for n in range(3))
    assert post(LITELLM, ndjson, JSON_TYPE).json()["accepted"] == 3
    assert post(LITELLM, orjson.dumps(litellm_log("single")), JSON_TYPE).json()["accepted"] == 1
    assert _user(get_report, "emp-8")["requests"] == 4


def test_litellm_same_call_id_other_content_is_a_conflict(post: Callable[..., Any]) -> None:
    post(LITELLM, orjson.dumps(litellm_log("call-9")), JSON_TYPE)
    changed = post(LITELLM, orjson.dumps(litellm_log("call-9", model="other")), JSON_TYPE)
    assert changed.status_code == 422
    assert changed.json()["results"][0]["code"] == "conflict"


def test_litellm_refuses_what_is_not_json(post: Callable[..., Any]) -> None:
    assert post(LITELLM, b"{}", {"Content-Type": "text/plain"}).status_code == 415
    response = post(LITELLM, b"[oops", JSON_TYPE)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    assert post(LITELLM, b"[]", JSON_TYPE, key="").status_code == 401
