"""Budgets on their own: local periods exact across DST and month ends, precedence,
and the checks of every field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tokenledger.budgets.model import (
    Budget,
    InvalidBudget,
    Period,
    applicable,
    available_metrics,
    budget_fields,
    period_at,
)
from tokenledger.localdays import to_us, zone
from tokenledger.metrics import METRICS, MetricSet


def us(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


def budget(
    budget_id: int, scope: str, value: str | None, *, metric: str = "tokens", period: str = "month"
) -> Budget:
    return Budget(
        budget_id,
        f"b{budget_id}",
        scope,
        value,
        metric,
        1000,
        period,
        "UTC",
        (50, 80, 100),
        "alert",
        0,
        0,
    )


AUCKLAND = zone("Pacific/Auckland")


def test_a_month_in_auckland_begins_at_local_midnight() -> None:
    # 2026-11-30T23:59:59+13:00 is still November; one second later it is December.
    before = period_at("month", AUCKLAND, us("2026-11-30T23:59:59+13:00"))
    after = period_at("month", AUCKLAND, us("2026-12-01T00:00:00+13:00"))
    assert before == Period(us("2026-11-01T00:00:00+13:00"), us("2026-12-01T00:00:00+13:00"))
    assert after == Period(us("2026-12-01T00:00:00+13:00"), us("2027-01-01T00:00:00+13:00"))
    assert before.end_us == after.start_us == us("2026-11-30T11:00:00+00:00")


def test_a_week_across_a_dst_change_starts_on_monday_and_lasts_its_real_hours() -> None:
    # New Zealand's DST began on Sunday 2026-09-27 at 02:00 (+12:00 -> +13:00).
    week = period_at("week", AUCKLAND, us("2026-09-27T12:00:00+13:00"))
    assert week.start_us == us("2026-09-21T00:00:00+12:00")  # Monday
    assert week.end_us == us("2026-09-28T00:00:00+13:00")  # next Monday
    assert week.end_us - week.start_us == (7 * 24 - 1) * 3600 * 1_000_000
    new_york = zone("America/New_York")  # DST ended on Sunday 2026-11-01 (a 25 h day)
    week = period_at("week", new_york, us("2026-11-01T12:00:00-05:00"))
    assert week.end_us - week.start_us == (7 * 24 + 1) * 3600 * 1_000_000


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("day", "2026-02-14T00:00:00+13:00", "2026-02-15T00:00:00+13:00"),
        ("week", "2026-02-09T00:00:00+13:00", "2026-02-16T00:00:00+13:00"),
        ("month", "2026-02-01T00:00:00+13:00", "2026-03-01T00:00:00+13:00"),
        ("quarter", "2026-01-01T00:00:00+13:00", "2026-04-01T00:00:00+13:00"),
        ("year", "2026-01-01T00:00:00+13:00", "2027-01-01T00:00:00+13:00"),
    ],
)
def test_each_period_kind(period: str, start: str, end: str) -> None:
    assert period_at(period, AUCKLAND, us("2026-02-14T15:30:00+13:00")) == Period(
        us(start), us(end)
    )


def test_a_quarter_in_the_last_months_of_a_year_ends_at_the_new_year() -> None:
    quarter = period_at("quarter", zone("UTC"), us("2026-11-25T12:00:00+00:00"))
    assert quarter == Period(us("2026-10-01T00:00:00+00:00"), us("2027-01-01T00:00:00+00:00"))


def test_a_person_budget_replaces_the_wider_ones_of_its_metric_and_period() -> None:
    everyone = budget(1, "everyone", None)
    team = budget(2, "team", "Ops")
    mine = budget(3, "person", "emp-1")
    weekly = budget(4, "everyone", None, period="week")
    requests = budget(5, "team", "Ops", metric="requests")
    someone_else = budget(6, "person", "emp-2")
    all_budgets = [everyone, team, mine, weekly, requests, someone_else]
    ops = {"team": "Ops"}
    assert applicable(all_budgets, user_id="emp-1", attributes=ops) == [mine, weekly, requests]
    # Without an exception of their own, every covering budget applies.
    assert applicable(all_budgets, user_id="emp-3", attributes=ops) == [
        everyone,
        team,
        weekly,
        requests,
    ]
    assert applicable(all_budgets, user_id="emp-3", attributes={}) == [everyone, weekly]


BASE: dict[str, Any] = {
    "name": "monthly tokens",
    "scope": "everyone",
    "scope_value": None,
    "metric": "tokens",
    "limit": "2000000",
    "period": "month",
    "timezone": "Pacific/Auckland",
    "thresholds": None,
    "action": "block",
}


def fields(**changes: object) -> dict[str, object]:
    given: dict[str, object] = {
        "name": "monthly tokens",
        "scope": "everyone",
        "scope_value": None,
        "metric": "tokens",
        "limit": "2000000",
        "period": "month",
        "timezone": "Pacific/Auckland",
        "thresholds": None,
        "action": "block",
        **changes,
    }
    return budget_fields(metrics=METRICS, attributes=("team",), **given)  # type: ignore[arg-type]


def test_a_valid_budget_is_stored_as_given_with_default_thresholds() -> None:
    assert fields() == {
        "name": "monthly tokens",
        "scope": "everyone",
        "scope_value": None,
        "metric": "tokens",
        "limit_value": 2_000_000,
        "period": "month",
        "timezone": "Pacific/Auckland",
        "thresholds": "50,80,100",
        "action": "block",
    }
    assert fields(thresholds="100, 90%,90")["thresholds"] == "90,100"
    assert fields(scope="team", scope_value="Ops")["scope_value"] == "Ops"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": " "}, "name"),
        ({"scope": "galaxy"}, "scope"),
        ({"scope": "region", "scope_value": "EMEA"}, "scope"),  # no such attribute
        ({"scope": "person"}, "scope_value"),
        ({"scope_value": "emp-1"}, "scope_value"),
        ({"metric": "joules"}, "metric"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": 2.0}, "limit"),
        ({"limit": "lots"}, "limit"),
        ({"limit": "NaN"}, "limit"),
        ({"period": "fortnight"}, "period"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"thresholds": "50,eighty"}, "thresholds"),
        ({"thresholds": "0"}, "thresholds"),
        ({"action": "shout"}, "action"),
    ],
)
def test_a_wrong_field_is_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidBudget) as caught:
        fields(**changes)
    assert caught.value.field == field


def test_money_limits_are_exact_nano_dollars() -> None:
    stored = fields(metric="cost_usd", limit="40.000000001")
    assert stored["limit_value"] == 40_000_000_001
    assert fields(metric="cost_usd", limit="40")["limit_value"] == 40_000_000_000
    with pytest.raises(InvalidBudget, match="9 decimals"):
        fields(metric="cost_usd", limit="0.0000000001")


def test_only_metrics_of_the_registry_are_offered() -> None:
    assert available_metrics(METRICS) == ["tokens", "requests", "cost_usd"]
    without_cost = MetricSet(tuple(m for m in METRICS.declared if m.public != "cost_usd"))
    assert available_metrics(without_cost) == ["tokens", "requests"]
    with pytest.raises(InvalidBudget, match="metric: must be one of tokens, requests"):
        budget_fields(metrics=without_cost, attributes=(), **{**BASE, "metric": "cost_usd"})
