"""Reporting > User Usage under real use (issue 12): failures, export, phones, calendar.

Each test drives Chromium against a real server and fails on the page as it was before
(see docs/user-usage.md for what each one guards).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Download, Page, Route, expect

from tests.browser.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BROWSER_ZONE,
    LiveSite,
    screenshot,
)
from tests.browser.test_user_usage import (
    AXE,
    _api_rows,
    _rows,
    _state,
    _today,
    _wait_for,
)
from tests.support.server import ServerProcess
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.store.demo_data import mark_demo_users, remove_demo_data
from tokenledger.store.usage_store import UsageStore

pytestmark = pytest.mark.browser
BOM = b"\xef\xbb\xbf"


_SESSIONS: dict[str, str] = {}


def _session(live: LiveSite) -> str:
    """A session of the admin, signed in once per server (the sign-in page itself is
    tested elsewhere; signing in through it for every test would double their time)."""
    if live.url not in _SESSIONS:
        with httpx.Client(base_url=live.url) as web:
            token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/sign-in").text)
            assert token is not None
            answer = web.post(
                "/sign-in",
                data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token[1]},
            )
            assert answer.status_code == 303, answer.text
            _SESSIONS[live.url] = web.cookies["tokenledger_session"]
    return _SESSIONS[live.url]


def _signed_in(page: Page, live: LiveSite) -> None:
    cookie = {"name": "tokenledger_session", "value": _session(live), "url": live.url}
    page.context.add_cookies([cookie])  # type: ignore[list-item]


def _visit(page: Page, live: LiveSite, query: str = "") -> None:
    """Signed in, open the page at ``query`` in the browser's zone."""
    _signed_in(page, live)
    page.goto(f"{live.url}/reporting/user-usage?tz={BROWSER_ZONE}{query}")
    _wait_for(page, tz=BROWSER_ZONE)


def _download(page: Page, choice: str, *, excel: bool = False) -> Download:
    page.locator("#export-button").click()
    bom = page.get_by_label("For Excel")
    if bom.is_checked() != excel:
        bom.click()
    with page.expect_download(timeout=60_000) as info:
        page.locator(f"button[data-export][value='{choice}']").click()
    return info.value


def _csv(download: Download) -> list[dict[str, str]]:
    content = Path(download.path()).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(content)))


def _wait_for_page(page: Page, number: str, per_page: str = "50") -> None:
    _wait_for(page, perPage=per_page)
    page.wait_for_function(
        "n => document.getElementById('usage-state').dataset.page === n", arg=number
    )


def _banner(page: Page) -> Any:
    return page.locator("#usage-failure")


# 1. Failures are shown, with Retry, and the page recovers ---------------------------


def test_a_failing_fragment_shows_an_error_with_retry(page: Page, live: LiveSite) -> None:
    _visit(page, live)
    before = _rows(page)
    failing = {"on": True}

    def answer_500(route: Route) -> None:
        if failing["on"] and route.request.headers.get("hx-request"):
            route.fulfill(status=500, body="Internal Server Error", content_type="text/plain")
        else:
            route.continue_()

    page.route(re.compile(r"/reporting/user-usage\?"), answer_500)
    page.get_by_label("Search users by name or email").fill("nguyen")
    expect(_banner(page)).to_be_visible()
    expect(_banner(page)).to_contain_text("Could not update the results")
    expect(_banner(page)).to_contain_text("500")
    expect(page.locator("#usage-stale")).to_contain_text("Out of date")
    expect(page.locator("#usage-results")).to_have_class(re.compile(r"\bis-stale\b"))
    assert _rows(page) == before  # the old figures stay, greyed and labelled
    # The sort fails the same visible way; wait for its own 500 before the server
    # recovers (the banner is still up from the search, so it proves nothing alone).
    with page.expect_response(lambda r: "sort=" in r.url and r.status == 500):
        page.get_by_role("link", name="Requests").click()
    expect(_banner(page)).to_be_visible()
    failing["on"] = False
    page.get_by_role("button", name="Retry").click()
    expect(_banner(page)).to_be_hidden()
    _wait_for(page, q="nguyen", sort="-requests")
    expect(page.locator("#usage-stale")).to_be_hidden()
    assert _rows(page) == _api_rows(live, q="nguyen", sort="-requests")


