"""Reporting > User Usage in a real browser, section by section of the product guide."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BROWSER_ZONE, LiveSite, screenshot, sign_in

AXE = next((Path(__file__).parent / "vendor").glob("axe-*.js"))
pytestmark = pytest.mark.browser


def _today() -> date:
    return datetime.now(ZoneInfo(BROWSER_ZONE)).date()


def _state(page: Page) -> dict[str, str]:
    state: dict[str, str] = page.eval_on_selector("#usage-state", "el => ({...el.dataset})")
    return state


def _wait_for(page: Page, **expected: str) -> None:
    """Wait until the page's view state has ``expected`` and no request is running."""
    conditions = " && ".join(f"s.dataset.{key} === {value!r}" for key, value in expected.items())
    page.wait_for_function(
        "() => { const s = document.getElementById('usage-state');"
        " const r = document.getElementById('usage-results');"
        f" return s && r && !r.hasAttribute('aria-busy') && {conditions or 'true'}; }}"
    )


def _rows(page: Page) -> list[tuple[str, int, int]]:
    """(name, requests, total tokens) of the table's rows, numbers as shown."""
    rows = []
    for row in page.locator(".usage-table tbody tr").all():
        cells = row.locator("td")
        name = cells.nth(0).locator(".user-name").inner_text()
        requests = int(re.sub(r"\D", "", cells.nth(1).locator("[data-num]").first.inner_text()))
        tokens = int(re.sub(r"\D", "", cells.nth(2).locator("[data-num]").first.inner_text()))
        rows.append((name, requests, tokens))
    return rows


def _api_rows(live: LiveSite, **params: str) -> list[tuple[str, int, int]]:
    report = live.api("/api/v1/reports/user-usage", tz=BROWSER_ZONE, limit="50", **params)
    return [(r["name"], r["requests"], r["total_tokens"]) for r in report["users"]]


def _open_user_usage(page: Page, live: LiveSite) -> None:
    sign_in(page, live, next_path="/admin/keys")
    page.get_by_text("Reporting", exact=True).click()
    page.get_by_role("link", name="User Usage").click()
    page.wait_for_url(re.compile(r"/reporting/user-usage"))
    _wait_for(page, tz=BROWSER_ZONE)


def test_nav_default_today_and_table_match_the_api(page: Page, live: LiveSite) -> None:
    _open_user_usage(page, live)
    expect(page.get_by_role("heading", level=1)).to_have_text("User Usage")
    description = page.locator("#usage-description")
    expect(description).to_contain_text("AI usage per user")
    expect(description).to_contain_text(BROWSER_ZONE)  # the zone came from the browser
    today = _today().isoformat()
    state = _state(page)
    assert (state["start"], state["end"], state["tz"]) == (today, today, BROWSER_ZONE)
    expect(page.locator("#range-button-label")).to_have_text("Today")
    report = live.api("/api/v1/reports/user-usage", tz=BROWSER_ZONE)
    assert _rows(page) == _api_rows(live)
    expect(page.locator("#usage-count")).to_have_text(
        f"1–{min(50, report['total_users'])} of {report['total_users']:,} users"
    )
    screenshot(page, "user-usage-1280.png")
    screenshot(page, "user-usage-1280-viewport.png", full_page=False)


def test_search_filters_as_you_type_ignoring_accents(page: Page, live: LiveSite) -> None:
    _open_user_usage(page, live)
    page.evaluate("() => { window.__sameDocument = true; }")
    search = page.get_by_label("Search users by name or email")
    search.press_sequentially("nguyen", delay=40)  # no Enter
    _wait_for(page, q="nguyen")
    assert [row[0] for row in _rows(page)] == ["Nguyễn Thị Thảo"]
    assert "q=nguyen" in page.url
    search.fill("")
    search.press_sequentially("DANG", delay=40)
    _wait_for(page, q="DANG")
    assert [row[0] for row in _rows(page)] == ["Đặng Văn Lâm"]
    search.fill("xyz")
    _wait_for(page, q="xyz")
    today = _today()
    expect(page.locator(".empty-state")).to_contain_text(
        f"No users match 'xyz' on {today:%b} {today.day}"
    )
    assert page.evaluate("() => window.__sameDocument === true")  # no full reload


def _pick_days(page: Page, first: date, last: date) -> None:
    page.locator("#range-button").click()
    calendar = page.locator("#range-popover")
    expect(calendar).to_be_visible()
    for day in (first, last):
        label = f"{day:%B} {day.day}"
        button = calendar.get_by_role("button", name=label, exact=True)
        if button.count() == 0:  # the month is on the previous page of the calendar
            calendar.locator("[part~='previous']").first.click()
        calendar.get_by_role("button", name=label, exact=True).first.click()


