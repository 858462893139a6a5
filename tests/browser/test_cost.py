"""Cost on the User Usage page in a real browser: the Cost card (with the requests no
price covers and the way to Prices), sorting by cost, and the models table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BROWSER_ZONE, LiveSite, screenshot, sign_in
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.store.usage_store import UsageStore
from tokenledger.web.formatting import money

pytestmark = pytest.mark.browser


def _add_costly_events(live: LiveSite) -> None:
    """Today: a reported cost that tops the cost sort, Anthropic with cache, and a
    model no price knows."""
    now = datetime.now(UTC) - timedelta(minutes=2)
    base = {"duration_ms": 900, "input_tokens": 20_000, "output_tokens": 500}
    events = [
        {**base, "event_id": "cost-big", "user": {"id": "u-cost", "name": "Costa Big"},
         "model": "house-llm", "cost_usd": "12.345678901"},
        {**base, "event_id": "cost-claude", "user": {"id": "u-claude", "name": "Cleo Cache"},
         "model": "claude-sonnet-4", "provider": "anthropic", "cache_read_tokens": 12_000,
         "cache_write_tokens": 3_000},
        {**base, "event_id": "cost-unknown", "user": {"id": "u-claude", "name": "Cleo Cache"},
         "model": "acme-llm", "provider": "acme"},
    ]  # fmt: skip
    for event in events:
        event["started_at"] = now.isoformat()
    db = open_database(Settings(database_url=live.database_url))
    try:
        result = ingest(UsageStore(db), events, now_us=to_us(datetime.now(UTC)))
        assert result.count("rejected") == 0
    finally:
        db.dispose()


def _wait_for(page: Page, **expected: str) -> None:
    conditions = " && ".join(f"s.dataset.{key} === {value!r}" for key, value in expected.items())
    page.wait_for_function(
        "() => { const s = document.getElementById('usage-state');"
        " const r = document.getElementById('usage-results');"
        f" return s && r && !r.hasAttribute('aria-busy') && {conditions or 'true'}; }}"
    )


def _names(page: Page) -> list[str]:
    return page.locator(".usage-table tbody .user-name").all_inner_texts()


def test_cost_card_cost_sort_and_models_table(page: Page, live: LiveSite) -> None:
    _add_costly_events(live)
    today = datetime.now(ZoneInfo(BROWSER_ZONE)).date().isoformat()
    sign_in(page, live, next_path=f"/reporting/user-usage?tz={BROWSER_ZONE}")
    _wait_for(page, tz=BROWSER_ZONE, start=today)
    report = live.api("/api/v1/reports/user-usage", tz=BROWSER_ZONE, start=today, limit="500")
    totals = report["totals"]
    assert totals["unpriced_requests"] == 1

    # The Cost card: the report's exact cost, shown in dollars and cents.
    card = page.locator("#cost-kpi")
    nanos = int(Decimal(totals["cost_usd"]).scaleb(9))
    expect(card.locator(".kpi-value")).to_have_text(money(nanos))
    expect(card.locator(".kpi-value")).to_have_attribute("data-cost", totals["cost_usd"])
    note = card.locator("#unpriced-note")
    expect(note).to_contain_text("1 request unpriced")
    expect(note.get_by_role("link", name="set a price")).to_have_attribute("href", "/admin/prices")

    # Sorting by cost: the table follows the API's order, most expensive first.
    page.get_by_role("link", name="Cost", exact=True).click()
    _wait_for(page, sort="-cost_usd")
    expect(page.locator("th[aria-sort='descending']")).to_contain_text("Cost")
    by_cost = live.api(
        "/api/v1/reports/user-usage", tz=BROWSER_ZONE, start=today, sort="-cost_usd", limit="50"
    )
    assert _names(page) == [row["name"] for row in by_cost["users"]]
    assert _names(page)[0] == "Costa Big"
    first_cost = page.locator(".usage-table tbody tr").first.locator("td[data-label='Cost']")
    expect(first_cost).to_have_attribute("data-cost", "12.345678901")
    expect(first_cost).to_contain_text("$12.35")
    page.get_by_role("link", name="Cost", exact=True).click()
    _wait_for(page, sort="cost_usd")
    expect(page.locator("th[aria-sort='ascending']")).to_contain_text("Cost")

    # The models table: every model of the range, most expensive first, as the API says.
    models = live.api("/api/v1/reports/model-usage", tz=BROWSER_ZONE, start=today)["models"]
    rows = page.locator("#models-table tbody tr")
    expect(rows).to_have_count(len(models))
    shown = [
        (row.get_attribute("data-model"), row.get_attribute("data-provider")) for row in rows.all()
    ]
    assert shown == [(model["model"], model["provider"]) for model in models]
    assert shown[0] == ("house-llm", "")
    unknown = page.locator("#models-table tr[data-model='acme-llm']")
    expect(unknown.locator("td[data-label='Cost']")).to_contain_text("unknown")
    expect(unknown.locator("td[data-label='Unpriced']")).to_have_text("1")
    screenshot(page, "user-usage-cost.png")

    # "set a price" leads an admin to Prices, where the unpriced model is listed.
    page.locator("#unpriced-note").get_by_role("link", name="set a price").click()
    page.wait_for_url(re.compile(r"/admin/prices$"))
    expect(page.locator("#unpriced-models")).to_contain_text("acme-llm")