def test_a_stopped_server_is_shown_and_the_page_recovers_when_it_is_back(
    page: Page, live: LiveSite, tmp_path: Path
) -> None:
    with ServerProcess(live.database_url, tmp_path, TOKENLEDGER_TIMEZONE="UTC") as server:
        own = LiveSite(server.url, live.read_key, live.database_url)
        _visit(page, own)
        before = _rows(page)
        server.stop()

        page.get_by_label("Search users by name or email").fill("thao")
        expect(_banner(page)).to_contain_text("The server cannot be reached")
        expect(page.locator("#usage-stale")).to_be_visible()
        assert _rows(page) == before
        page.get_by_role("link", name="Next ›").click()
        expect(_banner(page)).to_be_visible()
        page.locator("#export-button").click()
        page.locator("button[data-export][value='summary']").click()
        expect(_banner(page)).to_contain_text("Could not start the export; nothing was downloaded")
        page.get_by_role("button", name="Retry").click()  # still down: still said
        expect(_banner(page)).to_be_visible()

        server.start()  # same port: the results come back by themselves
        expect(page.locator("#usage-stale")).to_be_hidden(timeout=30_000)
        _wait_for(page, q="thao")
        assert _rows(page) == _api_rows(live, q="thao")
        # A download never starts by itself: the export waits for Retry.
        expect(_banner(page)).to_contain_text("Could not start the export")
        with page.expect_download(timeout=60_000) as info:
            page.get_by_role("button", name="Retry").click()
        assert [r["name"] for r in _csv(info.value)] == ["Nguyễn Thị Thảo"]
        expect(_banner(page)).to_be_hidden()


# 2. Export is what the form says at the click -----------------------------------------


def test_export_right_after_typing_holds_what_the_screen_then_shows(
    page: Page, live: LiveSite
) -> None:
    _visit(page, live)
    held: list[Route] = []
    page.route(re.compile(r"/reporting/user-usage\?"), lambda route: held.append(route))
    page.get_by_label("Search users by name or email").fill("nguyen")
    download = _download(page, "summary")  # before any result of the search came back
    for route in held:
        route.continue_()
    page.unroute(re.compile(r"/reporting/user-usage\?"))
    _wait_for(page, q="nguyen")
    rows = _csv(download)
    assert [(r["name"], int(r["requests"]), int(r["total_tokens"])) for r in rows] == _rows(page)
    assert [r["name"] for r in rows] == ["Nguyễn Thị Thảo"]
    assert "_nguyen" in download.suggested_filename


# 3. The export menu: every granularity, and a file for Excel ---------------------------


def test_the_export_menu_offers_each_granularity_and_excel(page: Page, live: LiveSite) -> None:
    week = (_today() - timedelta(days=6)).isoformat()
    _visit(page, live, f"&start={week}&q=person+00")
    report = live.api("/api/v1/reports/user-usage", tz=BROWSER_ZONE, start=week, q="person 00")
    summary = _download(page, "summary")
    assert Path(summary.path()).read_bytes()[:3] != BOM
    assert [r["user_id"] for r in _csv(summary)] == [u["user_id"] for u in report["users"]]
    daily = _download(page, "daily")
    assert "daily" in daily.suggested_filename
    daily_rows = _csv(daily)
    assert {r["date"] for r in daily_rows} <= {
        (_today() - timedelta(days=n)).isoformat() for n in range(7)
    }
    assert sum(int(r["requests"]) for r in daily_rows) == report["totals"]["requests"]
    events = _download(page, "events")
    assert len(_csv(events)) == report["totals"]["requests"]
    models = _csv(_download(page, "models"))
    assert sum(int(r["requests"]) for r in models) == report["totals"]["requests"]
    assert sum(Decimal(r["cost_usd"]) for r in models) == Decimal(report["totals"]["cost_usd"])
    excel = _download(page, "summary", excel=True)
    body = Path(excel.path()).read_bytes()
    assert body.startswith(BOM)
    assert body[3:] == Path(summary.path()).read_bytes()


