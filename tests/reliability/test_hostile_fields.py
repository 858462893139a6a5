"""Every string field of an event, with every kind of hostile character: a lone
surrogate, NUL, control characters and bidirectional controls.

Each batch carries one valid event beside the hostile ones. Whatever is hostile, the
answer is never a 5xx, each hostile event is rejected on its own with a code and its
field (or, where the character is allowed, accepted and stored as sent), the valid
event is stored, the answer echoes what it can encode, and the same batch sent again
gets the same answer with the valid event a duplicate: a retrying client never loops.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.store.database import Database

HOSTILE = {
    "lone surrogate": "\ud800",
    "low surrogate": "\udfff",
    "NUL": "\x00",
    "bell": "\x07",
    "escape": "\x1b",
    "newline": "\n",
    "delete": "\x7f",
    "right-to-left override": "\u202e",
    "first-strong isolate": "\u2068",
}
# Characters no text may hold, metadata included; and those only metadata may hold.
SURROGATES = {"lone surrogate", "low surrogate"}
NEVER = {*SURROGATES, "NUL"}
METADATA_ONLY = {"bell", "escape", "newline", "delete"}


def _place(event: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    """``event`` with the hostile ``value`` put into ``field``."""
    event = json.loads(json.dumps(event))
    if field == "metadata value":
        event["metadata"] = {"app": "chat", "nested": [{"k": f"v{value}"}]}
    elif field == "metadata key":
        event["metadata"] = {f"k{value}": 1}
    elif field == "field name":
        event[f"x{value}"] = 1
    elif field == "user field name":
        event["user"][f"x{value}"] = 1
    elif field.startswith("user."):
        event["user"][field[5:]] = (
            f"a{value}@example.com" if field == "user.email" else f"x{value}y"
        )
    elif field == "started_at":
        event[field] = f"2026-11-25T10:00:00{value}Z"
    elif field == "status":
        event[field] = f"ok{value}"
    else:
        event[field] = f"x{value}y"
    return event


FIELDS = [
    "event_id",
    "user.id",
    "user.name",
    "user.email",
    "started_at",
    "model",
    "provider",
    "status",
    "metadata value",
    "metadata key",
    "field name",
    "user field name",
]


def _expected(field: str, kind: str) -> tuple[str, str] | None:
    """(code, field) of the rejection, or None when the event is accepted."""
    if kind in SURROGATES:  # one code wherever it is
        where = "metadata" if field.startswith("metadata") else field
        return "invalid_string", {"field name": "x", "user field name": "user.x"}.get(where, where)
    if field == "status":
        return "invalid_value", "status"
    if field in {"field name", "user field name"}:
        prefix = "user." if field.startswith("user") else ""
        return "unknown_field", prefix + "x"
    if field.startswith("metadata"):
        return ("invalid_string", "metadata") if kind in NEVER else None
    if kind in NEVER or kind in METADATA_ONLY:
        return "invalid_string", field
    if field == "started_at":
        return "invalid_timestamp", field
    if field == "user.email":  # bidirectional controls are no part of an address
        return "invalid_email", field
    return None


@pytest.mark.parametrize("kind", HOSTILE)
def test_every_string_field_with_a_hostile_character_is_one_events_problem(
    client: TestClient, ingest_key: str, db: Database, kind: str
) -> None:
    good = make_event(event_id="the-valid-one")
    hostile = [
        _place(make_event(event_id=f"hostile-{number}"), field, HOSTILE[kind])
        for number, field in enumerate(FIELDS)
    ]
    body = json.dumps({"events": [good, *hostile]}).encode()  # ASCII: "\ud800" as an escape
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"}
    first = client.post("/api/v1/events", content=body, headers=headers)
    again = client.post("/api/v1/events", content=body, headers=headers)

    assert first.status_code == 207, first.text[:500]
    results = first.json()["results"]
    assert results[0] == {"index": 0, "status": "accepted", "event_id": "the-valid-one"}
    accepted = ["the-valid-one"]
    for field, item in zip(FIELDS, results[1:], strict=True):
        expected = _expected(field, kind)
        if expected is None:
            assert item["status"] == "accepted", (field, item)
            accepted.append(item["event_id"])
        else:
            assert (item["status"], item["code"]) == ("rejected", expected[0]), (field, item)
            assert item["field"].startswith(expected[1]), (field, item)
            assert item["field"] in item["message"], (field, item)
    assert again.status_code == 207, again.text[:500]
    statuses = [item["status"] for item in again.json()["results"]]
    assert statuses == [
        "duplicate" if item["status"] == "accepted" else "rejected" for item in results
    ]
    with db.read() as conn:
        stored = conn.execute(text("SELECT event_id FROM events ORDER BY event_id")).scalars()
        assert list(stored) == sorted(accepted)


def test_an_echoed_event_id_with_a_lone_surrogate_is_escaped_and_the_valid_event_acknowledged(
    client: TestClient, ingest_key: str, db: Database
) -> None:
    # The reproduction of issue 11 (4a): the answer failed to encode after the commit,
    # so the stored valid event was never acknowledged, and every retry failed again.
    body = json.dumps({"events": [make_event(event_id="ok"), make_event(event_id="a\ud800")]})
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"}
    for status in ("accepted", "duplicate"):
        response = client.post("/api/v1/events", content=body.encode(), headers=headers)
        assert response.status_code == 207, response.text
        ok, bad = response.json()["results"]
        assert ok == {"index": 0, "status": status, "event_id": "ok"}
        assert (bad["status"], bad["code"], bad["field"]) == (
            "rejected",
            "invalid_string",
            "event_id",
        )
        assert bad["event_id"] == "a\\ud800"  # shown as its escape, the rest as sent
        assert "lone surrogate" in bad["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b'{"events":[' + b"1" * 5000 + b"]}", "invalid_json", id="5,000 digits"),
        pytest.param(b'{"events":[-' + b"9" * 4301 + b"]}", "invalid_json", id="4,301 digits"),
        pytest.param(b'{"\\ud800": []}', "invalid_envelope", id="surrogate top-level key"),
    ],
)
def test_numbers_and_keys_json_allows_but_python_cannot_hold_get_a_400(
    client: TestClient, ingest_key: str, db: Database, body: bytes, code: str
) -> None:
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"}
    response = client.post("/api/v1/events", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 0


@pytest.mark.parametrize(
    ("field", "raw", "code"),
    [
        pytest.param("metadata", '{"x": 1e309}', "out_of_range", id="1e309"),
        pytest.param("metadata", '{"x": [-1e400]}', "out_of_range", id="-1e400"),
        pytest.param("duration_ms", "1e309", "invalid_type", id="duration"),
        pytest.param("input_tokens", "1e2", "invalid_type", id="float count"),
    ],
)
def test_a_number_beyond_the_float_range_is_rejected_not_changed(
    client: TestClient, ingest_key: str, db: Database, field: str, raw: str, code: str
) -> None:
    # Issue 11 (8): 1e309 was stored as null without a word.
    event = json.dumps(make_event(event_id="huge", **{field: None}))
    hostile = f'{event[:-1]}, "{field}": {raw}}}'
    body = f'{{"events": [{json.dumps(make_event(event_id="fine"))}, {hostile}]}}'
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"}
    response = client.post("/api/v1/events", content=body.encode(), headers=headers)
    assert response.status_code == 207, response.text
    item = response.json()["results"][1]
    assert (item["status"], item["code"], item["field"]) == ("rejected", code, field)
    with db.read() as conn:
        stored = conn.execute(text("SELECT event_id, metadata FROM events")).all()
    assert [tuple(row) for row in stored] == [("fine", None)]
