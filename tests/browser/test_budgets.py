"""Budgets in a real browser against a real server: create a budget with its preview,
the Budget column and the "over N% of budget" filter on User Usage, and the delivery
log with resend (alerts to a webhook receiver started by the test)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx2 as httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveSite, sign_in
from tests.support.webhook_receiver import WebhookReceiver
from tokenledger.auth.keys import create_key
from tokenledger.settings import Settings
from tokenledger.store.database import open_database

PERSONAL_LIMIT = 1000


def month_totals(live: LiveSite) -> list[int]:
    """Each person's tokens this UTC month, from the report API."""
    today = datetime.now(UTC).date()
    report = live.api(
        "/api/v1/reports/user-usage",
        start=today.replace(day=1).isoformat(),
        end=today.isoformat(),
        tz="UTC",
        limit="500",
    )
    return [row["total_tokens"] for row in report["users"]]


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


def test_create_a_budget_with_its_preview_then_filter_user_usage_by_it(
    page: Page, live: LiveSite
) -> None:
    totals = month_totals(live)
    limit = max(totals)  # somebody is at 100 %, not everybody over 80 %
    expected = sum(1 for total in totals if total * 100 >= limit * 80)
    assert 0 < expected < len(totals)
    sign_in(page, live, next_path="/admin/budgets")
    page.get_by_label("Name").fill("monthly tokens")
    page.get_by_label("Limit").fill(str(limit))
    page.get_by_label("Time zone").fill("UTC")
    preview = page.locator("#budget-preview")
    people = "person" if expected == 1 else "people"
    expect(preview).to_have_text(
        f"With this budget, {expected} {people} would be over 80% this period."
    )
    page.get_by_role("button", name="Create budget").click()
    expect(page.locator(".alert-success")).to_contain_text("The budget is created")
    row = page.locator("#budgets-table tbody tr").first
    expect(row).to_contain_text("monthly tokens")
    expect(row.locator('[data-threshold="80"]')).to_have_text(f"80%: {expected}")

    page.goto(f"{live.url}/reporting/user-usage?start={datetime.now(UTC):%Y-%m-01}")
    expect(page.get_by_role("columnheader", name="Budget")).to_be_visible()
    expect(page.locator("[data-budget-percent]").first).to_be_visible()
    page.get_by_label("Budget", exact=True).select_option("80")
    expect(page.locator("#usage-count")).to_contain_text(f"of {expected} user")
    percents = page.locator("[data-budget-percent]").evaluate_all(
        "cells => cells.map(cell => Number(cell.dataset.budgetPercent))"
    )
    assert percents
    assert min(percents) >= 80
    assert "over=80" in page.url


def test_the_delivery_log_shows_each_alert_and_resends_it(
    page: Page, live: LiveSite, receiver: WebhookReceiver
) -> None:
    sign_in(page, live, next_path="/admin/budgets")
    page.get_by_label("Name").fill("burner's own")
    page.get_by_label("Scope").select_option("person")
    page.get_by_label("Person or group").fill("budget-burner")
    page.get_by_label("Limit").fill(str(PERSONAL_LIMIT))
    page.get_by_role("button", name="Create budget").click()
    expect(page.locator(".alert-success")).to_contain_text("The budget is created")
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_label("URL or e-mail address").fill(receiver.url)
    page.get_by_role("button", name="Add channel").click()
    expect(page.locator("#new-secret")).to_be_visible()  # the signing secret, once
    db = open_database(Settings(database_url=live.database_url))
    try:
        key = create_key(db, name="browser ingest", scope="ingest", now_us=0)[1]
    finally:
        db.dispose()
    event = {
        "event_id": f"budget-browser-{time.time_ns()}",
        "user": {"id": "budget-burner", "name": "Budget Burner"},
        "started_at": datetime.now(UTC).isoformat(),
        "duration_ms": 900,
        "model": "gpt-4o",
        "input_tokens": PERSONAL_LIMIT,
        "output_tokens": 0,
    }
    answer = httpx.post(
        f"{live.url}/api/v1/events",
        json={"events": [event]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 30
    while len(receiver.accepted) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    burner = [r for r in receiver.accepted if b"budget-burner" in r.body]
    assert len(burner) == 3  # 50, 80 and 100 %
    rows = page.locator("#deliveries-table tbody tr", has_text="budget-burner")
    deadline = time.monotonic() + 30
    while True:  # each attempt is recorded just after its answer
        page.reload()
        sent = rows.filter(has=page.locator(".badge-ok", has_text="sent"))
        if sent.count() == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expect(sent).to_have_count(3)
    expect(rows.first).to_contain_text("1")  # one attempt each
    rows.first.get_by_role("button", name="Resend").click()
    expect(page.locator(".alert-success")).to_contain_text("queued to be sent again")
    deadline = time.monotonic() + 30
    while len([r for r in receiver.accepted if b"budget-burner" in r.body]) < 4:
        assert time.monotonic() < deadline, "the resent alert did not arrive"
        time.sleep(0.1)