# 4. One request in flight per view; the sort header keeps the focus ---------------------


def test_a_sort_click_right_after_typing_wins_and_keeps_the_focus(
    page: Page, live: LiveSite
) -> None:
    _visit(page, live)
    held: list[Route] = []
    aborted: list[str] = []
    page.on("requestfailed", lambda request: aborted.append(request.url))
    page.route(re.compile(r"/reporting/user-usage\?"), lambda route: held.append(route))
    page.get_by_label("Search users by name or email").fill("person 01")
    page.get_by_role("link", name="Requests").click()  # blurs the search box
    page.wait_for_timeout(600)  # every request the page will make is on its way
    for route in reversed(held):  # the newest answers first, the oldest last
        if route.request.url not in aborted:
            route.continue_()
        page.wait_for_timeout(200)
    page.unroute(re.compile(r"/reporting/user-usage\?"))
    _wait_for(page, q="person 01", sort="-requests")
    page.wait_for_timeout(500)  # an older answer arriving late would show here
    assert _state(page)["sort"] == "-requests"
    assert _rows(page) == _api_rows(live, q="person 01", sort="-requests")
    assert len(held) - len(aborted) == 1  # one answer was waited for; the others cancelled
    expect(page.get_by_role("link", name="Requests")).to_be_focused()

    page.get_by_role("link", name="Total tokens").focus()
    page.keyboard.press("Enter")
    _wait_for(page, sort="-total_tokens")
    expect(page.get_by_role("link", name="Total tokens")).to_be_focused()
    page.keyboard.press("Enter")
    _wait_for(page, sort="total_tokens")
    expect(page.get_by_role("link", name="Total tokens")).to_be_focused()


# 5. Demo data is marked, and says so; the sign-in page says how to get back in ----------


def test_demo_data_is_bannered_on_every_page_until_removed(page: Page, live: LiveSite) -> None:
    db = open_database(Settings(database_url=live.database_url))
    try:
        _visit(page, live)
        expect(page.get_by_text("Demo data", exact=True)).to_have_count(0)
        mark_demo_users(db, external_ids=["emp-zoe", "emp-lam"])
        for path in ("/reporting/user-usage", "/admin/keys", "/admin/accounts", "/account"):
            page.goto(f"{live.url}{path}")
            banner = page.get_by_role("complementary", name="Demo data")
            expect(banner).to_contain_text("tokenledger demo --remove")
    finally:
        removed = remove_demo_data(UsageStore(db))
        db.dispose()
    assert (removed.events, removed.users_kept) == (0, 2)  # real events are never demo events
    page.goto(f"{live.url}/reporting/user-usage")
    expect(page.get_by_role("complementary", name="Demo data")).to_have_count(0)
    page.context.clear_cookies()
    page.goto(f"{live.url}/sign-in")
    expect(page.locator("#password-help")).to_contain_text("tokenledger accounts reset-password")


# 6. A phone shows every figure of a person ----------------------------------------------


@pytest.fixture(scope="module")
def long_email(live: LiveSite) -> str:
    """A person with a very long e-mail, active today."""
    email = "maximiliane.von-und-zu-hohenstein-oberammergau@subsidiary.example.com"
    db = open_database(Settings(database_url=live.database_url))
    now = datetime.now(UTC) - timedelta(minutes=2)
    event = {
        "event_id": "long-email-1",
        "user": {"id": "emp-long", "name": "Maximiliane Hohenstein", "email": email},
        "started_at": now.isoformat(),
        "duration_ms": 4200,
        "input_tokens": 12345,
        "output_tokens": 678,
    }
    ingest(UsageStore(db), [event], now_us=to_us(datetime.now(UTC)))
    db.dispose()
    return email


