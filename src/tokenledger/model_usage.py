"""Usage by model: for a range (and a search), each model and provider's requests,
tokens, cost, share of the cost and unpriced requests.

Read from the per-model rollup (``MODEL_ROLLUP``) when everyone is counted, else from
the per-user-and-model rollup (``USER_MODEL_ROLLUP``) summed over the matching people,
so a 365-day model report costs what a token report costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from tokenledger.localdays import LocalRange
from tokenledger.metrics import Raw
from tokenledger.store.port import UsagePort
from tokenledger.store.rollups import MODEL_ROLLUP, USER_MODEL_ROLLUP
from tokenledger.usage import Usage, UserFilter

SORTS = ("-cost_usd", "-requests", "-total_tokens", "model")


@dataclass(slots=True)
class ModelUsage:
    """One row: a model at a provider ('' when the events name none)."""

    model: str
    provider: str
    usage: Usage
    cost_share: Decimal | None  # of the range's cost (0..1, 4 places); None when it is 0

    @property
    def share_text(self) -> str | None:
        return None if self.cost_share is None else format(self.cost_share, "f")


@dataclass
class ModelUsageReport:
    range: LocalRange
    totals: Usage
    rows: list[ModelUsage]


def model_usage(
    store: UsagePort,
    *,
    local_range: LocalRange,
    users: UserFilter | None = None,
    sort: str = "-cost_usd",
) -> ModelUsageReport:
    """Usage per (model, provider) of the matching people over ``local_range``, most
    expensive first (then by requests; ``sort`` may name requests, tokens or model)."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    metrics = store.metrics
    users = users or UserFilter()
    rollup = USER_MODEL_ROLLUP if users.active else MODEL_ROLLUP
    with store.read() as reader:
        by_key = reader.usage_by(rollup, local_range.start_us, local_range.end_us, users)
    grouped: dict[tuple[str, str], Raw] = {}
    for rollup_key, raw in by_key.items():
        model, provider = rollup_key[-2:]  # after the user, in the per-user rollup
        found = grouped.get((model, provider))
        if found is None:
            grouped[(model, provider)] = list(raw)
        else:
            metrics.add(found, raw)
    totals = metrics.empty()
    for raw in grouped.values():
        metrics.add(totals, raw)
    total_cost = metrics.value(totals, "cost_usd")
    rows = [
        ModelUsage(model, provider, Usage(raw, metrics=metrics), _share(raw, total_cost, store))
        for (model, provider), raw in grouped.items()
    ]
    rows.sort(key=lambda row: (row.model, row.provider))
    if sort != "model":
        key = sort.lstrip("-")
        rows.sort(key=lambda row: (row.usage[key], row.usage.requests), reverse=True)
    return ModelUsageReport(local_range, Usage(totals, metrics=metrics), rows)


def _share(raw: Raw, total_cost: int, store: UsagePort) -> Decimal | None:
    if total_cost == 0:
        return None
    cost = store.metrics.value(raw, "cost_usd")
    return (Decimal(cost) / Decimal(total_cost)).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_EVEN
    )
