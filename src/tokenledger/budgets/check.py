"""Budgets of one usage store: changes (audited), each person's use, the gate.

A person's use of a budget is their usage of its metric in the budget's local period,
counted by the events' ``started_at`` (so a late event raises the period it belongs to)
and read from the rollups like any report: a few index seeks per period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from tokenledger.auth import audit
from tokenledger.budgets.model import (
    BUDGET_METRICS,
    Budget,
    InvalidBudget,
    Period,
    applicable,
    budget_fields,
    unit_of,
)
from tokenledger.gateway.budget import ALLOWED, BudgetInfo, Decision
from tokenledger.metrics import Raw
from tokenledger.store import budgets as budget_store
from tokenledger.store.budgets import Person
from tokenledger.store.usage_reads import UsageReader
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter


@dataclass(frozen=True)
class BudgetUse:
    """A person's use of one budget in one of its periods."""

    budget: Budget
    period: Period
    used: int

    @property
    def remaining(self) -> int:
        return max(self.budget.limit - self.used, 0)

    def reached(self, percent: int) -> bool:
        """Whether the use is at or over ``percent`` of the limit (exact)."""
        return self.used * 100 >= self.budget.limit * percent

    @property
    def percent(self) -> int:
        """The use in whole percent of the limit (rounded down)."""
        return self.used * 100 // self.budget.limit

    @property
    def blocking(self) -> bool:
        return self.budget.action == "block" and self.used >= self.budget.limit


def tightest(uses: Iterable[BudgetUse]) -> BudgetUse | None:
    """The use nearest its limit (the highest share used; exact)."""
    found: BudgetUse | None = None
    for use in uses:
        if found is None or use.used * found.budget.limit > found.used * use.budget.limit:
            found = use
    return found


@dataclass(frozen=True)
class PersonUses:
    person: Person
    uses: list[BudgetUse]


PeriodOf = Callable[[Budget], Period]