def test_a_phone_shows_every_figure_of_a_person(
    page: Page, live: LiveSite, long_email: str
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _visit(page, live)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    cards = page.locator(".usage-table tbody tr")
    for index in range(5):
        card = cards.nth(index)
        card.scroll_into_view_if_needed()
        for label in ("Requests", "Total tokens", "Usage time", "Last active"):
            cell = card.locator(f"td[data-label='{label}']")
            box = cell.bounding_box()
            assert box is not None, label
            assert 0 <= box["x"] <= box["x"] + box["width"] <= 390, (label, box)
            assert cell.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), label
            shown = cell.evaluate("el => getComputedStyle(el, '::before').content")
            assert shown == f'"{label}"'  # each figure says what it is
            assert re.search(r"\d", cell.inner_text()), label
    page.get_by_label("Search users by name or email").fill("hohenstein")
    _wait_for(page, q="hohenstein")
    email = page.locator(".user-email")
    expect(email).to_have_attribute("title", long_email)
    expect(email).to_have_text(long_email)  # whole in the text: read and copied whole
    assert email.evaluate("el => el.scrollWidth > el.clientWidth")  # cut on screen...
    assert email.evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"  # ...with …
    box = email.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


# 7. Post/redirect/get: a reload creates nothing ---------------------------------------


def test_reloading_after_creating_a_key_creates_no_second_key(page: Page, live: LiveSite) -> None:
    _signed_in(page, live)
    page.goto(f"{live.url}/admin/keys")
    name = f"reload test {datetime.now(UTC):%H%M%S%f}"
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key")
    expect(secret).to_have_text(re.compile(r"^tl_"))
    assert page.url == f"{live.url}/admin/keys"  # not the POST's answer: a redirect's GET
    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)  # shown once
    rows = page.locator("tbody tr", has_text=name)
    expect(rows).to_have_count(1)
    page.go_back()
    expect(page.locator("#new-key")).to_have_count(0)


# 8. Calendar ---------------------------------------------------------------------------


def _open_calendar(page: Page) -> Any:
    page.locator("#range-button").click()
    popover = page.locator("#range-popover")
    expect(popover).to_be_visible()
    return popover


def _day(popover: Any, day: date) -> Any:
    return popover.get_by_role("button", name=f"{day:%B} {day.day}", exact=True).first


def test_one_click_then_apply_picks_one_day_and_two_clicks_a_range(
    page: Page, live: LiveSite
) -> None:
    _visit(page, live)
    today = _today()
    day = today - timedelta(days=2)
    popover = _open_calendar(page)
    _day(popover, day).click()
    expect(page.locator("#range-hint")).to_contain_text("picked: Apply")
    popover.get_by_role("button", name="Apply").click()
    _wait_for(page, start=day.isoformat(), end=day.isoformat())
    expect(popover).to_be_hidden()

    other = today - timedelta(days=3)
    popover = _open_calendar(page)
    _day(popover, other).click()
    page.keyboard.press("Enter")  # Enter on the same day: that one day
    _wait_for(page, start=other.isoformat(), end=other.isoformat())

    first, last = today - timedelta(days=5), today - timedelta(days=1)
    popover = _open_calendar(page)
    _day(popover, first).click()
    _day(popover, last).click()
    _wait_for(page, start=first.isoformat(), end=last.isoformat())


