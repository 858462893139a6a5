"""Threshold crossings, recorded exactly once with their outbox rows.

After each commit the people in it are checked, and a sweep checks everyone with
usage (at start-up and every few seconds), so a crash between a commit and its check
loses no crossing. Both look at the current period and the one before (a late event
raises last period's use, and can cross one of its thresholds). A crossing is
recorded once per (budget, person, period, threshold) by the unique key of
``budget_crossings``; crossing several thresholds at once records (and sends) each.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenledger.budgets.check import Budgets, PeriodOf, PersonUses
from tokenledger.store import budgets as budget_store
from tokenledger.store.budgets import Crossing

# Deliveries are tried for this long after the crossing (or after a resend).
DELIVERY_WINDOW_US = 24 * 3600 * 1_000_000


def crossings(found: dict[int, PersonUses]) -> list[Crossing]:
    """Every threshold reached in ``found``, recorded or not."""
    result = []
    for pk, person in found.items():
        for use in person.uses:
            for threshold in use.budget.thresholds:
                if use.reached(threshold):
                    result.append(
                        Crossing(
                            use.budget.id,
                            pk,
                            use.period.start_us,
                            use.period.end_us,
                            threshold,
                            use.used,
                            use.budget.limit,
                        )
                    )
    return result


def detect(budgets: Budgets, *, now_us: int, user_ids: Iterable[str] | None = None) -> int:
    """Record the new crossings of ``user_ids`` (everyone with usage when None) in the
    current and previous periods; returns how many were new."""
    chosen = budgets.all()
    if not chosen:
        return 0
    wanted = None if user_ids is None else sorted(set(user_ids))
    periods: tuple[PeriodOf, ...] = (
        lambda b: b.period_at(now_us),
        lambda b: b.previous_period(now_us),
    )
    reached: dict[tuple[int, int, int, int], Crossing] = {}
    for found in budgets.uses_in(budgets=chosen, periods_of=periods, user_ids=wanted):
        for crossing in crossings(found):
            key = (
                crossing.budget_id,
                crossing.user_pk,
                crossing.period_start_us,
                crossing.threshold,
            )
            reached[key] = crossing
    if not reached:
        return 0
    since = min(key[2] for key in reached)
    with budgets.db.read() as conn:
        known = budget_store.known_crossings(
            conn,
            budget_ids=sorted({key[0] for key in reached}),
            user_pks=sorted({key[1] for key in reached}),
            since_us=since,
        )
    new = [crossing for key, crossing in reached.items() if key not in known]
    if not new:
        return 0
    with budgets.db.write() as conn:
        channels = [c.id for c in budget_store.active_channels(budget_store.load_channels(conn))]
        inserted = budget_store.record_crossings(
            conn,
            crossings=new,
            channel_ids=channels,
            now_us=now_us,
            deadline_us=now_us + DELIVERY_WINDOW_US,
        )
    return len(inserted)
