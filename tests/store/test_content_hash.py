"""The content hash: a resend is a duplicate, any other content under its id a conflict,
whatever version of the hash the stored event was made with."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.events import Event, content_hash, validate_event
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.search import search_key
from tokenledger.store import migrate
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW_US = to_us(datetime(2026, 11, 25, 12, tzinfo=UTC))

FULL = {
    "user": {"id": "u-7", "name": "Zoë Ång", "email": "zoe@example.com"},
    "started_at": "2026-11-25T10:00:00.250+01:00",
    "duration_ms": 1500,
    "model": "gpt-4o",
    "provider": "openai",
    "input_tokens": 100,
    "output_tokens": 40,
    "cache_read_tokens": 10,
    "cache_write_tokens": 5,
    "reasoning_tokens": 3,
    "status": "ok",
    "metadata": {"app": "chat", "n": [1, 2]},
}
MINIMAL = {
    "user": {"id": "u-8", "name": "  "},  # a blank name is no name
    "started_at": "2026-11-25T09:00:00Z",
    "duration_ms": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "model": None,  # make_event leaves these out
    "provider": None,
}

# One field changed at a time: each makes a resend of the full event a conflict.
CHANGES: dict[str, dict[str, Any]] = {
    "status": {"status": "error"},
    "model": {"model": "gpt-4o-mini"},
    "model absent": {"model": None},
    "provider": {"provider": "azure"},
    "duration_ms": {"duration_ms": 1501},
    "input_tokens": {"input_tokens": 101},
    "output_tokens": {"output_tokens": 41},
    "cache_read_tokens": {"cache_read_tokens": 11},
    "cache_write_tokens": {"cache_write_tokens": 6},
    "cache_write_tokens absent": {"cache_write_tokens": None},
    "reasoning_tokens": {"reasoning_tokens": 4},
    "metadata": {"metadata": {"app": "mail", "n": [1, 2]}},
    "metadata absent": {"metadata": None},
    "user.name": {"user": {**FULL["user"], "name": "Zoe Ang"}},
    "user.email": {"user": {**FULL["user"], "email": "zoe@example.org"}},
    "user.id": {"user": {**FULL["user"], "id": "u-9"}},
    "started_at": {"started_at": "2026-11-25T10:00:00.251+01:00"},
    "user.team added": {"user": {**FULL["user"], "team": "Ops"}},
    "user.department added": {"user": {**FULL["user"], "department": "Finance"}},
}


def _event(event_id: str, fields: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return make_event(**{**fields, "event_id": event_id, **changes})


def _status(db: Database, raw: dict[str, Any]) -> tuple[str, str | None]:
    outcome = ingest(UsageStore(db), [raw], now_us=NOW_US).outcomes[0]
    return outcome.status, outcome.rejection.code if outcome.rejection else None


def _valid(raw: dict[str, Any]) -> Event:
    event = validate_event(raw, now_us=NOW_US)
    assert isinstance(event, Event)
    return event


def _old_hash(event: Event) -> bytes:
    """The hash as the code before version 2 computed it (events.py at 46718dd)."""
    canonical = (
        event.event_id,
        event.user_id,
        event.user_name,
        event.user_email,
        event.started_us,
        event.duration_ms,
        event.model,
        event.provider,
        event.input_tokens,
        event.output_tokens,
        event.cache_read_tokens,
        event.cache_write_tokens,
        event.reasoning_tokens,
        event.status,
        event.metadata,
    )
    return hashlib.sha256(orjson.dumps(canonical)).digest()


def _store_as_before_version_2(db: Database, raws: list[dict[str, Any]]) -> None:
    """Write events as the code before version 2 did: its columns, its hash, on the
    schema of that time (revision 0002), then upgrade the database as an install would."""
    config = migrate.alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    with db.write() as conn:
        for raw in raws:
            event = _valid(raw)
            user_pk = conn.execute(
                text(
                    "INSERT INTO users (external_id, name, email, search_key, first_us, last_us) "
                    "VALUES (:id, :name, :email, :key, :at, :at) RETURNING id"
                ),
                {
                    "id": event.user_id,
                    "name": event.user_name,
                    "email": event.user_email,
                    "key": search_key(event.user_id, event.user_name, event.user_email),
                    "at": event.started_us,
                },
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO events (event_id, user_pk, started_us, duration_ms, model, "
                    "provider, input_tokens, output_tokens, cache_read_tokens, "
                    "cache_write_tokens, reasoning_tokens, status, metadata, content_hash, "
                    "ingested_us) VALUES (:event_id, :user_pk, :started_us, :duration_ms, "
                    ":model, :provider, :input_tokens, :output_tokens, :cache_read_tokens, "
                    ":cache_write_tokens, :reasoning_tokens, :status, :metadata, :hash, :now)"
                ),
                {
                    **{name: getattr(event, name) for name in _EVENT_FIELDS},
                    "user_pk": user_pk,
                    "hash": _old_hash(event),
                    "now": NOW_US,
                },
            )
    migrate.upgrade(db)


_EVENT_FIELDS = (
    "event_id",
    "started_us",
    "duration_ms",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "status",
    "metadata",
)


def _stored_versions(db: Database) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT event_id, hash_version FROM events")).all()
    return {row[0]: row[1] for row in rows}


def test_events_stored_before_version_2_stay_duplicates_of_their_resends(db: Database) -> None:
    old_full, old_minimal = _event("old-full", FULL), _event("old-minimal", MINIMAL)
    _store_as_before_version_2(db, [old_full, old_minimal])
    assert _stored_versions(db) == {"old-full": 1, "old-minimal": 1}

    assert _status(db, old_full) == ("duplicate", None)
    assert _status(db, old_minimal) == ("duplicate", None)
    # The same instant spelt in another offset, a blank name left out: the same content.
    assert _status(db, {**old_full, "started_at": "2026-11-25T09:00:00.250Z"}) == (
        "duplicate",
        None,
    )
    assert _status(db, {**old_minimal, "user": {"id": "u-8"}}) == ("duplicate", None)
    # Any real change is a conflict, in the old version too.
    for name, change in CHANGES.items():
        # (a field set to null is absent, as in the API)
        assert _status(db, {**old_full, **change}) == ("rejected", "conflict"), name
    assert _status(db, {**old_minimal, "model": "m"}) == ("rejected", "conflict")
    # New events are stored in the current version, and old ones keep theirs.
    assert _status(db, _event("new", FULL)) == ("accepted", None)
    assert _stored_versions(db) == {"old-full": 1, "old-minimal": 1, "new": 2}


@pytest.mark.parametrize("field", list(CHANGES))
def test_a_resend_with_one_field_changed_is_a_conflict(db: Database, field: str) -> None:
    original = _event(f"e-{field}", FULL)
    assert _status(db, original) == ("accepted", None)
    changed = _event(f"e-{field}", FULL, **CHANGES[field])
    assert _status(db, changed) == ("rejected", "conflict")
    assert _status(db, original) == ("duplicate", None)
    # Within one batch too: the second occurrence of an id is compared with the first.
    batch_id = f"b-{field}"
    outcomes = ingest(
        UsageStore(db),
        [_event(batch_id, FULL), _event(batch_id, FULL, **CHANGES[field])],
        now_us=NOW_US,
    ).outcomes
    assert [outcome.status for outcome in outcomes] == ["accepted", "rejected"]


def test_absent_optional_fields_do_not_enter_the_hash() -> None:
    event = _valid(_event("e-1", MINIMAL))
    fields = {"event_id": "e-1", "user.id": "u-8", "started_at": event.started_us}
    fields |= {"duration_ms": 0, "input_tokens": 0, "output_tokens": 0, "status": "ok"}
    assert event.content_hash == content_hash(fields)
    # A field added to the contract later, absent from an event, changes nothing...
    assert content_hash({**fields, "user.team": None, "cost_usd": None}) == event.content_hash
    # ... present, it does; and version 1 cannot express it at all.
    assert content_hash({**fields, "user.team": "ops"}) != event.content_hash
    assert content_hash({**fields, "user.team": "ops"}, version=1) is None
    assert event.hash_in(1) == _old_hash(event)
    assert event.hash_in(2) == event.content_hash
    assert "status" in orjson.dumps(fields).decode()  # a field with a default is present
