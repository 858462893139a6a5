"""Usage by team and department: the team-usage API, the filters of every report, the
teams export. A team's totals are the sum of its people's rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import make_event
from tokenledger.store.database import Database
from tokenledger.store.people import Person, import_people

RANGE = {"start": "2026-11-23", "end": "2026-11-24", "tz": "America/New_York"}
PEOPLE = {  # user id: (team, department) sent in events
    "ana": ("Platform", "Engineering"),
    "bo": ("Platform", "Engineering"),
    "cy": ("Data", "Engineering"),
    "di": (None, "Sales"),
    "ed": (None, None),
}


def _events() -> list[dict[str, Any]]:
    events = []
    for index, (person, (team, department)) in enumerate(sorted(PEOPLE.items()) * 3):
        user: dict[str, Any] = {"id": person, "name": person.title()}
        if team:
            user["team"] = team
        if department:
            user["department"] = department
        events.append(
            make_event(
                user=user,
                started_at=f"2026-11-2{3 + index % 2}T1{index % 10}:00:00Z",
                input_tokens=10 * (index + 1),
                output_tokens=index,
                duration_ms=100 * index,
                status="error" if index % 4 == 0 else "ok",
            )
        )
    return events


@pytest.fixture
def loaded(post_events: Callable[..., Any], db: Database) -> None:
    assert post_events(_events()).status_code == 200
    # A person of the directory without usage, in Data.
    import_people(db, [Person("fay", name="Fay", team="Data", department="Engineering")], now_us=1)


METRICS = ("requests", "error_requests", "input_tokens", "output_tokens", "total_tokens")


@pytest.mark.usefixtures("loaded")
@pytest.mark.parametrize("by", ["team", "department"])
def test_team_totals_are_the_sum_of_their_peoples_rows(
    get_report: Callable[..., Any], by: str
) -> None:
    groups = get_report("/api/v1/reports/team-usage", by=by, **RANGE).json()
    no_label = "No team" if by == "team" else "No department"
    seen_people = 0
    for group in groups["groups"]:
        value = group[by]
        filtered = get_report(
            **RANGE, **{by: "(none)" if value is None else value}, include_inactive="true"
        ).json()
        assert group["label"] == (no_label if value is None else value)
        for name in METRICS:
            assert group[name] == sum(row[name] for row in filtered["users"]), (value, name)
            assert group[name] == filtered["totals"][name]
        assert group["people"] == len(filtered["users"])
        assert group["people_active"] == sum(1 for row in filtered["users"] if row["requests"])
        seen_people += group["people"]
    assert seen_people == 6
    everyone = get_report(**RANGE).json()["totals"]
    for name in METRICS:
        assert groups["totals"][name] == everyone[name]
    if by == "team":
        assert [(g["label"], g["people_active"], g["people"]) for g in groups["groups"]] == [
            ("Data", 1, 2),
            ("Platform", 2, 2),
            ("No team", 2, 2),
        ]


@pytest.mark.usefixtures("loaded")
def test_filters_combine_with_search_and_reach_series_and_exports(
    get_report: Callable[..., Any], client: Any, read_key: str
) -> None:
    platform = get_report(**RANGE, team="Platform").json()
    assert sorted(row["user_id"] for row in platform["users"]) == ["ana", "bo"]
    assert [
        row["user_id"] for row in get_report(**RANGE, team="Platform", q="an").json()["users"]
    ] == ["ana"]
    engineering_data = get_report(**RANGE, team="Data", department="Engineering").json()
    assert [row["user_id"] for row in engineering_data["users"]] == ["cy"]
    series = get_report("/api/v1/reports/usage-series", **RANGE, team="Platform").json()
    assert sum(p["total_tokens"] for p in series["points"]) == platform["totals"]["total_tokens"]
    export = client.get(
        "/api/v1/reports/user-usage/export",
        params={**RANGE, "team": "Platform"},
        headers={"Authorization": f"Bearer {read_key}"},
    )
    rows = list(csv.DictReader(io.StringIO(export.text, newline="")))
    assert sorted((r["user_id"], r["team"], r["department"]) for r in rows) == [
        ("ana", "Platform", "Engineering"),
        ("bo", "Platform", "Engineering"),
    ]
    teams = client.get(
        "/api/v1/reports/user-usage/export",
        params={**RANGE, "granularity": "teams", "by": "department"},
        headers={"Authorization": f"Bearer {read_key}"},
    )
    by_department = list(csv.DictReader(io.StringIO(teams.text, newline="")))
    assert [(r["department"], r["people"]) for r in by_department] == [
        ("Engineering", "4"),
        ("Sales", "1"),
        ("", "1"),
    ]


def test_bad_filters_are_a_400_naming_the_field(get_report: Callable[..., Any]) -> None:
    for path in ("/api/v1/reports/user-usage", "/api/v1/reports/team-usage"):
        response = get_report(path, team="x" * 256)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("team:")
        response = get_report(path, department="a\x00b")
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("department:")
    assert get_report("/api/v1/reports/team-usage", by="floor").status_code == 400
