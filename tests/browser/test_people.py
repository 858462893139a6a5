"""Teams and the person view in a real browser: usage table -> person -> back, the team
filter, the By team view, the compare toggle; axe on each."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BROWSER_ZONE, PEOPLE, LiveSite, screenshot, sign_in
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.store.people import Person, import_people

AXE = next((Path(__file__).parent / "vendor").glob("axe-*.js"))
pytestmark = pytest.mark.browser


def _team(index: int) -> str | None:
    return ("Platform", "Data", None)[index % 3]


@pytest.fixture(scope="module")
def teams(live: LiveSite) -> LiveSite:
    """The seeded people in teams (Platform, Data, none) by a directory import."""
    db = open_database(Settings(database_url=live.database_url))
    people = [
        Person(user_id, team=_team(index), department="Engineering" if index % 2 else "Sales")
        for index, (user_id, _, _) in enumerate(PEOPLE)
    ]
    import_people(db, people, now_us=1)
    db.dispose()
    return live


def _today() -> date:
    return datetime.now(ZoneInfo(BROWSER_ZONE)).date()


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def _wait_idle(page: Page) -> None:
    page.wait_for_function(
        "() => { const r = document.getElementById('usage-results');"
        " return r && !r.hasAttribute('aria-busy'); }"
    )


def _names(page: Page) -> list[str]:
    return page.locator(".usage-table tbody .user-name").all_inner_texts()


def _axe(page: Page) -> list[dict[str, Any]]:
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v["impact"] in {"serious", "critical"}]


def _open(page: Page, live: LiveSite, query: str) -> None:
    sign_in(page, live, next_path="/admin/keys")
    page.goto(f"{live.url}/reporting/user-usage?{query}")
    _wait_idle(page)


def test_usage_table_to_a_person_and_back(page: Page, teams: LiveSite) -> None:
    start = _today() - timedelta(days=6)
    _open(page, teams, f"start={start}&end={_today()}&tz={BROWSER_ZONE}&q=Person+01")
    first = page.locator(".usage-table tbody .person-link").first
    name = first.inner_text()
    first.click()
    page.wait_for_url(re.compile(r"/reporting/people/emp-01\d"))
    expect(page.locator("#person-name")).to_have_text(name)
    user_id = page.url.split("/reporting/people/")[1].split("?")[0]
    api = teams.api(
        f"/api/v1/reports/people/{user_id}", start=str(start), end=str(_today()), tz=BROWSER_ZONE
    )
    expect(page.locator("#card-requests")).to_have_text(f"{api['usage']['requests']:,}")
    heat = sum(int(t or 0) for t in page.locator(".heat-cell").all_inner_texts())
    assert heat == api["usage"]["requests"]
    page.wait_for_function("() => document.getElementById('person-chart').dataset.drawn")
    assert _axe(page) == []
    screenshot(page, "person-view.png")
    page.locator("#back-link").click()
    page.wait_for_url(re.compile(r"/reporting/user-usage\?"))
    _wait_idle(page)
    query = _query(page)
    assert query["start"] == [str(start)]
    assert query["tz"] == [BROWSER_ZONE]
    assert query["q"] == ["Person 01"]
    expect(page.locator("#usage-search")).to_have_value("Person 01")
    page.go_back()
    page.wait_for_url(re.compile(r"/reporting/people/"))
    page.go_back()
    page.wait_for_url(re.compile(r"/reporting/user-usage\?"))


def test_team_filter_and_by_team_view(page: Page, teams: LiveSite) -> None:
    start = _today() - timedelta(days=13)
    _open(page, teams, f"start={start}&end={_today()}&tz={BROWSER_ZONE}")
    page.locator("#usage-team").select_option("Platform")
    page.wait_for_function("() => location.search.includes('team=Platform')")
    _wait_idle(page)
    expected = teams.api(
        "/api/v1/reports/user-usage",
        start=str(start),
        end=str(_today()),
        tz=BROWSER_ZONE,
        team="Platform",
        limit="50",
    )
    expect(page.locator(".usage-table tbody .user-name")).to_have_text(
        [row["name"] for row in expected["users"]]
    )
    assert page.locator("#usage-chart").get_attribute("data-series-url").count("team=Platform")
    page.locator("#usage-team").select_option("")
    page.wait_for_function("() => !location.search.includes('team=')")
    _wait_idle(page)

    page.get_by_role("link", name="By team").click()
    page.wait_for_url(re.compile(r"group=team"))
    groups = teams.api(
        "/api/v1/reports/team-usage", start=str(start), end=str(_today()), tz=BROWSER_ZONE
    )
    expect(page.locator(".group-link")).to_have_text([g["label"] for g in groups["groups"]])
    assert _axe(page) == []
    screenshot(page, "user-usage-by-team.png")
    page.locator(".group-link", has_text="Data").click()
    page.wait_for_url(re.compile(r"team=Data"))
    _wait_idle(page)
    assert "group" not in _query(page)
    data = next(g for g in groups["groups"] if g["label"] == "Data")
    assert len(_names(page)) == min(50, data["people_active"])
    expect(page.locator("#usage-team")).to_have_value("Data")


def test_compare_toggle_sorts_by_growth(page: Page, teams: LiveSite) -> None:
    start = _today() - timedelta(days=6)
    _open(page, teams, f"start={start}&end={_today()}&tz={BROWSER_ZONE}")
    toggle = page.locator("#compare-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    page.wait_for_url(re.compile(r"compare=1"))
    _wait_idle(page)
    expect(page.locator("#compare-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#change-header")).to_be_visible()
    expect(page.locator("#totals-change")).to_have_text(re.compile(r"^([+-]\d+%|0%|new)$"))
    page.locator("#change-header a").click()
    page.wait_for_function("() => location.search.includes('token_change')")
    _wait_idle(page)
    expect(page.locator("#change-header")).to_have_attribute("aria-sort", "descending")
    assert _axe(page) == []