def test_the_chosen_days_differ_from_the_heat_map_by_more_than_colour(
    page: Page, live: LiveSite
) -> None:
    week = (_today() - timedelta(days=6)).isoformat()
    _visit(page, live, f"&start={week}&end={(_today() - timedelta(days=4)).isoformat()}")
    popover = _open_calendar(page)
    page.wait_for_function(
        "() => Number(document.getElementById('range-calendar')?.dataset.heatDays) > 0"
    )
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        _chosen_days_stand_out(page)
    expect(popover.locator(".selected-swatch")).to_be_visible()


def _chosen_days_stand_out(page: Page) -> None:
    styles: dict[str, dict[str, str]] = page.evaluate(
        """() => {
          const days = [...document.querySelectorAll('calendar-month')].flatMap(
            m => [...m.shadowRoot.querySelectorAll('button[part~="day"]')]);
          const look = b => { const s = getComputedStyle(b);
            return {shadow: s.boxShadow, weight: s.fontWeight}; };
          const part = (b, name) => b.getAttribute('part').split(' ').includes(name);
          const pick = f => { const b = days.find(f); return b ? look(b) : null; };
          return {
            end: pick(b => part(b, 'range-end')),
            inner: pick(b => part(b, 'range-inner')),
            heat: pick(b => part(b, 'heat-4') && !part(b, 'selected')),
          };
        }"""
    )
    assert styles["heat"] is not None, "no busy day outside the selection to compare"
    assert styles["heat"]["shadow"] == "none"
    for chosen in (styles["end"], styles["inner"]):
        assert chosen is not None
        assert chosen["shadow"] != "none"  # a ring or band: a shape, not only a colour
        assert int(chosen["weight"]) >= 700 > int(styles["heat"]["weight"])


def test_the_popover_fits_the_viewport_and_scrolls(page: Page, live: LiveSite) -> None:
    """1280 x 900 and 1366 x 768 at 200% zoom, and a phone with its keyboard open."""
    _visit(page, live)
    uncovered = (
        "el => { const r = el.getBoundingClientRect();"
        " return el.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)); }"
    )
    for back, (width, height) in enumerate([(640, 450), (683, 384), (390, 664)], start=1):
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("window.scrollTo(0, 0)")
        popover = _open_calendar(page)
        box = popover.bounding_box()
        assert box is not None
        assert 0 <= box["x"] <= box["x"] + box["width"] <= width, (width, box)
        assert 0 <= box["y"] <= box["y"] + box["height"] <= height, (height, box)
        for preset in popover.locator("[data-preset]").all():
            assert preset.evaluate(uncovered), preset.inner_text()  # not under the sticky bar
        # A day of the month shown (at these sizes the calendar shows one month).
        day = max(_today() - timedelta(days=back), _today().replace(day=1))
        _day(popover, day).click()
        apply = popover.get_by_role("button", name="Apply")
        apply.scroll_into_view_if_needed()
        assert apply.evaluate(uncovered)
        assert popover.bounding_box() == box  # it scrolled inside itself, not the page away
        apply.click()
        _wait_for(page, start=day.isoformat(), end=day.isoformat())


def test_focus_leaving_the_popover_closes_it(page: Page, live: LiveSite) -> None:
    _visit(page, live)
    popover = _open_calendar(page)
    inside = (
        "() => document.getElementById('range-popover').contains(document.activeElement)"
        " || document.activeElement.id === 'range-button'"
    )
    for _ in range(40):
        page.keyboard.press("Tab")
        if not page.evaluate(inside):
            break
    expect(popover).to_be_hidden()
    focused = page.evaluate("document.activeElement.id")
    assert focused == "usage-tz-input"  # the next control after the calendar
    expect(page.locator("#range-button")).to_have_attribute("aria-expanded", "false")


def test_future_dates_in_the_url_are_clamped_with_a_notice(page: Page, live: LiveSite) -> None:
    today = _today()
    start, end = today - timedelta(days=3), today + timedelta(days=40)
    _visit(page, live, f"&start={start}&end={end}")
    expect(page.locator("#usage-notice")).to_contain_text("the range now ends today")
    assert (_state(page)["start"], _state(page)["end"]) == (start.isoformat(), today.isoformat())
    page.wait_for_function(f"() => location.search.includes('end={today.isoformat()}')")