class Budgets:
    """The budgets of ``store``'s database and every person's use of them.

    The check keeps the budget definitions with the version they were read at and
    re-reads them only when a change (in any process) raised the version, which it
    reads with the person on every check: a raised limit applies to the next check.
    """

    def __init__(self, store: UsageStore) -> None:
        self.store = store
        self.db = store.db
        self.metrics = store.metrics
        # The person attributes a budget can be scoped to: {name: users column}.
        self.columns = {name: a.column for name, a in store.attributes.items()}
        self._definitions: tuple[int, list[Budget]] | None = None  # (version, budgets)
        self._periods: dict[tuple[str, str], Period] = {}  # (period, zone) -> current

    # -- changes ----------------------------------------------------------------------

    def fields(self, **given: Any) -> dict[str, Any]:
        """Checked columns of a budget (InvalidBudget names a wrong field)."""
        return budget_fields(metrics=self.metrics, attributes=list(self.columns), **given)

    def create(self, *, actor: str, client: str | None, now_us: int, **given: Any) -> Budget:
        fields = self.fields(**given)
        with self.db.write() as conn:
            budget_id = budget_store.insert_budget(conn, fields=fields, now_us=now_us)
            self._audit(conn, audit.BUDGET_CREATED, budget_id, fields, actor, client, now_us)
            budget = budget_store.find_budget(conn, budget_id)
        assert budget is not None
        return budget

    def update(
        self, budget_id: int, *, actor: str, client: str | None, now_us: int, **given: Any
    ) -> Budget:
        fields = self.fields(**given)
        with self.db.write() as conn:
            if not budget_store.update_budget(
                conn, budget_id=budget_id, fields=fields, now_us=now_us
            ):
                raise LookupError(f"no budget with id {budget_id}")
            self._audit(conn, audit.BUDGET_CHANGED, budget_id, fields, actor, client, now_us)
            budget = budget_store.find_budget(conn, budget_id)
        assert budget is not None
        return budget

    def delete(self, budget_id: int, *, actor: str, client: str | None, now_us: int) -> Budget:
        with self.db.write() as conn:
            budget = budget_store.find_budget(conn, budget_id)
            if budget is None or not budget_store.delete_budget(conn, budget_id=budget_id):
                raise LookupError(f"no budget with id {budget_id}")
            details = {"name": budget.name, "scope": budget.scope_text(), "metric": budget.metric}
            self._audit(conn, audit.BUDGET_DELETED, budget_id, details, actor, client, now_us)
        return budget

    def _audit(
        self,
        conn: Connection,
        action: str,
        budget_id: int,
        fields: dict[str, Any],
        actor: str,
        client: str | None,
        now_us: int,
    ) -> None:
        details = {"budget_id": budget_id, **fields}
        audit.record_in(
            conn, actor=actor, action=action, details=details, now_us=now_us, client=client
        )

    def all(self) -> list[Budget]:
        with self.db.read() as conn:
            return budget_store.load_budgets(conn)

    def find(self, budget_id: int) -> Budget:
        with self.db.read() as conn:
            budget = budget_store.find_budget(conn, budget_id)
        if budget is None:
            raise LookupError(f"no budget with id {budget_id}")
        return budget

    # -- uses -------------------------------------------------------------------------

    def value(self, budget: Budget, raw: Raw | None) -> int:
        return 0 if raw is None else self.metrics.value(raw, BUDGET_METRICS[budget.metric])

    def _current(self, conn: Connection, version: int) -> list[Budget]:
        """The budgets at ``version``: kept from an earlier check, or read now."""
        kept = self._definitions
        if kept is not None and kept[0] == version:
            return kept[1]
        budgets = budget_store.load_budgets(conn)
        self._definitions = (version, budgets)
        return budgets

    def _period(self, budget: Budget, now_us: int) -> Period:
        """``budget.period_at(now_us)``, kept while ``now_us`` is in it."""
        key = (budget.period, budget.timezone)
        found = self._periods.get(key)
        if found is None or not found.start_us <= now_us < found.end_us:
            found = self._periods[key] = budget.period_at(now_us)
        return found

    def uses_of(
        self, user_id: str, *, now_us: int, reader: UsageReader | None = None
    ) -> list[BudgetUse]:
        """``user_id``'s use of each budget that applies to them, this period: two
        statements (the version with the person, then their usage in every period), in
        ``reader``'s transaction when given (a caller that reads more in it)."""
        if reader is None:
            with self.store.read() as own:
                return self._uses_of(own, user_id, now_us)
        return self._uses_of(reader, user_id, now_us)

    def _uses_of(self, reader: UsageReader, user_id: str, now_us: int) -> list[BudgetUse]:
        version, person = budget_store.version_and_person(
            reader.conn, param=self.db.dialect.param, user_id=user_id, attributes=self.columns
        )
        budgets = self._current(reader.conn, version)
        if not budgets:
            return []
        attributes = person.attributes if person is not None else {}
        mine = [
            (b, self._period(b, now_us))
            for b in applicable(budgets, user_id=user_id, attributes=attributes)
        ]
        if person is None:  # no usage yet
            return [BudgetUse(budget, period, 0) for budget, period in mine]
        usage = budget_store.person_usage(
            reader,
            param=self.db.dialect.param,
            user_pk=person.pk,
            periods={period for _, period in mine},
        )
        return [
            BudgetUse(budget, period, self.value(budget, usage[period])) for budget, period in mine
        ]

    def uses_of_people(
        self,
        *,
        budgets: Sequence[Budget] | None = None,
        period_of: PeriodOf,
        user_ids: Iterable[str] | None = None,
    ) -> dict[int, PersonUses]:
        """Every person with usage in a period of ``budgets`` (all when None) and their
        use of those that apply to them; only ``user_ids`` when given."""
        return self.uses_in(budgets=budgets, periods_of=[period_of], user_ids=user_ids)[0]

    def uses_in(
        self,
        *,
        budgets: Sequence[Budget] | None = None,
        periods_of: Sequence[PeriodOf],
        user_ids: Iterable[str] | None = None,
    ) -> list[dict[int, PersonUses]]:
        """:meth:`uses_of_people` for each of ``periods_of`` (e.g. this period and the
        one before), in one read: the people found once, one usage read per distinct
        period."""
        with self.store.read() as reader:
            chosen = budget_store.load_budgets(reader.conn) if budgets is None else budgets
            if not chosen:
                return [{} for _ in periods_of]
            users = UserFilter()
            if user_ids is not None:  # one read per period for all of them
                pks = budget_store.people_pks(reader.conn, user_ids=user_ids)
                users = UserFilter(user_pks=pks)
            periods = {period_of(budget) for period_of in periods_of for budget in chosen}
            usage = {p: reader.per_user(p.start_us, p.end_us, users) for p in periods}
            found = {pk for per_user in usage.values() for pk in per_user}
            people = budget_store.find_people(reader.conn, user_pks=found, attributes=self.columns)
        return [self._people_uses(chosen, people, usage, period_of) for period_of in periods_of]

    def _people_uses(
        self,
        budgets: Sequence[Budget],
        people: dict[int, Person],
        usage: dict[Period, dict[int, Raw]],
        period_of: PeriodOf,
    ) -> dict[int, PersonUses]:
        """Uses per person with usage in one of the periods ``period_of`` gives.

        Tens of thousands of people: each budget's period is found once, and the
        budgets that apply once per distinct (own budget or not, attributes)."""
        period_by_id = {budget.id: period_of(budget) for budget in budgets}
        mine_periods = [usage[period] for period in set(period_by_id.values())]
        personal = {budget.scope_value for budget in budgets if budget.personal}
        applying: dict[tuple[Any, ...], list[tuple[Budget, Period]]] = {}
        result: dict[int, PersonUses] = {}
        for pk, person in people.items():
            if not any(pk in per_user for per_user in mine_periods):
                continue
            own = person.user_id if person.user_id in personal else None
            shape = (own, *sorted(person.attributes.items()))
            mine = applying.get(shape)
            if mine is None:
                mine = applying[shape] = [
                    (budget, period_by_id[budget.id])
                    for budget in applicable(
                        budgets, user_id=person.user_id, attributes=person.attributes
                    )
                ]
            uses = [
                BudgetUse(budget, period, self.value(budget, usage[period].get(pk)))
                for budget, period in mine
            ]
            result[pk] = PersonUses(person, uses)
        return result

    def people_over(self, percent: int, *, now_us: int) -> frozenset[int]:
        """The people (``users.id``) at or over ``percent`` of a budget this period."""
        found = self.uses_of_people(period_of=lambda b: b.period_at(now_us))
        return frozenset(
            pk for pk, person in found.items() if any(u.reached(percent) for u in person.uses)
        )

    def tightest_of(self, user_ids: Iterable[str], *, now_us: int) -> dict[str, BudgetUse]:
        """Each person's use of their tightest budget this period (none: left out)."""
        if not self.all():
            return {}
        found = self.uses_of_people(
            period_of=lambda b: b.period_at(now_us), user_ids=list(user_ids)
        )
        result = {}
        for person in found.values():
            use = tightest(person.uses)
            if use is not None:
                result[person.person.user_id] = use
        return result

    def preview(self, *, now_us: int, percent: int = 80, **given: Any) -> int:
        """How many people would be at or over ``percent`` of a budget of ``given``
        fields this period (the others budgets' exceptions taken into account)."""
        fields = self.fields(**given)
        candidate = _draft(fields, now_us)
        budgets = [*self.all(), candidate]
        found = self.uses_of_people(budgets=budgets, period_of=lambda b: b.period_at(now_us))
        return sum(
            1
            for person in found.values()
            for use in person.uses
            if use.budget.id == candidate.id and use.reached(percent)
        )

    # -- the gate ---------------------------------------------------------------------

    def info(self, use: BudgetUse) -> BudgetInfo:
        budget = use.budget
        unit = unit_of(self.metrics, budget.metric)
        limit: int | Decimal = budget.limit
        used: int | Decimal = use.used
        if unit.money:
            limit, used = Decimal(limit).scaleb(-9), Decimal(used).scaleb(-9)
        return BudgetInfo(
            str(budget.id), budget.metric, limit, used, use.period.start_us, use.period.end_us
        )

    def decide(self, uses: Sequence[BudgetUse], *, now_us: int) -> Decision:
        """Refused while a ``block`` budget is used up: until the latest such period ends."""
        blocking = [use for use in uses if use.blocking]
        if not blocking:
            return ALLOWED
        latest = max(blocking, key=lambda use: use.period.end_us)
        retry_after = -(-(latest.period.end_us - now_us) // 1_000_000)
        return Decision(allowed=False, retry_after_s=retry_after, budget=self.info(latest))

    def check(self, user_id: str, *, now_us: int) -> Decision:
        """The gateway's :class:`~tokenledger.gateway.budget.BudgetGate`."""
        return self.decide(self.uses_of(user_id, now_us=now_us), now_us=now_us)

    def check_in(self, conn: Connection, user_id: str, *, now_us: int) -> Decision:
        """:meth:`check` in ``conn``'s read transaction (the gateway's, which found the
        key in it: a :class:`~tokenledger.gateway.budget.SharedReadGate`)."""
        uses = self._uses_of(UsageReader(self.store, conn), user_id, now_us)
        return self.decide(uses, now_us=now_us)


def _draft(fields: dict[str, Any], now_us: int) -> Budget:
    """An unsaved budget (id 0) of checked ``fields``."""
    template = Budget(0, "", "", None, "", 1, "", "UTC", (), "", now_us, now_us)
    thresholds = tuple(int(part) for part in fields["thresholds"].split(","))
    values = {k: v for k, v in fields.items() if k not in {"limit_value", "thresholds"}}
    return replace(template, **values, limit=fields["limit_value"], thresholds=thresholds)


__all__ = ["BudgetUse", "Budgets", "InvalidBudget", "PersonUses"]
