"""The cost of an event, exactly: integer nano-dollars and where the number came from.

An event that carries the cost its gateway computed (``cost_usd``) costs that
(``reported``). Otherwise its cost comes from the admins' own prices (``own_price``),
then from the price catalogue (``catalogue``); a model that no price covers is
``unpriced``: its cost is unknown (NULL), never 0.

Each event's cost is rounded to the nearest nano-dollar (half to even) once, when it is
priced; every sum is then a sum of integers, exact on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Literal

from tokenledger.catalogue import Catalogue, Tokens
from tokenledger.events import Event
from tokenledger.prices import OwnPrices

CostSource = Literal["reported", "own_price", "catalogue", "unpriced"]
COST_SOURCES: tuple[CostSource, ...] = ("reported", "own_price", "catalogue", "unpriced")

NANOS_PER_DOLLAR = 10**9
# The largest cost of one request (one million dollars): a computed cost beyond it
# comes from an absurd token count, and is left unpriced rather than summed.
MAX_COST_NANOS = 10**6 * NANOS_PER_DOLLAR


def tokens_of(event: Event) -> Tokens:
    return Tokens(
        input_tokens=event.input_tokens,
        cache_read=event.cache_read_tokens or 0,
        cache_write=event.cache_write_tokens or 0,
        output=event.output_tokens,
    )


NO_OWN_PRICES = OwnPrices()


class Pricer:
    """Prices events: the reported cost, else an own price, else the catalogue's,
    else unpriced."""

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self.catalogue = catalogue or Catalogue()

    def price_all(self, events: Sequence[Event], own: OwnPrices = NO_OWN_PRICES) -> list[Event]:
        """``events`` with their cost and its source (reported costs kept as sent)."""
        return [self.price(event, own) for event in events]

    def price(self, event: Event, own: OwnPrices = NO_OWN_PRICES) -> Event:
        if event.reported_cost_nanos is not None:
            return event.priced(event.reported_cost_nanos, "reported")
        nanos, source = self.cost(
            model=event.model,
            provider=event.provider,
            started_us=event.started_us,
            tokens=tokens_of(event),
            own=own,
        )
        return event.priced(nanos, source)

    def cost(
        self,
        *,
        model: str | None,
        provider: str | None,
        started_us: int,
        tokens: Tokens,
        own: OwnPrices = NO_OWN_PRICES,
    ) -> tuple[int | None, CostSource]:
        """The cost in nano-dollars of ``tokens`` of ``model`` at ``started_us`` from
        the prices (own, then catalogue), and its source."""
        if not model or tokens.cache_read + tokens.cache_write > tokens.input_tokens:
            # No model, or cache parts that add up to more than the input they are
            # part of: no price can say what that cost (genai-prices refuses it too).
            return None, "unpriced"
        price = own.find(model=model, provider=provider, started_us=started_us) if own else None
        if price is not None:
            own_nanos = price.nanos(
                input_tokens=tokens.input_tokens,
                cache_read=tokens.cache_read,
                cache_write=tokens.cache_write,
                output=tokens.output,
            )
            return (own_nanos, "own_price") if own_nanos <= MAX_COST_NANOS else (None, "unpriced")
        nanos = self.catalogue.nanos(
            model=model, provider=provider, tokens=tokens, started_us=started_us
        )
        if nanos is None:
            return None, "unpriced"
        return (nanos, "catalogue") if 0 <= nanos <= MAX_COST_NANOS else (None, "unpriced")


@cache
def default_pricer() -> Pricer:
    """One pricer per process: the catalogue's lookups are cached in it."""
    return Pricer()
