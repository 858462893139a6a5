"""What a budget is: a limit of one metric per person and local calendar period.

A budget covers everyone, the people with a value of an attribute (``team``,
``department``: whatever :mod:`tokenledger.store.dimensions` declares) or one person.
Its limit is an integer in the metric's stored unit (money in nano-dollars: exact).
Its periods are local calendar periods in its IANA zone, bounded by local midnights
converted on their own (exact across DST, as reports are); weeks start on Monday.

Precedence: every budget that covers a person applies, except that a person-scoped
budget is an exception replacing the wider budgets of the same metric and period
(:func:`applicable`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from tokenledger.localdays import from_us, local_midnight_us, zone
from tokenledger.metrics import MetricSet, Unit

PERIODS = ("day", "week", "month", "quarter", "year")
ACTIONS = ("alert", "block")
EVERYONE = "everyone"
PERSON = "person"
DEFAULT_THRESHOLDS = (50, 80, 100)
# A budget's metric -> the metric of the registry (metrics.py) it limits; those whose
# registry metric is not declared (cost before it exists) are not offered.
BUDGET_METRICS = {"tokens": "total_tokens", "requests": "requests", "cost_usd": "cost_usd"}
MAX_LIMIT = 2**63 - 1


class InvalidBudget(ValueError):
    """A budget field is wrong: ``field`` names it, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Period:
    """One local period as UTC instants ``[start_us, end_us)``."""

    start_us: int
    end_us: int


@dataclass(frozen=True)
class Budget:
    id: int
    name: str
    scope: str  # everyone, person, or an attribute's name
    scope_value: str | None
    metric: str  # a key of BUDGET_METRICS
    limit: int  # in the metric's stored unit
    period: str
    timezone: str
    thresholds: tuple[int, ...]
    action: str
    created_us: int
    updated_us: int

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def personal(self) -> bool:
        return self.scope == PERSON

    def period_at(self, at_us: int) -> Period:
        """The period of this budget holding the instant ``at_us``."""
        return period_at(self.period, self.tz, at_us)

    def previous_period(self, at_us: int) -> Period:
        return self.period_at(self.period_at(at_us).start_us - 1)

    def covers(self, user_id: str, attributes: Mapping[str, str | None]) -> bool:
        if self.scope == EVERYONE:
            return True
        if self.scope == PERSON:
            return self.scope_value == user_id
        return attributes.get(self.scope) == self.scope_value

    def scope_text(self) -> str:
        return EVERYONE if self.scope == EVERYONE else f"{self.scope} {self.scope_value}"


def applicable(
    budgets: Iterable[Budget], *, user_id: str, attributes: Mapping[str, str | None]
) -> list[Budget]:
    """The budgets that apply to a person: every covering one, except the wider ones
    of a (metric, period) for which the person has a budget of their own."""
    covering = [budget for budget in budgets if budget.covers(user_id, attributes)]
    own = {(budget.metric, budget.period) for budget in covering if budget.personal}
    return [
        budget
        for budget in covering
        if budget.personal or (budget.metric, budget.period) not in own
    ]


def _first_day(period: str, day: date) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _next_first_day(period: str, first: date) -> date:
    if period == "day":
        return first + timedelta(days=1)
    if period == "week":
        return first + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = first.month - 1 + months
    return date(first.year + month // 12, month % 12 + 1, 1)


def period_at(period: str, tz: ZoneInfo, at_us: int) -> Period:
    """The local ``period`` (day, week from Monday, month, quarter, year) holding the
    instant ``at_us`` in zone ``tz``, bounded by its local midnights."""
    first = _first_day(period, from_us(at_us, tz).date())
    following = _next_first_day(period, first)
    return Period(local_midnight_us(first, tz), local_midnight_us(following, tz))


def available_metrics(metrics: MetricSet) -> list[str]:
    """The budget metrics this store's registry can measure."""
    return [name for name, public in BUDGET_METRICS.items() if public in metrics.public_names]


def unit_of(metrics: MetricSet, metric: str) -> Unit:
    return metrics.find(BUDGET_METRICS[metric]).unit


def limit_json(metrics: MetricSet, metric: str, value: int) -> int | str:
    """A limit or a use as the API writes it (money as a decimal string of dollars)."""
    return unit_of(metrics, metric).json_value(value)


def parse_limit(unit: Unit, value: object) -> int:
    """An exact limit: a whole number, or for money a decimal of dollars (to the
    nano-dollar); never a float."""
    if isinstance(value, (bool, float)):
        raise InvalidBudget("limit", "must be a whole number (money: a decimal string)")
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidBudget("limit", f"must be a number, got {text[:40]!r}") from exc
    if not number.is_finite():
        raise InvalidBudget("limit", "must be a finite number")
    stored = number.scaleb(9) if unit.money else number
    if stored != stored.to_integral_value():
        what = "at most 9 decimals of a dollar" if unit.money else "a whole number"
        raise InvalidBudget("limit", f"must be {what}, got {text[:40]!r}")
    if not 0 < stored <= MAX_LIMIT:
        raise InvalidBudget("limit", "must be greater than 0 (and below 2^63)")
    return int(stored)


def parse_thresholds(value: str | Sequence[int] | None) -> tuple[int, ...]:
    """Percents, e.g. ``"50,80,100"``: whole numbers 1-1000, sorted, without repeats."""
    if value is None or value == "":
        return DEFAULT_THRESHOLDS
    parts = value.split(",") if isinstance(value, str) else [str(part) for part in value]
    found: set[int] = set()
    for part in parts:
        text = part.strip().removesuffix("%")
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            raise InvalidBudget(
                "thresholds", f"each must be a whole percent 1-1000, got {part.strip()[:20]!r}"
            )
        found.add(int(text))
    if len(found) > 10:
        raise InvalidBudget("thresholds", "at most 10 thresholds")
    return tuple(sorted(found))


def _choice(field: str, value: str, allowed: Collection[str]) -> str:
    if value not in allowed:
        raise InvalidBudget(field, f"must be one of {', '.join(allowed)}, got {value[:40]!r}")
    return value


def budget_fields(
    *,
    metrics: MetricSet,
    attributes: Collection[str],
    name: str,
    scope: str,
    scope_value: str | None,
    metric: str,
    limit: object,
    period: str,
    timezone: str,
    thresholds: str | Sequence[int] | None,
    action: str,
) -> dict[str, Any]:
    """The stored columns of a budget, every field checked (InvalidBudget names the
    first wrong one)."""
    name = name.strip()
    if not name or len(name) > 255 or not name.isprintable():
        raise InvalidBudget("name", "must be 1-255 printable characters")
    scope = _choice("scope", scope, (EVERYONE, PERSON, *attributes))
    value = (scope_value or "").strip() or None
    if scope == EVERYONE:
        if value is not None:
            raise InvalidBudget("scope_value", "an everyone budget names no one")
    elif value is None or len(value) > 255:
        raise InvalidBudget("scope_value", f"a {scope} budget needs its {scope} (1-255 chars)")
    metric = _choice("metric", metric, available_metrics(metrics))
    try:
        tz = zone(timezone)
    except ValueError as exc:
        raise InvalidBudget("timezone", str(exc)) from exc
    return {
        "name": name,
        "scope": scope,
        "scope_value": value,
        "metric": metric,
        "limit_value": parse_limit(unit_of(metrics, metric), limit),
        "period": _choice("period", period, PERIODS),
        "timezone": tz.key,
        "thresholds": ",".join(str(t) for t in parse_thresholds(thresholds)),
        "action": _choice("action", action, ACTIONS),
    }
