"""Structured logs: the JSON line, request ids, and no secret in it."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_event
from tokenledger.observability.logs import (
    REQUEST_ID,
    JsonFormatter,
    logging_config,
    redact,
    request_id_from,
)

KEY = "tl_" + "Ab3_-x9Z" + "q" * 35  # the shape of a real key: tl_ and 43 characters


@pytest.fixture
def lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines TokenLedger's loggers have written so far in the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tokenledger")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _format(message: str, *args: Any, **extra: Any) -> dict[str, Any]:
    record = logging.getLogger("tokenledger.test").makeRecord(
        "tokenledger.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    parsed: dict[str, Any] = orjson.loads(JsonFormatter().format(record))
    return parsed


def test_a_line_has_time_level_logger_message_and_extra_fields() -> None:
    line = _format("database unavailable: %s", "connection refused", detail="port 5432", n=3)
    assert set(line) == {"time", "level", "logger", "message", "detail", "n"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert line["level"] == "warning"
    assert line["logger"] == "tokenledger.test"
    assert line["message"] == "database unavailable: connection refused"
    assert (line["detail"], line["n"]) == ("port 5432", 3)


def test_a_line_written_during_a_request_carries_its_id() -> None:
    token = REQUEST_ID.set("req-42")
    try:
        assert _format("inside")["request_id"] == "req-42"
    finally:
        REQUEST_ID.reset(token)
    assert "request_id" not in _format("outside")


def test_an_exception_is_one_field_of_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    text = JsonFormatter().format(record)
    assert "\n" not in text
    assert "ValueError: boom" in orjson.loads(text)["exception"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY} used", "key tl_Ab3_-x9Z[redacted] used"),
        (f"Authorization: Bearer {KEY}", "Authorization: Bearer [redacted]"),
        ("Authorization: bearer abc.def", "Authorization: bearer [redacted]"),
        ("password=hunter2&next=/", "password=[redacted]&next=/"),
        ('{"password": "hunter2"}', '{"password": "[redacted]"}'),
        ("cookie: tokenledger_session=abc", "cookie: [redacted]"),
        ("__Host-tokenledger_session=abc; Path=/", "__Host-tokenledger_session=[redacted]; Path=/"),
        ("csrf_token=abc", "csrf_token=[redacted]"),
        ("the password must have 12 characters", "the password must have 12 characters"),
        ("key tl_Ab3_-x9Z… (chat)", "key tl_Ab3_-x9Z… (chat)"),  # a key's shown prefix
    ],
)
def test_credentials_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_extra_fields_are_masked_too() -> None:
    line = _format("request", header=f"Bearer {KEY}", values={"k": KEY})
    assert KEY not in orjson.dumps(line).decode()


@pytest.mark.parametrize(
    "sent", ["abc-123", "0f8c2a4e-6f1b-4c3e-9d2a-1b2c3d4e5f60", "trace:span/1+2=3@edge", "x" * 128]
)
def test_a_sane_request_id_is_kept(sent: str) -> None:
    assert request_id_from(sent) == sent


@pytest.mark.parametrize(
    "sent", [None, "", "x" * 129, "two words", "line\nbreak", "-leading", "é", KEY, "<script>"]
)
def test_any_other_request_id_is_replaced_by_a_new_one(sent: str | None) -> None:
    made = request_id_from(sent)
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert made != request_id_from(sent)


def test_each_request_gets_an_id_and_a_log_line(
    client: TestClient, ingest_key: str, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    sent = client.post(
        "/api/v1/events",
        json={"events": [make_event()]},
        headers={"Authorization": f"Bearer {ingest_key}", "X-Request-ID": "gateway-7f3a"},
    )
    generated = client.get("/admin/accounts/42", follow_redirects=False)
    refused = client.get("/healthz", headers={"X-Request-ID": "bad id"})
    assert sent.headers["x-request-id"] == "gateway-7f3a"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert refused.headers["x-request-id"] != "bad id"
    requests = [line for line in lines() if line["logger"] == "tokenledger.request"]
    assert [(r["method"], r["route"], r["path"], r["status"]) for r in requests] == [
        ("POST", "/api/v1/events", "/api/v1/events", 200),
        ("GET", "/admin/accounts/{account_id}", "/admin/accounts/42", 303),
        ("GET", "/healthz", "/healthz", 200),
    ]
    assert [r["request_id"] for r in requests] == [
        "gateway-7f3a",
        generated.headers["x-request-id"],
        refused.headers["x-request-id"],
    ]
    for line in requests:
        assert line["level"] == "info"
        assert line["duration_ms"] >= 0
        assert line["client"] == "testclient"
        assert line["message"] == f"{line['method']} {line['route']} {line['status']}"


def test_the_query_string_is_never_logged(
    client: TestClient, read_key: str, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    client.get(
        "/api/v1/reports/user-usage",
        params={"q": "Nguyễn Thị Thảo", "token": "s3cr3t"},
        headers={"Authorization": f"Bearer {read_key}"},
    )
    written = lines()  # the request's line, and perhaps the alert thread's sweep
    requests = [line for line in written if line["logger"] == "tokenledger.request"]
    assert [line["path"] for line in requests] == ["/api/v1/reports/user-usage"]
    text = orjson.dumps(written).decode()
    assert "s3cr3t" not in text
    assert "Nguy" not in text
    assert read_key not in text


def test_the_logging_config_sends_every_logger_to_json_on_stderr() -> None:
    config = logging_config("warning")
    assert config["root"] == {"handlers": ["stderr"], "level": "WARNING"}
    assert config["handlers"]["stderr"]["stream"] == "ext://sys.stderr"
    assert config["formatters"]["json"]["()"] == "tokenledger.observability.logs.JsonFormatter"
    assert config["loggers"]["uvicorn.error"] == {"handlers": [], "propagate": True}
    assert config["loggers"]["sqlalchemy"] == {"level": "WARNING"}
