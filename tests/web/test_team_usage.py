"""Usage by team and department: the team-usage API, the filters of every report, the
teams export. A team's totals are the sum of its people's rows."""

from __future__ import annotations

import csv
import io
import re
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


@pytest.mark.usefixtures("loaded")
def test_the_page_filters_groups_and_compares(app: Any, get_report: Callable[..., Any]) -> None:
    from tests.web.signed_in import signed_in_client

    query = "start=2026-11-23&end=2026-11-24&tz=America/New_York"
    with signed_in_client(app) as page:
        html = page.get(f"/reporting/user-usage?{query}").text
        # The filters list the values in use with their people, "none" last.
        assert re.search(r'<option value="Data">Data \(2\)</option>', html)
        assert re.search(r'<option value="\(none\)">No team \(2\)</option>', html)
        assert re.search(r'<option value="Engineering">Engineering \(4\)</option>', html)
        filtered = page.get(f"/reporting/user-usage?{query}&team=Platform").text
        assert _names(filtered) == ["Bo", "Ana"] or _names(filtered) == ["Ana", "Bo"]
        assert re.search(r'<option value="Platform" selected>', filtered)
        # The chart and the export links carry the filter.
        assert "team=Platform" in filtered.split('data-series-url="')[1].split('"')[0]
        grouped = page.get(f"/reporting/user-usage?{query}&group=team").text
        links = re.findall(r'<a class="group-link" href="([^"]+)">([^<]+)</a>', grouped)
        assert [label for _, label in links] == ["Data", "Platform", "No team"]
        data_link = links[0][0].replace("&amp;", "&")
        assert "team=Data" in data_link
        assert "group" not in data_link
        assert _names(page.get(data_link).text) == ["Cy"]  # Fay has no usage
        # Compare: the change of each person's tokens vs the two days before.
        compared = page.get(f"/reporting/user-usage?{query}&compare=1").text
        assert 'id="change-header"' in compared
        assert re.search(r'id="totals-change">new<', compared)  # nothing before
        assert page.get(f"/reporting/user-usage?{query}&group=floor").status_code == 400


def _names(html: str) -> list[str]:
    return re.findall(r'class="user-name[^"]*"[^>]*>([^<]*)<', html)


def test_previous_usage_is_the_report_of_the_previous_range(db: Database) -> None:
    from datetime import date

    from tokenledger.ingest import ingest
    from tokenledger.localdays import LocalRange, zone
    from tokenledger.reports import previous_range, previous_usage, user_usage
    from tokenledger.store.usage_store import UsageStore
    from tokenledger.usage import UserFilter

    store = UsageStore(db)
    events = [
        make_event(user={"id": f"p{i % 3}"}, started_at=at, input_tokens=i + 1)
        for i, at in enumerate(
            [
                *("2026-03-28T23:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"),
                *("2026-03-30T12:00:00Z", "2026-03-31T22:59:00Z", "2026-04-01T00:00:00Z"),
            ]
        )
    ]
    assert ingest(store, events, now_us=2**62).count("accepted") == 6
    paris = zone("Europe/Paris")  # DST starts on 2026-03-29
    current = LocalRange.of(date(2026, 3, 31), date(2026, 4, 1), paris)
    before = previous_range(current)
    assert (before.start, before.end) == (date(2026, 3, 29), date(2026, 3, 30))
    compared = previous_usage(store, local_range=current, users=UserFilter())
    report = user_usage(store, local_range=before)
    assert compared.totals.metrics() == report.totals.metrics()
    for row in report.rows:
        assert compared.of(row.user_pk).metrics() == row.usage.metrics()
