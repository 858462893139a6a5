"""POST /api/v1/events: per-event outcomes, status codes, and nothing half-stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.store.database import Database


def _count(db: Database, sql: str, **params: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _stored_totals(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        row = conn.execute(
            text(
                "SELECT coalesce(sum(requests), 0), coalesce(sum(input_tokens), 0) "
                "FROM rollup_total_hour"
            )
        ).one()
    return int(row[0]), int(row[1])


def test_valid_batch_is_accepted_after_commit(
    post_events: Callable[..., Any], db: Database
) -> None:
    events = [make_event(), make_event(user={"id": "u-bob"})]
    response = post_events(events)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 0)
    assert [item["status"] for item in body["results"]] == ["accepted", "accepted"]
    assert [item["event_id"] for item in body["results"]] == [e["event_id"] for e in events]
    assert _count(db, "SELECT count(*) FROM events") == 2
    assert _stored_totals(db) == (2, 200)


LONG = "x" * 256
REJECTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing event_id", {"event_id": None}, "missing", "event_id"),
    ("empty event_id", {"event_id": ""}, "too_short", "event_id"),
    ("long event_id", {"event_id": LONG}, "too_long", "event_id"),
    ("event_id number", {"event_id": 12}, "invalid_type", "event_id"),
    ("missing user", {"user": None}, "missing", "user"),
    ("null user", {"user": "NULL"}, "invalid_type", "user"),
    ("user not object", {"user": "alice"}, "invalid_type", "user"),
    ("missing user.id", {"user": {"name": "A"}}, "missing", "user.id"),
    ("empty user.id", {"user": {"id": ""}}, "too_short", "user.id"),
    ("long user.id", {"user": {"id": LONG}}, "too_long", "user.id"),
    ("long user.name", {"user": {"id": "u", "name": LONG}}, "too_long", "user.name"),
    ("bad email", {"user": {"id": "u", "email": "not-an-email"}}, "invalid_email", "user.email"),
    ("unknown user field", {"user": {"id": "u", "mail": "a@b.c"}}, "unknown_field", "user.mail"),
    ("unknown field", {"inptu_tokens": 5}, "unknown_field", "inptu_tokens"),
    ("missing started_at", {"started_at": None}, "missing", "started_at"),
    ("no offset", {"started_at": "2026-11-25T10:00:00"}, "timestamp_without_offset", "started_at"),
    ("date only", {"started_at": "2026-11-25"}, "invalid_timestamp", "started_at"),
    ("not a date", {"started_at": "2026-02-30T10:00:00Z"}, "invalid_timestamp", "started_at"),
    ("epoch number", {"started_at": 1764064800}, "invalid_type", "started_at"),
    ("future", {"started_at": "2026-11-25T12:05:01Z"}, "future_timestamp", "started_at"),
    ("before 1900", {"started_at": "1899-12-31T23:59:59Z"}, "out_of_range", "started_at"),
    ("missing duration", {"duration_ms": None}, "missing", "duration_ms"),
    ("negative duration", {"duration_ms": -1}, "out_of_range", "duration_ms"),
    ("missing input", {"input_tokens": None}, "missing", "input_tokens"),
    ("missing output", {"output_tokens": None}, "missing", "output_tokens"),
    ("bool count", {"input_tokens": True}, "invalid_type", "input_tokens"),
    ("float count", {"output_tokens": 1.0}, "invalid_type", "output_tokens"),
    ("string count", {"input_tokens": "100"}, "invalid_type", "input_tokens"),
    ("negative count", {"output_tokens": -5}, "out_of_range", "output_tokens"),
    ("huge count", {"input_tokens": 2**53 + 1}, "out_of_range", "input_tokens"),
    ("cache read > input", {"cache_read_tokens": 101}, "part_exceeds_whole", "cache_read_tokens"),
    (
        "cache write > input",
        {"cache_write_tokens": 101},
        "part_exceeds_whole",
        "cache_write_tokens",
    ),
    ("reasoning > output", {"reasoning_tokens": 41}, "part_exceeds_whole", "reasoning_tokens"),
    ("negative part", {"reasoning_tokens": -1}, "out_of_range", "reasoning_tokens"),
    ("bad status", {"status": "failed"}, "invalid_value", "status"),
    ("long model", {"model": LONG}, "too_long", "model"),
    ("long provider", {"provider": LONG}, "too_long", "provider"),
    ("metadata list", {"metadata": [1, 2]}, "invalid_type", "metadata"),
    ("metadata too big", {"metadata": {"k": "v" * 8200}}, "metadata_too_large", "metadata"),
    (
        "metadata too deep",
        {"metadata": {"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}},
        "metadata_too_deep",
        "metadata",
    ),
    ("NUL in model", {"model": "gpt\u0000"}, "invalid_string", "model"),
    ("control in name", {"user": {"id": "u", "name": "a\u0007b"}}, "invalid_string", "user.name"),
]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [pytest.param(change, code, field, id=name) for name, change, code, field in REJECTIONS],
)
def test_each_rejection_has_its_code_and_stores_nothing(
    post_events: Callable[..., Any],
    db: Database,
    change: dict[str, Any],
    code: str,
    field: str,
) -> None:
    bad = make_event(**{"user": {"id": "u-rejected"}, **change})
    if change.get("user") == "NULL":
        bad["user"] = None
    good = make_event()
    response = post_events([good, bad])
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert results[0]["status"] == "accepted"
    rejected = results[1]
    assert (rejected["status"], rejected["code"], rejected["field"]) == ("rejected", code, field)
    assert field in rejected["message"]
    assert _count(db, "SELECT count(*) FROM events") == 1
    assert _count(db, "SELECT count(*) FROM users") == 1  # only the good event's user
    assert _stored_totals(db) == (1, 100)


def test_a_batch_with_every_event_rejected_gets_422_and_stores_nothing(
    post_events: Callable[..., Any], db: Database
) -> None:
    response = post_events([make_event(input_tokens="100"), make_event(user=None)])
    assert response.status_code == 422
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 0, 2)
    assert [item["code"] for item in body["results"]] == ["invalid_type", "missing"]
    assert _count(db, "SELECT count(*) FROM events") == 0
    event = make_event()
    assert post_events([event]).status_code == 200
    # A duplicate is stored (earlier): with it, a rejection is a partial success.
    assert post_events([event, make_event(user=None)]).status_code == 207


def test_a_timestamp_with_offset_is_stored_as_the_same_instant(
    post_events: Callable[..., Any], db: Database
) -> None:
    response = post_events([make_event(started_at="2026-11-25T15:30:00.123456789+05:30")])
    assert response.status_code == 200
    with db.read() as conn:
        started = conn.execute(text("SELECT started_us FROM events")).scalar_one()
    # 15:30:00.123456789+05:30 is 10:00:00.123456Z (nanoseconds truncated).
    assert started == int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**6 + 123456


def test_optional_fields_and_metadata_are_stored(
    post_events: Callable[..., Any], db: Database
) -> None:
    event = make_event(
        cache_read_tokens=60,
        cache_write_tokens=40,
        reasoning_tokens=40,
        status="error",
        metadata={"b": [1, {"c": None}], "a": "ü"},
    )
    assert post_events([event]).status_code == 200
    with db.read() as conn:
        row = conn.execute(text("SELECT * FROM events")).mappings().one()
    assert (row["cache_read_tokens"], row["cache_write_tokens"], row["reasoning_tokens"]) == (
        60,
        40,
        40,
    )
    assert row["status"] == "error"
    assert row["metadata"] == '{"a":"ü","b":[1,{"c":null}]}'


def test_totals_never_add_parts_again(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    assert (
        post_events(
            [
                make_event(
                    input_tokens=100,
                    output_tokens=50,
                    cache_read_tokens=80,
                    cache_write_tokens=20,
                    reasoning_tokens=50,
                )
            ]
        ).status_code
        == 200
    )
    totals = get_report().json()["totals"]
    assert totals["total_tokens"] == 150
    assert (totals["cache_read_tokens"], totals["reasoning_tokens"]) == (80, 50)


def test_a_batch_sent_twice_is_counted_once(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    events = [make_event(), make_event(user={"id": "u-bob"}), make_event()]
    assert post_events(events).json()["accepted"] == 3
    again = post_events(events)
    assert again.status_code == 200
    assert [item["status"] for item in again.json()["results"]] == ["duplicate"] * 3
    assert get_report().json()["totals"]["requests"] == 3


def test_duplicates_inside_one_batch_count_once(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    event = make_event()
    response = post_events([event, event, dict(event)])
    assert [item["status"] for item in response.json()["results"]] == [
        "accepted",
        "duplicate",
        "duplicate",
    ]
    assert get_report().json()["totals"]["requests"] == 1


def test_same_instant_in_another_offset_is_a_duplicate(
    post_events: Callable[..., Any],
) -> None:
    event = make_event(started_at="2026-11-25T10:00:00Z", metadata={"a": 1, "b": 2})
    assert post_events([event]).json()["accepted"] == 1
    same = {**event, "started_at": "2026-11-25T11:00:00+01:00", "metadata": {"b": 2, "a": 1}}
    assert post_events([same]).json()["results"][0]["status"] == "duplicate"


def test_same_id_with_other_content_is_a_conflict(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    event = make_event()
    assert post_events([event]).status_code == 200
    changed = {**event, "input_tokens": 999}
    response = post_events([changed])
    assert response.status_code == 422  # every event rejected: nothing stored
    item = response.json()["results"][0]
    assert (item["status"], item["code"], item["field"]) == ("rejected", "conflict", "event_id")
    inside = post_events(
        [make_event(event_id="twin"), make_event(event_id="twin", output_tokens=1)]
    )
    assert [r["status"] for r in inside.json()["results"]] == ["accepted", "rejected"]
    assert inside.json()["results"][1]["code"] == "conflict"
    assert get_report().json()["totals"]["input_tokens"] == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{not json", "invalid_json"),
        (b"[]", "invalid_envelope"),
        (b'{"events": {}}', "invalid_envelope"),
        (b'{"events": []}', "invalid_envelope"),
        (b'{"events": [], "extra": 1}', "invalid_envelope"),
        (b'{"evts": []}', "invalid_envelope"),
        (b'{"events": [{"a": 1, "a": 2}]}', "duplicate_key"),
        (b'{"events": [NaN]}', "invalid_json"),
        (b'{"events": ["\xff"]}', "invalid_utf8"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ],
)
def test_bodies_that_are_not_the_envelope_get_400(
    client: TestClient, ingest_key: str, db: Database, body: bytes, code: str
) -> None:
    response = client.post(
        "/api/v1/events",
        content=body,
        headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert _count(db, "SELECT count(*) FROM events") == 0


def test_too_many_events_and_too_large_bodies_get_413(
    post_events: Callable[..., Any], client: TestClient, ingest_key: str, db: Database
) -> None:
    response = post_events([make_event() for _ in range(1001)])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_many_events"
    big = b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}"
    response = client.post(
        "/api/v1/events",
        content=big,
        headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert _count(db, "SELECT count(*) FROM events") == 0


def test_wrong_content_type_gets_415(client: TestClient, ingest_key: str) -> None:
    response = client.post(
        "/api/v1/events",
        content=b'{"events": []}',
        headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


def test_keys_are_required_and_scoped(
    client: TestClient, post_events: Callable[..., Any], read_key: str, ingest_key: str
) -> None:
    body = {"events": [make_event()]}
    assert client.post("/api/v1/events", json=body).status_code == 401
    assert post_events([make_event()], key="tl_not-a-real-key").status_code == 401
    assert post_events([make_event()], key=read_key).status_code == 403
    reports = "/api/v1/reports/user-usage"
    assert client.get(reports).status_code == 401
    assert client.get(reports, headers={"Authorization": f"Bearer {ingest_key}"}).status_code == 403
    assert client.get(reports, headers={"Authorization": f"Bearer {read_key}"}).status_code == 200


def test_a_revoked_key_gets_401(
    post_events: Callable[..., Any], db: Database, ingest_key: str
) -> None:
    from tokenledger.auth.keys import find_key, revoke_key

    key = find_key(db, ingest_key)
    assert key is not None
    revoke_key(db, key.id, now_us=1)
    assert post_events([make_event()]).status_code == 401
