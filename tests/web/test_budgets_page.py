"""Admin > Budgets: create with a preview, edit, delete (each audited), the people over
each threshold now, alert channels, the delivery log with resend; viewers read only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.budgets.conftest import spend
from tests.support.console import make_account, post_form, sign_in
from tokenledger.auth import audit
from tokenledger.store import budgets as budget_store
from tokenledger.store.database import Database

FORM = {
    "name": "monthly tokens",
    "scope": "everyone",
    "scope_value": "",
    "metric": "tokens",
    "limit": "1000",
    "period": "month",
    "timezone": "UTC",
    "thresholds": "50,80,100",
    "action": "block",
}


@pytest.fixture
def admin(client: TestClient, db: Database) -> None:
    make_account(db, "admin@example.com", "admin")
    assert sign_in(client, "admin@example.com").status_code == 303


def people_over(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-threshold="(\d+)">\d+%: (\d+)<', page))


def test_an_admin_previews_creates_edits_and_deletes_a_budget(
    client: TestClient, db: Database, admin: None
) -> None:
    for person, tokens in (("a", 500), ("b", 850), ("c", 1200)):
        spend(db, person, "2026-11-20T10:00:00+00:00", tokens)
    preview = post_form(client, "/admin/budgets/preview", FORM)  # without script: the page
    assert "With this budget, <strong data-preview-count>2</strong> people would be over 80%" in (
        preview.text
    )
    fragment = client.post(
        "/admin/budgets/preview",
        data={**FORM, "limit": "10000", "csrf_token": _token(client)},
        headers={"HX-Request": "true"},
    )
    assert fragment.text.strip().startswith('<p class="budget-preview"')
    assert "<strong data-preview-count>0</strong> people" in fragment.text
    bad = post_form(client, "/admin/budgets/preview", {**FORM, "limit": "lots"})
    assert "limit: must be a number" in bad.text
    created = post_form(client, "/admin/budgets", FORM)
    assert (created.status_code, created.headers["location"]) == (
        303,
        "/admin/budgets?done=created",
    )
    page = client.get("/admin/budgets").text
    assert "monthly tokens" in page
    assert people_over(page) == {"50": "3", "80": "2", "100": "1"}
    (budget,) = _budgets(db)
    wrong = post_form(client, f"/admin/budgets/{budget.id}", {**FORM, "period": "fortnight"})
    assert wrong.status_code == 400
    assert "period: must be one of day, week, month, quarter, year" in wrong.text
    saved = post_form(client, f"/admin/budgets/{budget.id}", {**FORM, "limit": "2000"})
    assert saved.status_code == 303
    assert people_over(client.get("/admin/budgets").text) == {"50": "1", "80": "0", "100": "0"}
    assert post_form(client, f"/admin/budgets/{budget.id}/delete").status_code == 303
    assert _budgets(db) == []
    assert post_form(client, f"/admin/budgets/{budget.id}/delete").status_code == 404
    actions = [entry.action for entry in audit.entries(db, limit=3)]
    assert actions == [audit.BUDGET_DELETED, audit.BUDGET_CHANGED, audit.BUDGET_CREATED]


def test_channels_and_the_delivery_log_with_resend(
    client: TestClient, db: Database, admin: None, app: FastAPI
) -> None:
    added = post_form(
        client, "/admin/budgets/channels", {"kind": "webhook", "target": "http://127.0.0.1:9/hook"}
    )
    assert added.status_code == 200
    assert added.headers["cache-control"] == "no-store"
    (channel,) = _channels(db)
    assert channel.secret
    assert channel.secret in added.text
    assert channel.secret not in client.get("/admin/budgets").text
    refused = post_form(client, "/admin/budgets/channels", {"kind": "email", "target": "nope"})
    assert refused.status_code == 400
    assert "target: must be an e-mail address" in refused.text
    post_form(client, "/admin/budgets", {**FORM, "limit": "100", "thresholds": "100"})
    spend(db, "emp-1", "2026-11-25T10:00:00+00:00", 100)
    app.state.ctx.alerts.sweep()
    app.state.ctx.alerts.deliver_due()  # nobody listens on port 9: an error, retried
    page = client.get("/admin/budgets").text
    row = page.split('data-delivery="')[1].split("</tr>")[0]
    assert "emp-1" in row
    assert "pending" in row
    assert "ConnectError" in row
    delivery_id = int(row.split('"')[0])
    assert post_form(client, f"/admin/budgets/deliveries/{delivery_id}/resend").status_code == 303
    assert audit.entries(db, limit=1)[0].action == audit.ALERT_RESENT


def test_viewers_see_budgets_but_change_nothing(
    client: TestClient, db: Database, app: FastAPI
) -> None:
    make_account(db, "admin@example.com", "admin")
    make_account(db, "viewer@example.com", "viewer")
    assert sign_in(client, "admin@example.com").status_code == 303
    post_form(client, "/admin/budgets", FORM)
    client.cookies.clear()
    assert sign_in(client, "viewer@example.com").status_code == 303
    page = client.get("/admin/budgets")
    assert page.status_code == 200
    assert "monthly tokens" in page.text
    assert 'action="/admin/budgets"' not in page.text
    assert "/delete" not in page.text
    assert post_form(client, "/admin/budgets", {**FORM, "name": "mine"}).status_code == 403
    assert [b.name for b in _budgets(db)] == ["monthly tokens"]


def _token(client: TestClient) -> str:
    from tests.support.console import csrf_token

    return csrf_token(client)


def _budgets(db: Database) -> list[Any]:
    with db.read() as conn:
        return budget_store.load_budgets(conn)


def _channels(db: Database) -> list[budget_store.Channel]:
    with db.read() as conn:
        return budget_store.load_channels(conn)


def test_user_usage_shows_the_tightest_budget_and_filters_by_it(
    client: TestClient, db: Database, admin: None
) -> None:
    assert 'class="budget-col"' not in client.get("/reporting/user-usage").text  # none yet
    post_form(client, "/admin/budgets", {**FORM, "limit": "1000"})
    post_form(client, "/admin/budgets", {**FORM, "name": "daily", "limit": "400", "period": "day"})
    for person, tokens in (("low", 100), ("mid", 300), ("high", 900)):
        spend(db, person, "2026-11-25T10:00:00+00:00", tokens)
    page = client.get("/reporting/user-usage").text
    assert 'class="budget-col"' in page
    shown = dict(re.findall(r'user-name[^>]*>([a-z]+)<.*?data-budget-percent="(\d+)"', page, re.S))
    assert shown == {"high": "225", "mid": "75", "low": "25"}  # the daily budget is tighter
    assert 'title="daily: 900 of 400 tokens used, 0 left; resets Nov 26, 00:00 (UTC)"' in page
    over = client.get("/reporting/user-usage", params={"over": "80"}).text
    assert re.findall(r"user-name[^>]*>([a-z]+)<", over) == ["high"]
    over = client.get("/reporting/user-usage", params={"over": "50"}).text
    assert re.findall(r"user-name[^>]*>([a-z]+)<", over) == ["high", "mid"]
    bad = client.get("/reporting/user-usage", params={"over": "lots"})
    assert bad.status_code == 400
    assert "over: must be a percent of budget" in bad.text


def test_the_person_view_shows_each_budget_with_used_remaining_and_reset(
    client: TestClient, db: Database, admin: None
) -> None:
    spend(db, "ana", "2026-11-25T10:00:00+00:00", 300)
    page = client.get("/reporting/people/ana?start=2026-11-25&end=2026-11-25&tz=UTC").text
    assert 'id="person-budgets"' not in page  # no budget yet
    post_form(client, "/admin/budgets", {**FORM, "limit": "1000"})
    post_form(
        client,
        "/admin/budgets",
        {
            **FORM,
            "name": "ana's day",
            "scope": "person",
            "scope_value": "ana",
            "period": "day",
            "limit": "400",
            "action": "alert",
        },
    )
    page = client.get("/reporting/people/ana?start=2026-11-25&end=2026-11-25&tz=UTC").text
    found = re.findall(
        r'data-budget="([^"]+)">.*?data-budget-percent="(\d+)".*?data-budget-remaining>([^<]+)<',
        page,
        re.S,
    )
    rows = {name: (percent, remaining) for name, percent, remaining in found}
    # The person's own daily budget is an exception to the everyone budget of the same
    # metric only for the same period: both apply (month and day).
    assert rows == {"monthly tokens": ("30", "700"), "ana&#39;s day": ("75", "100")}
    assert "Nov 26, 00:00" in page  # the daily budget resets at the next local midnight
