"""The built-in price catalogue: the ``genai-prices`` package's data, never fetched.

``genai-prices`` ships prices for hundreds of models and providers (with historic
prices by date) inside the package; TokenLedger reads only that bundled snapshot
(``UpdatePrices``, which fetches newer data over the network, is never used). A newer
catalogue arrives with a package upgrade.

Its ``calc_price`` takes about half a millisecond, too slow for the write path. For a
price made only of plain per-token rates (nearly all), the rates are read once by
pricing a million tokens of each kind with the package itself, and an event's cost is
then that linear sum in exact decimals; a price with tiers (rates that depend on the
prompt's size) is priced by ``calc_price`` for each event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from genai_prices import Usage
from genai_prices import types as catalogue_types
from genai_prices.data_snapshot import DataSnapshot, get_snapshot

from tokenledger.localdays import EPOCH

MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Rates:
    """US dollars per million tokens of each kind (input excludes the cache parts)."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal

    def dollars(
        self, *, input_tokens: int, cache_read: int, cache_write: int, output: int
    ) -> Decimal:
        """The exact cost in dollars of ``input_tokens`` (which include the cache reads
        and writes) and ``output`` tokens (which include reasoning)."""
        uncached = input_tokens - cache_read - cache_write
        per_million = (
            self.input * uncached
            + self.cache_read * cache_read
            + self.cache_write * cache_write
            + self.output * output
        )
        return per_million / MILLION


@dataclass(frozen=True, slots=True)
class Tokens:
    """What an event used, in the event contract's terms."""

    input_tokens: int
    cache_read: int
    cache_write: int
    output: int


class Catalogue:
    """Prices from the bundled ``genai-prices`` snapshot."""

    def __init__(self, snapshot: DataSnapshot | None = None) -> None:
        self._snapshot = snapshot or get_snapshot()
        self._models: dict[tuple[str, str], catalogue_types.ModelInfo | None] = {}
        # id(price) -> (the price, kept alive so its id stays its own; its rates).
        self._rates: dict[int, tuple[catalogue_types.ModelPrice, Rates | None]] = {}

    def dollars(
        self, *, model: str, provider: str | None, tokens: Tokens, started_us: int
    ) -> Decimal | None:
        """The catalogue's cost of ``tokens`` for ``model`` at ``started_us``; None when
        the catalogue does not know the model."""
        found = self._model(model, provider or "")
        if found is None:
            return None
        price = found.get_prices(EPOCH + timedelta(microseconds=started_us))
        cached = self._rates.get(id(price))
        if cached is None:
            cached = self._rates[id(price)] = (price, _rates(price))
        rates = cached[1]
        if rates is not None:
            return rates.dollars(
                input_tokens=tokens.input_tokens,
                cache_read=tokens.cache_read,
                cache_write=tokens.cache_write,
                output=tokens.output,
            )
        calculation = price.calc_price(_usage(tokens))
        return calculation["total_price"]

    def _model(self, model: str, provider: str) -> catalogue_types.ModelInfo | None:
        key = (model, provider)
        if key not in self._models:
            try:
                _, found = self._snapshot.find_provider_model(model, None, provider or None, None)
            except LookupError:
                found = None
            self._models[key] = found
        return self._models[key]


def _usage(tokens: Tokens) -> Usage:
    return Usage(
        input_tokens=tokens.input_tokens,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        output_tokens=tokens.output,
    )


def _rates(price: catalogue_types.ModelPrice) -> Rates | None:
    """The per-million rates of a plain price, read by pricing a million tokens of each
    kind with the package; None for a price with tiers (not linear)."""
    if not all(isinstance(value, Decimal | None) for value in vars(price).values()):
        return None

    def cost(**counts: int) -> Decimal:
        return price.calc_price(Usage(**counts))["total_price"]

    return Rates(
        input=cost(input_tokens=MILLION),
        cache_read=cost(input_tokens=MILLION, cache_read_tokens=MILLION),
        cache_write=cost(input_tokens=MILLION, cache_write_tokens=MILLION),
        output=cost(output_tokens=MILLION),
    )
