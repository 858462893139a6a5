"""A person's use of their budgets, exact in local periods, on both backends, and the
check API."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.budgets.conftest import create, spend
from tests.budgets.test_budget_model import us
from tokenledger.auth import audit
from tokenledger.auth.keys import create_key
from tokenledger.budgets.check import Budgets
from tokenledger.budgets.model import Budget
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore


def utc_text(at_us: int) -> str:
    return datetime.fromtimestamp(at_us / 1_000_000, UTC).isoformat()


def used(budgets: Budgets, user_id: str, at: str) -> list[tuple[str, int]]:
    return [(u.budget.name, u.used) for u in budgets.uses_of(user_id, now_us=us(at))]


def test_auckland_month_end_one_second_either_side_of_local_midnight(
    db: Database, budgets: Budgets
) -> None:
    create(budgets, name="nz", timezone="Pacific/Auckland", limit=1000)
    spend(db, "kiri", "2026-11-30T23:59:59+13:00", 100)  # the last second of November
    spend(db, "kiri", "2026-12-01T00:00:01+13:00", 300)  # the second second of December
    assert used(budgets, "kiri", "2026-11-30T23:59:59.5+13:00") == [("nz", 100)]
    assert used(budgets, "kiri", "2026-12-01T00:00:00+13:00") == [("nz", 300)]
    # In UTC both are on November 30th: a UTC month would count 400.
    create(budgets, name="utc", limit=1000)
    assert used(budgets, "kiri", "2026-11-30T12:00:00+00:00") == [("nz", 300), ("utc", 400)]


def test_a_week_across_the_dst_change_counts_exactly_its_own_events(
    db: Database, budgets: Budgets
) -> None:
    create(budgets, name="week", period="week", timezone="Pacific/Auckland")
    spend(db, "aroha", "2026-09-20T23:59:59+12:00", 1)  # Sunday before: last week
    spend(db, "aroha", "2026-09-21T00:00:00+12:00", 10)  # Monday's first instant
    spend(db, "aroha", "2026-09-27T03:00:00+13:00", 100)  # after the 02:00 jump
    spend(db, "aroha", "2026-09-27T23:59:59+13:00", 1000)  # Sunday's last second
    spend(db, "aroha", "2026-09-28T00:00:00+13:00", 10000)  # next Monday
    assert used(budgets, "aroha", "2026-09-24T12:00:00+12:00") == [("week", 1110)]
    assert used(budgets, "aroha", "2026-09-28T00:00:00+13:00") == [("week", 10000)]


def test_a_late_event_raises_last_month_not_this_one(db: Database, budgets: Budgets) -> None:
    budget = create(budgets, name="month")
    spend(db, "tane", "2026-12-01T09:00:00+00:00", 50)
    spend(db, "tane", "2026-11-30T23:00:00+00:00", 700)  # arrives late, in December
    now = us("2026-12-02T00:00:00+00:00")
    assert used(budgets, "tane", "2026-12-02T00:00:00+00:00") == [("month", 50)]
    last = budgets.uses_of_people(period_of=lambda b: b.previous_period(now), user_ids=["tane"])
    assert [(u.budget.id, u.used) for p in last.values() for u in p.uses] == [(budget.id, 700)]


def test_a_person_exception_replaces_the_everyone_budget(db: Database, budgets: Budgets) -> None:
    create(budgets, name="everyone", limit=1000)
    create(budgets, name="weekly", limit=5000, period="week")
    create(budgets, name="big user", scope="person", scope_value="mere", limit=10_000)
    spend(db, "mere", "2026-11-24T10:00:00+00:00", 2000)
    spend(db, "rangi", "2026-11-24T10:00:00+00:00", 2000)
    at = "2026-11-25T12:00:00+00:00"
    assert used(budgets, "mere", at) == [("weekly", 2000), ("big user", 2000)]
    assert used(budgets, "rangi", at) == [("everyone", 2000), ("weekly", 2000)]
    # Nobody by that id yet: the everyone budgets apply, nothing used.
    assert used(budgets, "new-person", at) == [("everyone", 0), ("weekly", 0)]


def test_changes_are_audited_and_preview_counts_people_over_80_percent(
    db: Database, budgets: Budgets
) -> None:
    for person, tokens in (("a", 790), ("b", 800), ("c", 5000)):
        spend(db, person, "2026-11-20T10:00:00+00:00", tokens)
    now = us("2026-11-25T12:00:00+00:00")
    given: dict[str, Any] = {
        "name": "p",
        "scope": "everyone",
        "scope_value": None,
        "metric": "tokens",
        "limit": 1000,
        "period": "month",
        "timezone": "UTC",
        "thresholds": None,
        "action": "alert",
    }
    assert budgets.preview(now_us=now, **given) == 2
    assert budgets.preview(now_us=now, **{**given, "limit": 100_000}) == 0
    budget = budgets.create(actor="admin@example.com", client="10.0.0.1", now_us=now, **given)
    budgets.update(
        budget.id, actor="admin@example.com", client=None, now_us=now, **{**given, "limit": 2000}
    )
    budgets.delete(budget.id, actor="admin@example.com", client=None, now_us=now)
    logged = audit.entries(db, limit=3)
    assert [(e.action, e.details["budget_id"]) for e in logged] == [
        (audit.BUDGET_DELETED, budget.id),
        (audit.BUDGET_CHANGED, budget.id),
        (audit.BUDGET_CREATED, budget.id),
    ]
    assert logged[1].details["limit_value"] == 2000
    assert budgets.all() == []


def check(client: TestClient, key: str, **params: Any) -> Any:
    return client.get(
        "/api/v1/budgets/check", params=params, headers={"Authorization": f"Bearer {key}"}
    )


def test_the_check_api(
    client: TestClient, db: Database, budgets: Budgets, ingest_key: str, read_key: str
) -> None:
    # The test clock: 2026-11-25T12:00Z.
    block = create(budgets, name="hard", limit=1000, action="block", timezone="Europe/Paris")
    soft = create(budgets, name="soft", limit=500, period="day")
    spend(db, "emp-1", "2026-11-25T09:00:00+00:00", 999)
    answer = check(client, ingest_key, user_id="emp-1")
    assert answer.status_code == 200
    assert answer.json() == {
        "allowed": True,
        "budgets": [
            {
                "id": block.id,
                "metric": "tokens",
                "limit": 1000,
                "used": 999,
                "remaining": 1,
                "period_start": "2026-11-01T00:00:00+01:00",
                "period_end": "2026-12-01T00:00:00+01:00",
                "action": "block",
            },
            {
                "id": soft.id,
                "metric": "tokens",
                "limit": 500,
                "used": 999,
                "remaining": 0,
                "period_start": "2026-11-25T00:00:00+00:00",
                "period_end": "2026-11-26T00:00:00+00:00",
                "action": "alert",
            },
        ],
    }
    spend(db, "emp-1", "2026-11-25T09:30:00+00:00", 1)  # exactly 100 %: blocked
    check_key = create_key(db, name="gw", scope="budget:check", now_us=0)[1]
    assert check(client, check_key, user_id="emp-1").json()["allowed"] is False
    budgets.update(
        block.id,
        actor="t",
        client=None,
        now_us=0,
        name="hard",
        scope="everyone",
        scope_value=None,
        metric="tokens",
        limit=1001,
        period="month",
        timezone="Europe/Paris",
        thresholds=None,
        action="block",
    )
    assert check(client, check_key, user_id="emp-1").json()["allowed"] is True  # raised
    refused = check(client, read_key, user_id="emp-1")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert check(client, "tl_nope", user_id="emp-1").status_code == 401
    for bad in ({}, {"user_id": ""}, {"user_id": " x"}, {"user_id": "x" * 256}):
        answer = check(client, ingest_key, **bad)
        assert answer.status_code == 400, bad
        assert "user_id" in answer.text


def test_team_and_department_budgets_and_a_person_exception(db: Database, budgets: Budgets) -> None:
    create(budgets, name="ops", scope="team", scope_value="Ops", limit=1000)
    create(budgets, name="r&d", scope="department", scope_value="R&D", limit=5000)
    create(budgets, name="ana", scope="person", scope_value="ana", limit=9000)
    spend(db, "ana", "2026-11-24T10:00:00+00:00", 700, team="Ops", department="R&D")
    spend(db, "ben", "2026-11-24T10:00:00+00:00", 800, team="Ops", department="R&D")
    spend(db, "cat", "2026-11-24T10:00:00+00:00", 900, team="Sales", department="R&D")
    at = "2026-11-25T12:00:00+00:00"
    assert used(budgets, "ana", at) == [("ana", 700)]  # her own replaces both
    assert used(budgets, "ben", at) == [("ops", 800), ("r&d", 800)]
    assert used(budgets, "cat", at) == [("r&d", 900)]


def test_a_cost_budget_is_exact_money(
    client: TestClient, db: Database, budgets: Budgets, ingest_key: str
) -> None:
    budget = create(budgets, name="dollars", metric="cost_usd", limit="0.50", action="block")
    spend(db, "emp-2", "2026-11-25T09:00:00+00:00", 10, cost_usd="0.30")
    spend(db, "emp-2", "2026-11-25T09:01:00+00:00", 10, cost_usd="0.200000001")
    (entry,) = check(client, ingest_key, user_id="emp-2").json()["budgets"]
    assert (entry["id"], entry["limit"], entry["used"], entry["remaining"]) == (
        budget.id,
        "0.500000000",
        "0.500000001",
        "0.000000000",
    )
    assert check(client, ingest_key, user_id="emp-2").json()["allowed"] is False
    decision = budgets.check("emp-2", now_us=us("2026-11-25T12:00:00+00:00"))
    assert decision.budget is not None
    assert decision.budget.to_json()["used"] == "0.500000001"


def test_a_change_made_elsewhere_applies_to_the_next_check(db: Database) -> None:
    """The check keeps the definitions between calls; a change through another
    instance (another process: its own cache) raises the version and is seen at once."""
    checker, admin = Budgets(UsageStore(db)), Budgets(UsageStore(db))
    budget = create(admin, name="month", action="block", limit=1000)
    spend(db, "hemi", "2026-11-20T10:00:00+00:00", 1500)
    now = us("2026-11-25T12:00:00+00:00")
    assert not checker.check("hemi", now_us=now).allowed
    assert not checker.check("hemi", now_us=now).allowed  # from the kept definitions
    given = {k: v for k, v in budget.__dict__.items() if k in {"name", "scope", "metric"}}
    admin.update(
        budget.id,
        actor="tests",
        client=None,
        now_us=0,
        **given,
        scope_value=None,
        limit=2000,
        period="month",
        timezone="UTC",
        thresholds=None,
        action="block",
    )
    assert checker.check("hemi", now_us=now).allowed
    assert [(u.used, u.budget.limit) for u in checker.uses_of("hemi", now_us=now)] == [(1500, 2000)]
    admin.delete(budget.id, actor="tests", client=None, now_us=0)
    assert checker.uses_of("hemi", now_us=now) == []
    create(admin, name="day", period="day", limit=10)
    assert [u.budget.name for u in checker.uses_of("hemi", now_us=now)] == ["day"]


ZONES = ("UTC", "Pacific/Auckland", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns")


def test_the_check_reads_what_the_report_path_reads_in_every_zone_and_period(
    db: Database, budgets: Budgets
) -> None:
    """The check's own statement (day running totals at the bounds, hour and quarter
    edges) against the general per-person read, around local midnights and DST."""
    rng = random.Random(15)
    base = us("2026-09-01T00:00:00+00:00")
    for _ in range(120):
        when = base + rng.randrange(0, 120 * 86_400) * 1_000_000
        spend(db, "wiremu", utc_text(when), rng.randrange(1, 10_000))
    for zone_name in ZONES:
        for period in ("day", "week", "month", "quarter"):
            create(budgets, name=f"{zone_name} {period}", period=period, timezone=zone_name)
    for _ in range(12):
        now = base + rng.randrange(0, 125 * 86_400) * 1_000_000
        fast = {(u.budget.id, u.period): u.used for u in budgets.uses_of("wiremu", now_us=now)}
        found = budgets.uses_of_people(
            period_of=partial(Budget.period_at, at_us=now), user_ids=["wiremu"]
        )
        general = {(u.budget.id, u.period): u.used for p in found.values() for u in p.uses}
        assert fast == general
        assert sum(fast.values()) > 0


def test_a_check_is_one_read_transaction(
    client: TestClient, db: Database, budgets: Budgets, ingest_key: str
) -> None:
    """Called before every AI request: the key and the check share one transaction
    (the key's last use is written at most once a minute, here on the first call)."""
    create(budgets, name="hard", limit=1000, action="block")
    spend(db, "emp-1", "2026-11-25T09:00:00+00:00", 10)
    assert check(client, ingest_key, user_id="emp-1").status_code == 200
    begun: list[object] = []
    count = begun.append  # one bound method: the same one must be removed
    event.listen(db.engine, "begin", count)
    try:
        for user_id in ("emp-1", "nobody-yet", "emp-1"):
            assert check(client, ingest_key, user_id=user_id).json()["budgets"][0]["limit"] == 1000
    finally:
        event.remove(db.engine, "begin", count)
    assert len(begun) == 3
