"""A person's team and department: from events (latest non-empty kept, as name and
e-mail) unless the people directory names them, which wins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.events import Event, Rejection, validate_event
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.store.database import Database
from tokenledger.store.people import Person, directory, import_people
from tokenledger.store.usage_store import UsageStore

NOW_US = to_us(datetime(2026, 11, 26, tzinfo=UTC))


def _send(db: Database, *events: dict[str, Any]) -> None:
    result = ingest(UsageStore(db), list(events), now_us=NOW_US)
    assert result.count("accepted") == len(events), result.outcomes


def _profile(db: Database, user_id: str) -> tuple[Any, ...]:
    with db.read() as conn:
        row = conn.execute(
            text(
                "SELECT name, email, department, team, search_key FROM users "
                "WHERE external_id = :id"
            ),
            {"id": user_id},
        ).one()
    return tuple(row)


def _event(at: str, **user: str) -> dict[str, Any]:
    return make_event(user={"id": "u-1", **user}, started_at=at)


def test_team_and_department_are_optional_checked_strings() -> None:
    def check(user: dict[str, Any]) -> Event | Rejection:
        return validate_event(make_event(user={"id": "u", **user}), now_us=NOW_US)

    event = check({"team": "Ops", "department": "IT"})
    assert isinstance(event, Event)
    assert (event.user_team, event.user_department) == ("Ops", "IT")
    blank = check({"team": "  "})
    assert isinstance(blank, Event)
    assert blank.user_team is None
    for user, code, field in [
        ({"team": "x" * 256}, "too_long", "user.team"),
        ({"department": 7}, "invalid_type", "user.department"),
        ({"team": "a\nb"}, "invalid_string", "user.team"),
        ({"department": "a\x00"}, "invalid_string", "user.department"),
    ]:
        rejected = check(user)
        assert isinstance(rejected, Rejection)
        assert (rejected.code, rejected.field) == (code, field)
        assert field in rejected.message
    assert isinstance(check({"team": "x" * 255}), Event)


def test_the_latest_non_empty_values_of_the_events_are_kept(db: Database) -> None:
    _send(
        db,
        _event("2026-11-25T10:00:00Z", team="Ops", department="IT"),
        _event("2026-11-25T09:00:00Z", team="Old"),  # older: ignored
        _event("2026-11-25T11:00:00Z", team=" "),  # blank: no value
    )
    assert _profile(db, "u-1")[2:4] == ("IT", "Ops")
    _send(db, _event("2026-11-25T12:00:00Z", team="Data"))  # a later batch
    assert _profile(db, "u-1")[2:4] == ("IT", "Data")
    _send(db, _event("2026-11-25T08:00:00Z", department="Old"))  # late arrival
    assert _profile(db, "u-1")[2:4] == ("IT", "Data")


def test_directory_values_win_over_the_events(db: Database) -> None:
    _send(db, _event("2026-11-25T10:00:00Z", name="Ann", team="Ops", department="IT"))
    result = import_people(
        db, [Person("u-1", name="Ann Lee", team="Platform"), Person("u-2", team="Data")], now_us=1
    )
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    name, _, department, team, key = _profile(db, "u-1")
    # The directory's team and name; its empty department leaves the events' one.
    assert (name, department, team) == ("Ann Lee", "IT", "Platform")
    assert "ann lee" in key
    # Later events change what the directory leaves empty, and nothing else.
    _send(db, _event("2026-11-25T12:00:00Z", name="A.", team="Ops2", department="Sales"))
    assert _profile(db, "u-1")[:4] == ("Ann Lee", None, "Sales", "Platform")
    # A person named only in the directory, without requests, then with one.
    assert _profile(db, "u-2")[3] == "Data"
    with db.read() as conn:
        first, last = conn.execute(
            text("SELECT first_us, last_us FROM users WHERE external_id = 'u-2'")
        ).one()
    assert first > last  # no activity span
    _send(db, make_event(user={"id": "u-2", "team": "Other"}, started_at="2026-11-25T09:00:00Z"))
    with db.read() as conn:
        first, last, team = conn.execute(
            text("SELECT first_us, last_us, team FROM users WHERE external_id = 'u-2'")
        ).one()
    assert first == last == to_us(datetime(2026, 11, 25, 9, tzinfo=UTC))
    assert team == "Data"

    # The same import again changes nothing; dropping a value gives it back to events.
    again = import_people(
        db, [Person("u-1", name="Ann Lee", team="Platform"), Person("u-2", team="Data")], now_us=2
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert [p.team for p in directory(db)] == ["Platform", "Data"]
    import_people(db, [Person("u-1", name="Ann Lee")], now_us=3)
    assert _profile(db, "u-1")[3] is None
    _send(db, _event("2026-11-25T07:00:00Z", team="Ops3"))  # any time: the field is free
    assert _profile(db, "u-1")[3] == "Ops3"