def test_presets_and_custom_ranges_update_everything_and_history(
    page: Page, live: LiveSite
) -> None:
    _open_user_usage(page, live)
    today = _today()
    page.locator("#range-button").click()
    page.get_by_role("button", name="Last 7 days").click()
    week_start = (today - timedelta(days=6)).isoformat()
    _wait_for(page, start=week_start, end=today.isoformat())
    api_week = live.api(
        "/api/v1/reports/user-usage", tz=BROWSER_ZONE, start=week_start, end=today.isoformat()
    )
    assert _rows(page) == _api_rows(live, start=week_start, end=today.isoformat())
    requests_kpi = page.locator(".kpi").nth(1).locator(".kpi-value")
    expect(requests_kpi).to_have_text(f"{api_week['totals']['requests']:,}")
    chart = page.locator("#usage-chart")
    expect(chart).to_have_attribute("data-points", "7")
    expect(chart).to_have_attribute("data-total", str(api_week["totals"]["total_tokens"]))
    week_url = page.url

    first, last = today - timedelta(days=20), today - timedelta(days=12)
    _pick_days(page, first, last)
    _wait_for(page, start=first.isoformat(), end=last.isoformat())
    assert _rows(page) == _api_rows(live, start=first.isoformat(), end=last.isoformat())
    expect(chart).to_have_attribute("data-points", "9")
    custom_url = page.url
    assert f"start={first.isoformat()}" in custom_url

    page.reload()
    _wait_for(page, start=first.isoformat(), end=last.isoformat())
    assert _rows(page) == _api_rows(live, start=first.isoformat(), end=last.isoformat())

    page.go_back()
    page.wait_for_url(week_url)
    _wait_for(page, start=week_start, end=today.isoformat())
    assert _rows(page) == _api_rows(live, start=week_start, end=today.isoformat())


def test_sorting_paging_and_totals_over_all_pages(page: Page, live: LiveSite) -> None:
    _open_user_usage(page, live)
    page.goto(page.url.split("?")[0] + f"?tz={BROWSER_ZONE}&start={_today() - timedelta(days=30)}")
    _wait_for(page)
    start = (_today() - timedelta(days=30)).isoformat()
    header = page.get_by_role("link", name="Requests")
    header.click()
    _wait_for(page, sort="-requests")
    expect(page.locator("th[aria-sort='descending']")).to_contain_text("Requests")
    assert _rows(page) == _api_rows(live, start=start, sort="-requests")
    page.get_by_role("link", name="Requests").click()
    _wait_for(page, sort="requests")
    assert _rows(page) == _api_rows(live, start=start, sort="requests")

    report = live.api("/api/v1/reports/user-usage", tz=BROWSER_ZONE, start=start, limit="500")
    seen: list[tuple[str, int, int]] = []
    while True:
        seen += _rows(page)
        following = page.get_by_role("link", name="Next ›")
        if following.count() == 0:
            break
        following.click()
        page.wait_for_function(
            "n => document.querySelectorAll('.usage-table tbody tr').length > 0 && "
            "!document.getElementById('usage-results').hasAttribute('aria-busy') && "
            "location.search.includes('page=' + n)",
            arg=len(seen) // 50 + 1,
        )
    assert len(seen) == report["total_users"] > 100
    footer = page.locator("tfoot tr.totals-row td")
    shown_total = int(re.sub(r"\D", "", footer.nth(2).locator("[data-num]").first.inner_text()))
    assert shown_total == sum(row[2] for row in seen) == report["totals"]["total_tokens"]


def test_export_downloads_what_the_table_shows(page: Page, live: LiveSite) -> None:
    _open_user_usage(page, live)
    page.get_by_label("Search users by name or email").press_sequentially("person 01")
    _wait_for(page, q="person 01")
    page.get_by_text("Export to CSV").click()
    with page.expect_download(timeout=60_000) as download_info:
        page.get_by_role("button", name="Per user one row per person").click()
    download = download_info.value
    assert re.fullmatch(
        r"user-usage_\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}_person-01\.csv",
        download.suggested_filename,
    )
    content = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    table = _rows(page)
    assert len(rows) == len(table) > 0
    assert [(r["name"], int(r["requests"]), int(r["total_tokens"])) for r in rows] == table
    assert {r["timezone"] for r in rows} == {BROWSER_ZONE}


def test_a_hostile_name_is_shown_as_text(page: Page, live: LiveSite) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _open_user_usage(page, live)
    page.get_by_label("Search users by name or email").press_sequentially("onerror")
    _wait_for(page, q="onerror")
    expect(page.locator(".user-name")).to_have_text(["<img src=x onerror=alert(1)>"])
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def _axe_violations(page: Page) -> list[dict[str, Any]]:
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v["impact"] in {"serious", "critical"}]


def test_no_serious_accessibility_violations(page: Page, live: LiveSite) -> None:
    _open_user_usage(page, live)
    page.goto(page.url.split("?")[0] + f"?tz={BROWSER_ZONE}&start={_today() - timedelta(days=7)}")
    _wait_for(page)
    assert _axe_violations(page) == []
    page.locator("#range-button").click()
    expect(page.locator("#range-popover")).to_be_visible()
    assert _axe_violations(page) == []


def test_keyboard_only_range_sort_and_paging(page: Page, live: LiveSite) -> None:
    _open_user_usage(page, live)
    page.locator("#range-button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#range-popover")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#range-popover")).to_be_hidden()
    expect(page.locator("#range-button")).to_be_focused()
    page.get_by_role("link", name="Total tokens").focus()
    page.keyboard.press("Enter")
    _wait_for(page, sort="total_tokens")


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_readable_on_a_phone(page: Page, live: LiveSite, color_scheme: str) -> None:
    _open_user_usage(page, live)
    page.emulate_media(color_scheme=color_scheme)  # type: ignore[arg-type]
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(page.url.split("?")[0] + f"?tz={BROWSER_ZONE}&start={_today() - timedelta(days=7)}")
    _wait_for(page)
    body_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert body_width <= 390  # nothing scrolls sideways: each person is a card
    screenshot(page, f"user-usage-390-{color_scheme}.png")
