"""A person's attribute declared once (a team) filters and groups every report."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.reports import usage_by_attribute, usage_series, user_usage
from tokenledger.store.database import Database
from tokenledger.store.dimensions import UserAttribute
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter

TEAM = UserAttribute("team", "team")
TEAMS = {"ana": "Ops", "bo": "Ops", "cy": "Data", "di": None}
DAY = LocalRange.of(date(2026, 11, 25), date(2026, 11, 25), zone("Europe/Paris"))


@pytest.fixture
def store(db: Database) -> UsageStore:
    store = UsageStore(db, attributes=(TEAM,))  # declared here alone: only "team"
    events = [
        make_event(user={"id": person}, started_at=f"2026-11-25T0{hour}:00:00Z", input_tokens=10)
        for hour, person in enumerate(["ana", "ana", "bo", "cy", "di", "di", "di"])
    ]
    assert ingest(store, events, now_us=2**62).count("accepted") == 7
    with db.engine.begin() as conn:  # teams set directly
        for person, team in TEAMS.items():
            conn.execute(
                text("UPDATE users SET team = :team WHERE external_id = :id"),
                {"team": team, "id": person},
            )
    return store


def test_a_declared_attribute_filters_and_groups_usage(store: UsageStore) -> None:
    groups = usage_by_attribute(store, local_range=DAY, attribute="team")
    assert [(g.value, g.people, g.usage["requests"]) for g in groups] == [
        ("Data", 1, 1),
        ("Ops", 2, 3),
        (None, 1, 3),
    ]
    assert groups[1].usage["input_tokens"] == 30
    assert groups[1].usage.first_us is not None

    ops = UserFilter(where=(("team", "Ops"),))
    report = user_usage(store, local_range=DAY, users=ops)
    assert sorted(row.user_id for row in report.rows) == ["ana", "bo"]
    assert report.totals["requests"] == 3
    series = usage_series(store, local_range=DAY, interval="day", user_id="ana")
    assert series[0].usage["requests"] == 2
    nobody = user_usage(store, local_range=DAY, users=UserFilter(where=(("team", None),)))
    assert [row.user_id for row in nobody.rows] == ["di"]
    searched = UserFilter(q="a", where=(("team", "Ops"),))  # combined with a search
    assert [row.user_id for row in user_usage(store, local_range=DAY, users=searched).rows] == [
        "ana"
    ]
    with pytest.raises(ValueError, match="unknown attribute 'floor'"):
        user_usage(store, local_range=DAY, users=UserFilter(where=(("floor", "3"),)))
