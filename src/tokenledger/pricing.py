"""The cost of an event, exactly: integer nano-dollars and where the number came from.

An event that carries the cost its gateway computed (``cost_usd``) costs that
(``reported``). Otherwise its cost comes from the price catalogue (``catalogue``); a
model that no price covers is ``unpriced``: its cost is unknown (NULL), never 0.

Each event's cost is rounded to the nearest nano-dollar (half to even) once, when it is
priced; every sum is then a sum of integers, exact on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import cache
from typing import Literal

from tokenledger.catalogue import Catalogue, Tokens
from tokenledger.events import Event

CostSource = Literal["reported", "own_price", "catalogue", "unpriced"]
COST_SOURCES: tuple[CostSource, ...] = ("reported", "own_price", "catalogue", "unpriced")

NANOS_PER_DOLLAR = 10**9
# The largest cost of one request (one million dollars): a computed cost beyond it
# comes from an absurd token count, and is left unpriced rather than summed.
MAX_COST_NANOS = 10**6 * NANOS_PER_DOLLAR


def to_nanos(dollars: Decimal) -> int:
    """``dollars`` as integer nano-dollars, rounded half to even."""
    with localcontext() as context:
        context.prec = 60
        return int((dollars * NANOS_PER_DOLLAR).to_integral_value(rounding=ROUND_HALF_EVEN))


def tokens_of(event: Event) -> Tokens:
    return Tokens(
        input_tokens=event.input_tokens,
        cache_read=event.cache_read_tokens or 0,
        cache_write=event.cache_write_tokens or 0,
        output=event.output_tokens,
    )


class Pricer:
    """Prices events: the reported cost, else the catalogue's, else unpriced."""

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self.catalogue = catalogue or Catalogue()

    def price_all(self, events: Sequence[Event]) -> list[Event]:
        """``events`` with their cost and its source (reported costs kept as sent)."""
        return [self.price(event) for event in events]

    def price(self, event: Event) -> Event:
        if event.reported_cost_nanos is not None:
            return replace(event, cost_nanos=event.reported_cost_nanos, cost_source="reported")
        nanos = self.catalogue_nanos(event)
        if nanos is None:
            return replace(event, cost_nanos=None, cost_source="unpriced")
        return replace(event, cost_nanos=nanos, cost_source="catalogue")

    def catalogue_nanos(self, event: Event) -> int | None:
        if not event.model:
            return None
        with localcontext() as context:
            context.prec = 60
            dollars = self.catalogue.dollars(
                model=event.model,
                provider=event.provider,
                tokens=tokens_of(event),
                started_us=event.started_us,
            )
        if dollars is None:
            return None
        nanos = to_nanos(dollars)
        return nanos if 0 <= nanos <= MAX_COST_NANOS else None


@cache
def default_pricer() -> Pricer:
    """One pricer per process: the catalogue's lookups are cached in it."""
    return Pricer()
