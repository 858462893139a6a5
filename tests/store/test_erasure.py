"""Erasure: a person's name, e-mail and events' metadata gone from the database (the
SQLite file itself, after the WAL checkpoint) and from every export, their id a stable
pseudonym, their usage in every total, resends of their old events still recognised."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from tests.conftest import fresh_database_url, make_event
from tokenledger.auth import audit
from tokenledger.auth.keys import create_key, list_keys
from tokenledger.erasure import erase_person
from tokenledger.events import Event, validate_event
from tokenledger.export import CsvExport, ExportRequest
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, to_us, zone
from tokenledger.reports import user_usage
from tokenledger.settings import Settings
from tokenledger.store import erasure
from tokenledger.store.database import Database, open_database
from tokenledger.store.people import Person, import_people
from tokenledger.store.schema import metadata
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
KEY = b"k" * 40
USER_ID = "emp-7731-quixote"
NAME = "Zebulon Quixotic-Marchbanks"
EMAIL = "zebulon.qm@erasable.example"
SECRET_META = "Project-Blueberry-Xyzzy-42"
TEAM = "Skunkworks-Quux-Team"
DEPARTMENT = "Dept-of-Unlikely-Things"
DIRECTORY_NAME = "Zeb Q. Marchbanks-Directory"
# Values that must not survive anywhere: what was erased, and the user id itself.
ERASED = (USER_ID, NAME, EMAIL, SECRET_META, TEAM, DEPARTMENT, DIRECTORY_NAME)
RANGE = LocalRange.of(date(2026, 11, 1), date(2026, 11, 25), zone("Europe/Paris"))


@pytest.fixture
def store(db: Database) -> UsageStore:
    return UsageStore(db, erasure_key=KEY)


def _person_events(count: int) -> list[dict[str, Any]]:
    return [
        make_event(
            # A sender that builds event ids from the user id.
            event_id=f"{USER_ID}-req-{n}",
            user={
                "id": USER_ID,
                "name": NAME,
                "email": EMAIL,
                "team": TEAM,
                "department": DEPARTMENT,
            },
            started_at=(NOW - timedelta(hours=7 * n, microseconds=n)).isoformat(),
            metadata={"project": SECRET_META, "n": n},
            input_tokens=100 + n,
        )
        for n in range(count)
    ]


def _others(count: int) -> list[dict[str, Any]]:
    return [
        make_event(
            event_id=f"other-{n}",
            user={"id": f"colleague-{n % 3}", "name": f"Colleague {n % 3}"},
            started_at=(NOW - timedelta(hours=5 * n)).isoformat(),
        )
        for n in range(count)
    ]


def _event(raw: dict[str, Any]) -> Event:
    event = validate_event(raw, now_us=to_us(NOW))
    assert isinstance(event, Event)
    return event


def _totals(store: UsageStore) -> tuple[Any, ...]:
    report = user_usage(store, local_range=RANGE)
    return report.total_users, report.totals.raw, sorted(row.usage.raw for row in report.rows)


def _exports(store: UsageStore) -> bytes:
    return b"".join(
        b"".join(CsvExport(store, ExportRequest(local_range=RANGE, granularity=granularity)))
        for granularity in ("summary", "daily", "events")
    )


def _all_rows_text(db: Database) -> str:
    """Every row of every table, as text (what PostgreSQL holds)."""
    found = []
    with db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(table.select()):
                found.append(repr(tuple(row)))
    return "\n".join(found)


def _stored_bytes(db: Database) -> bytes:
    """The SQLite database file and its WAL, as bytes on disk."""
    path = db.sqlite_file
    assert path is not None
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_erasure_leaves_no_byte_of_the_person_and_keeps_their_usage(
    store: UsageStore, backend: str
) -> None:
    person = _person_events(60)
    assert ingest(store, person + _others(30), now_us=to_us(NOW)).count("accepted") == 90
    # The directory knows the person too (its values win over the events').
    directory = Person(USER_ID, name=DIRECTORY_NAME, team=TEAM, department=DEPARTMENT)
    import_people(store.db, [directory], now_us=to_us(NOW))
    hashes = [_event(event).content_hash for event in person]
    totals = _totals(store)
    before = _exports(store)
    assert all(value.encode() in before for value in (USER_ID, DIRECTORY_NAME, EMAIL, TEAM))

    done = erase_person(
        store, user_id=USER_ID, actor="cli:tester", now_us=to_us(NOW), batch_size=25
    )

    assert done.pseudonym == erasure.pseudonym(KEY, USER_ID)
    assert (done.events, done.batches) == (60, 4)  # 90 event ids, 25 per transaction
    assert set(done.cleared) >= {"name", "email"}
    assert _totals(store) == totals  # same numbers, same people count
    assert not any(store.verify().values())
    exported = _exports(store)
    assert done.pseudonym.encode() in exported
    for value in ERASED:
        assert value.encode() not in exported, value
    rows = _all_rows_text(store.db)
    for value in ERASED:
        assert value not in rows, value
    if backend == "sqlite":
        on_disk = _stored_bytes(store.db)
        for value in ERASED:
            assert value.encode() not in on_disk, value
        for digest in hashes:  # a plain hash of the person's events is guessable
            assert digest not in on_disk
    entry = audit.entries(store.db, action=audit.PERSON_ERASED)[0]
    assert entry.details["pseudonym"] == done.pseudonym
    assert entry.details["events_rewritten"] == 60
    assert all(value not in json.dumps(entry.details) for value in ERASED)
    with store.read() as reader:
        (_, profile), *_ = reader.matching_users(UserFilter(user_id=done.pseudonym))
    assert profile == (done.pseudonym, None, None)


def test_resends_after_erasure_count_once_and_new_events_are_stored_erased(
    store: UsageStore,
) -> None:
    person = _person_events(5)
    ingest(store, person + _others(4), now_us=to_us(NOW))
    erase_person(store, user_id=USER_ID, actor="t", now_us=to_us(NOW))
    totals = _totals(store)

    retry = ingest(store, person, now_us=to_us(NOW))
    assert [o.status for o in retry.outcomes] == ["duplicate"] * 5
    changed = ingest(store, [{**person[0], "input_tokens": 1}], now_us=to_us(NOW))
    assert changed.outcomes[0].status == "rejected"
    assert changed.outcomes[0].rejection is not None
    assert changed.outcomes[0].rejection.errors[0].code == "conflict"
    assert _totals(store) == totals

    later = make_event(
        event_id=f"{USER_ID}-req-later",
        user={"id": USER_ID, "name": NAME, "email": EMAIL},
        started_at=NOW.isoformat(),
        metadata={"project": SECRET_META},
    )
    assert ingest(store, [later], now_us=to_us(NOW)).outcomes[0].status == "accepted"
    assert ingest(store, [later], now_us=to_us(NOW)).outcomes[0].status == "duplicate"
    assert _totals(store)[1] != totals[1]  # counted, once
    assert _totals(store)[0] == totals[0]  # under the pseudonym: nobody new
    rows = _all_rows_text(store.db)
    for value in ERASED:
        assert value not in rows, value
    assert not any(store.verify().values())


def test_erasure_is_stable_repeatable_and_refused_without_a_key(
    db: Database, store: UsageStore
) -> None:
    ingest(store, _person_events(3), now_us=to_us(NOW))
    create_key(db, name="", scope="gateway", user_id=USER_ID, now_us=0)
    create_key(db, name="Zeb's laptop", scope="gateway", user_id=USER_ID, now_us=0)
    with pytest.raises(erasure.ErasureKeyMissing):
        erasure.erase(UsageStore(db), user_id=USER_ID)
    with pytest.raises(erasure.UnknownPerson):
        erasure.erase(store, user_id="nobody-here")
    assert not erasure.has_erased(db)
    first = erasure.erase(store, user_id=USER_ID)
    assert erasure.has_erased(db)
    again = erasure.erase(store, user_id=USER_ID)
    assert first.pseudonym == again.pseudonym == erasure.pseudonym(KEY, USER_ID)
    assert (first.events, again.events) == (3, 0)
    assert erasure.pseudonym(b"another key" * 4, USER_ID) != first.pseudonym
    # The person's gateway keys name the pseudonym (and a key named after the id too).
    keys = sorted((key.name, key.user_id) for key in list_keys(db))
    assert keys == [("Zeb's laptop", first.pseudonym), (first.pseudonym, first.pseudonym)]
    with db.read() as conn:
        ids = [row[0] for row in conn.execute(text("SELECT event_id FROM events"))]
    assert all(erasure.is_erased_id(event_id) for event_id in ids)


def test_without_secure_delete_the_old_bytes_would_stay_in_the_file(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``secure_delete`` is for: the same erasure without it (the default of many
    SQLite builds; Debian's turns it on) leaves the user id in the file's free space,
    so the byte search above can fail. SQLite only."""
    url = fresh_database_url(request, "sqlite", tmp_path)
    db = open_database(Settings(database_url=url))
    request.addfinalizer(db.dispose)
    store = UsageStore(db, erasure_key=KEY)

    @contextmanager
    def plain(conn: Connection) -> Iterator[None]:  # as SQLite builds without it do
        conn.exec_driver_sql("PRAGMA secure_delete = OFF")
        yield
        conn.exec_driver_sql("PRAGMA secure_delete = ON")

    monkeypatch.setattr(erasure, "secure_delete", plain)
    ingest(store, _person_events(60) + _others(30), now_us=to_us(NOW))
    erase_person(store, user_id=USER_ID, actor="t", now_us=to_us(NOW))
    assert USER_ID not in _all_rows_text(store.db)
    assert USER_ID.encode() in _stored_bytes(store.db)
