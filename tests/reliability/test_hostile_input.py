"""Hostile input to POST /api/v1/events: each gets a clear 4xx and stores nothing, and
strange but valid text (SQL-looking, right-to-left, emoji) is stored and shown as sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.store.database import Database

MIB = 1024 * 1024


def _counts(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        events = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        users = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    return int(events), int(users)


def _envelope(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _padded_to(size: int) -> bytes:
    """A valid one-event body of exactly ``size`` bytes (JSON whitespace)."""
    body = _envelope(make_event(event_id="padded"))
    return body[:-1] + b" " * (size - len(body)) + body[-1:]


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


# name, body, content type, status, error code (envelope) or event code (422)
ENVELOPE_CASES: list[tuple[str, bytes, str | None, int, str]] = [
    ("malformed JSON", b'{"events": [{"event_id": "x",', "application/json", 400, "invalid_json"),
    ("trailing garbage", _envelope(make_event()) + b"}", "application/json", 400, "invalid_json"),
    ("text/plain", _envelope(make_event()), "text/plain", 415, "unsupported_media_type"),
    (
        "form",
        b"events=1",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    ("no content type", _envelope(make_event()), None, 415, "unsupported_media_type"),
    ("empty body", b"", "application/json", 400, "empty_body"),
    ("only whitespace", b" \r\n\t ", "application/json", 400, "empty_body"),
    (
        "1001 events",
        _envelope(*[make_event(event_id=f"e{i}") for i in range(1001)]),
        "application/json",
        413,
        "too_many_events",
    ),
    ("5 MiB + 1 byte", _padded_to(5 * MIB + 1), "application/json", 413, "payload_too_large"),
    (
        "10 MB string",
        _envelope(make_event(user={"id": "u", "name": "x" * 10_000_000})),
        "application/json",
        413,
        "payload_too_large",
    ),
    (
        "JSON nested 100,000 deep",
        b'{"events": [{"metadata": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001 + b"]}",
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "invalid UTF-8",
        b'{"events": [{"event_id": "\xff\xfe"}]}',
        "application/json",
        400,
        "invalid_utf8",
    ),
    (
        "overlong UTF-8",
        b'{"events": [{"event_id": "\xc0\xaf"}]}',
        "application/json",
        400,
        "invalid_utf8",
    ),
    (
        "raw NUL byte",
        b'{"events": [{"event_id": "a\x00b"}]}',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "duplicate top-level key",
        b'{"events": [], "events": [{"event_id": "x"}]}',
        "application/json",
        400,
        "duplicate_key",
    ),
    (
        "duplicate key in an event",
        _envelope(make_event(input_tokens=1))[:-3] + b', "input_tokens": 2}]}',
        "application/json",
        400,
        "duplicate_key",
    ),
    ("NaN", b'{"events": [{"input_tokens": NaN}]}', "application/json", 400, "invalid_json"),
    ("not an object", b'"events"', "application/json", 400, "invalid_envelope"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in ENVELOPE_CASES],
)
def test_a_hostile_body_gets_a_clear_4xx_and_stores_nothing(
    client: TestClient,
    ingest_key: str,
    db: Database,
    body: bytes,
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    headers = {"Authorization": f"Bearer {ingest_key}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post("/api/v1/events", content=body, headers=headers)
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == code
    assert len(error["message"]) > 10
    assert _counts(db) == (0, 0)


def test_size_limits_hold_without_a_content_length(
    client: TestClient, ingest_key: str, db: Database
) -> None:
    # Chunked: the limit is enforced while reading, not only from the header.
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"}
    response = client.post(
        "/api/v1/events", content=_chunks(_padded_to(5 * MIB + 1)), headers=headers
    )
    assert "content-length" not in response.request.headers
    assert (response.status_code, response.json()["error"]["code"]) == (413, "payload_too_large")
    assert _counts(db) == (0, 0)
    # Exactly at the limit is fine, declared or not.
    for content in (_padded_to(5 * MIB), _chunks(_padded_to(5 * MIB))):
        response = client.post("/api/v1/events", content=content, headers=headers)
        assert response.status_code == 200, response.text
    assert _counts(db) == (1, 1)


EVENT_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("null user", {"user": None}, "invalid_type", "user"),
    ("number as string", {"input_tokens": "100"}, "invalid_type", "input_tokens"),
    ("float as string", {"duration_ms": "1.5"}, "invalid_type", "duration_ms"),
    ("metadata 17 deep", {"metadata": _nested(17)}, "metadata_too_deep", "metadata"),
    ("metadata 500 deep", {"metadata": _nested(500)}, "metadata_too_deep", "metadata"),
    ("escaped NUL in id", {"event_id": "a\u0000b"}, "invalid_string", "event_id"),
    ("escaped NUL in user", {"user": {"id": "u\u0000"}}, "invalid_string", "user.id"),
    ("NUL in metadata", {"metadata": {"k": "v\u0000"}}, "invalid_string", "metadata"),
    ("lone surrogate", {"model": "\ud800"}, "invalid_string", "model"),
]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in EVENT_CASES],
)
def test_a_hostile_event_is_rejected_with_422_and_nothing_stored(
    client: TestClient,
    ingest_key: str,
    db: Database,
    change: dict[str, Any],
    code: str,
    field: str,
) -> None:
    event = make_event()
    event.update(change)  # make_event(user=None) would drop the field instead
    response = client.post(
        "/api/v1/events",
        content=_envelope(event),  # ASCII JSON: "\\ud800" travels as an escape
        headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text[:300]
    item = response.json()["results"][0]
    assert (item["status"], item["code"]) == ("rejected", code)
    assert item["field"].startswith(field)
    assert field in item["message"]
    assert _counts(db) == (0, 0)


SQL_LOOKING = [
    "'; DROP TABLE events; --",
    "Robert'); DROP TABLE users;--",
    '" OR ""="',
    "1 OR 1=1",
    "%_\\",
    "$$; SELECT pg_sleep(10); $$",
]
FAR_AWAY_NAMES = [
    "مريم الخطيب",  # Arabic, right-to-left
    "שרה כהן",  # Hebrew
    "\u202eevil.exe",  # right-to-left override
    "👩🏽‍💻 Zoë 🇫🇷",  # emoji with skin tone, zero-width joiner, flag
    "Zoe\u0301 Ångström",  # combining accent, precomposed letters
    "田中 太郎",
]


def test_sql_looking_and_far_away_text_is_stored_and_shown_as_sent(
    post_events: Callable[..., Any], get_report: Callable[..., Any], db: Database
) -> None:
    names = SQL_LOOKING + FAR_AWAY_NAMES
    events = [
        make_event(
            event_id=name, user={"id": name, "name": name}, model=name, metadata={name: name}
        )
        for name in names
    ]
    response = post_events(events)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(names)
    report = get_report(start="2026-11-25", end="2026-11-25", tz="UTC", limit=500).json()
    assert sorted((row["user_id"], row["name"]) for row in report["users"]) == sorted(
        (name, name) for name in names
    )
    with db.read() as conn:
        stored = conn.execute(text("SELECT event_id, model FROM events")).all()
    assert sorted(stored) == sorted((name, name) for name in names)
    # Searching with SQL-looking text finds only what contains it, never everything.
    for name in SQL_LOOKING:
        found = get_report(start="2026-11-25", tz="UTC", q=name).json()["users"]
        assert [row["user_id"] for row in found] == [name]
    for name, query in [("مريم الخطيب", "مريم"), ("שרה כהן", "כהן"), ("田中 太郎", "太郎")]:
        found = get_report(start="2026-11-25", tz="UTC", q=query).json()["users"]
        assert [row["user_id"] for row in found] == [name]
    assert _counts(db) == (len(names), len(names))