# 9. Smaller ----------------------------------------------------------------------------


def test_a_page_past_the_end_shows_the_last_page(page: Page, live: LiveSite) -> None:
    _visit(page, live, "&page=99")
    total = live.api("/api/v1/reports/user-usage", tz=BROWSER_ZONE)["total_users"]
    last = -(-total // 50)
    expect(page.locator("#page-jump")).to_have_value(str(last))
    expect(page.locator("#usage-count")).to_have_text(
        f"{(last - 1) * 50 + 1}–{total} of {total} users"
    )
    page.wait_for_function(f"() => location.search.includes('page={last}')")


def test_typing_a_search_adds_one_history_entry(page: Page, live: LiveSite) -> None:
    _visit(page, live)
    before_url, before_length = page.url, page.evaluate("history.length")
    page.get_by_label("Search users by name or email").press_sequentially("person", delay=350)
    _wait_for(page, q="person")
    assert page.evaluate("history.length") == before_length + 1
    page.go_back()
    page.wait_for_url(before_url)
    _wait_for(page, q="")


def test_names_sort_by_their_folded_form(page: Page, live: LiveSite) -> None:
    _visit(page, live)
    page.get_by_role("link", name="User").click()
    _wait_for(page, sort="name")
    names = [row[0] for row in _rows(page)]
    assert _rows(page) == _api_rows(live, sort="name")
    # As search folds them: Đ with the D's, before N and P; Z after P (on a later page).
    assert names.index("Đặng Văn Lâm") < names.index("Nguyễn Thị Thảo") < names.index("Person 001")
    assert "Zoë Dubois" not in names


def test_words_for_one_user_the_role_badge_and_the_caption(page: Page, live: LiveSite) -> None:
    _visit(page, live)
    expect(page.locator("caption")).to_have_text(re.compile(r"sorted by total tokens, descending$"))
    page.get_by_label("Search users by name or email").fill("thao")
    _wait_for(page, q="thao")
    expect(page.locator("#usage-count")).to_have_text("1–1 of 1 user")
    expect(page.locator("tfoot td").first).to_have_text("Total · all 1 user")
    badge = page.locator(".role-badge")
    expect(badge).to_have_text("admin")
    assert badge.evaluate("el => el.scrollWidth <= el.clientWidth")
    inside = (
        "el => { const b = el.getBoundingClientRect();"
        " const p = el.parentElement.getBoundingClientRect();"
        " return b.left >= p.left && b.right <= p.right + 0.5; }"
    )
    assert badge.evaluate(inside)  # not cut by its link's ellipsis
    assert (
        page.locator(".nav-name").evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"
    )


def test_the_zone_picker_groups_filters_and_remembers(page: Page, live: LiveSite) -> None:
    _visit(page, live)
    picker = page.locator("#usage-tz-input")
    expect(picker).to_have_value("Colombo (UTC+05:30)")
    picker.click()
    listbox = page.get_by_role("listbox", name="Time zones")
    expect(listbox).to_be_visible()
    groups = listbox.get_by_role("group")
    expect(groups.first).to_have_accessible_name("Suggested")
    expect(groups.first.get_by_role("option").first).to_contain_text("Colombo")
    names = page.evaluate(
        "[...document.querySelectorAll('.zone-group-label')].map(e => e.textContent)"
    )
    assert names[:3] == ["Suggested", "UTC", "Africa"]
    assert "Europe" in names
    values = page.evaluate(
        "[...document.querySelectorAll('.zone-group:not(.zone-group-suggested) .zone-option')]"
        ".map(e => e.dataset.value)"
    )
    assert len(values) == len(set(values)) < 507
    page.keyboard.type("kolk")
    visible = listbox.locator(".zone-option:visible")
    expect(visible).to_have_count(1)
    expect(visible).to_have_text(re.compile(r"Kolkata\s*UTC\+05:30"))
    page.keyboard.press("Enter")
    _wait_for(page, tz="Asia/Kolkata")
    expect(picker).to_have_value("Kolkata (UTC+05:30)")
    picker.click()
    suggested = groups.first.get_by_role("option")
    expect(suggested).to_have_count(2)  # the browser's zone, then the recent choice
    expect(suggested.nth(1)).to_contain_text("Kolkata")
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()


def test_pages_first_last_size_jump_and_the_view_returns_to_the_table(
    page: Page, live: LiveSite
) -> None:
    _visit(page, live)
    total = live.api("/api/v1/reports/user-usage", tz=BROWSER_ZONE)["total_users"]
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.get_by_role("link", name="Next ›").click()
    _wait_for_page(page, "2")
    top = page.locator("#usage-table-card").evaluate("el => el.getBoundingClientRect().top")
    bar = page.locator(".topbar").evaluate("el => el.getBoundingClientRect().bottom")
    assert bar <= top <= bar + 60  # the table's top, just under the sticky bar
    expect(page.get_by_role("link", name="Next ›")).to_be_focused()
    page.get_by_role("link", name="Last »").click()
    _wait_for_page(page, str(-(-total // 50)))
    page.get_by_role("link", name="« First").click()
    _wait_for_page(page, "1")
    page.get_by_label("Rows per page").select_option("100")
    _wait_for_page(page, "1", per_page="100")
    assert len(_rows(page)) == min(100, total)
    page.get_by_label("Page", exact=True).fill("2")
    page.keyboard.press("Enter")
    _wait_for_page(page, "2", per_page="100")
    assert len(_rows(page)) == total - 100
    assert "per_page=100" in page.url
    assert "page=2" in page.url


# Accessibility in both schemes, and the screenshots of the docs -------------------------


def _axe(page: Page, context: str = "document") -> list[str]:
    """Serious or critical axe-core violations in ``context`` (axe injected once)."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[str] = page.evaluate(
        f"""async () => (await axe.run({context}, {{resultTypes: ['violations']}})).violations
          .filter(v => ['serious', 'critical'].includes(v.impact))
          .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    )
    return found


def test_no_serious_accessibility_violations_in_either_scheme(page: Page, live: LiveSite) -> None:
    _visit(page, live, f"&start={_today() - timedelta(days=7)}")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.set_viewport_size({"width": 1280, "height": 900})
        assert _axe(page) == [], scheme
        page.locator("#export-button").click()
        assert _axe(page, "'#export-menu'") == [], scheme
        page.keyboard.press("Escape")
        page.locator("#usage-tz-input").click()
        assert _axe(page, "'.toolbar-tz'") == [], scheme
        page.keyboard.press("Escape")
        _open_calendar(page)
        page.wait_for_function(
            "() => Number(document.getElementById('range-calendar')?.dataset.heatDays) > 0"
        )
        assert _axe(page, "'#range-popover'") == [], scheme
        page.keyboard.press("Escape")
        page.set_viewport_size({"width": 390, "height": 844})
        assert _axe(page) == [], scheme


@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_for_the_docs(page: Page, live: LiveSite, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
    _signed_in(page, live)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        start = _today() - timedelta(days=13)
        page.goto(f"{live.url}/reporting/user-usage?tz={BROWSER_ZONE}&start={start}")
        _wait_for(page, tz=BROWSER_ZONE)
        expect(page.locator("#usage-chart")).to_have_attribute("data-points", "14")
        if width < 400:  # on a phone, the people's cards are what is new
            page.locator("#usage-table-card").evaluate(
                "el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 110)"
            )
        path = screenshot(page, f"user-usage-{width}-{scheme}.png", full_page=False)
        assert path.stat().st_size > 10_000
