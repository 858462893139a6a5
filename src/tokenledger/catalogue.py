"""The built-in price catalogue: the ``genai-prices`` package's data, never fetched.

``genai-prices`` ships prices for hundreds of models and providers (with historic
prices by date) inside the package; TokenLedger reads only that bundled snapshot
(``UpdatePrices``, which fetches newer data over the network, is never used). A newer
catalogue arrives with a package upgrade.

Its ``calc_price`` takes about half a millisecond, too slow for the write path. A
price is linear in the token counts (within one tier region, for a price whose rates
change with the prompt's size), so its rates are read once per price and region by
pricing tokens of each kind with the package itself, and an event's cost is then that
linear sum in exact decimals. A price the rates cannot be read from is priced by
``calc_price`` for each event.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import cache, cached_property
from types import ModuleType
from typing import TYPE_CHECKING

from tokenledger.localdays import EPOCH, US_PER_DAY

if TYPE_CHECKING:
    from genai_prices import Usage
    from genai_prices import types as catalogue_types
    from genai_prices.data_snapshot import DataSnapshot


@cache
def _package() -> ModuleType:
    """``genai_prices.types``, imported on first use: the package takes about a second
    to import, which a server worker must not spend before it answers its first
    health check (the catalogue is warmed up after start-up, see ``warm``)."""
    from genai_prices import types

    return types


MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Rates:
    """US dollars per million tokens of each kind (input excludes the cache parts), as
    integers over one power of ten: the cost of a request is then integer arithmetic,
    exact for any token count, and fast."""

    input: int
    cache_read: int
    cache_write: int
    output: int
    places: int  # each rate is its integer / 10**places

    @classmethod
    def of(cls, values: tuple[Decimal, Decimal, Decimal, Decimal]) -> Rates:
        """From dollars per million (input, cache read, cache write, output)."""
        places = max(0, *(_places(value) for value in values))
        first, second, third, fourth = (int(value.scaleb(places)) for value in values)
        return cls(first, second, third, fourth, places)

    def nanos(self, *, input_tokens: int, cache_read: int, cache_write: int, output: int) -> int:
        """The cost in nano-dollars (rounded half to even) of ``input_tokens`` (which
        include the cache reads and writes) and ``output`` tokens (which include
        reasoning)."""
        uncached = input_tokens - cache_read - cache_write
        scaled = (
            self.input * uncached
            + self.cache_read * cache_read
            + self.cache_write * cache_write
            + self.output * output
        )
        # dollars = scaled / 10**places / 10**6; nano-dollars = that * 10**9.
        return divide_half_even(scaled * 1000, 10**self.places)


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # a finite price
    return -exponent


def divide_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to an integer, half to even."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


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
        self._given = snapshot
        self._models: dict[tuple[str, str], catalogue_types.ModelInfo | None] = {}
        # (id(model), UTC day) -> its price that day, for models whose prices change
        # only at dates (most); the model is kept alive by ``_models``.
        self._daily: dict[tuple[int, int], catalogue_types.ModelPrice] = {}
        # (id(price), tier region) -> (the price, kept alive so its id stays its own;
        # its rates in that region, or None where they cannot be read).
        self._rates: dict[tuple[int, int], tuple[catalogue_types.ModelPrice, Rates | None]] = {}
        # id(price) -> its tier thresholds (the price is kept alive by ``_rates``).
        self._starts: dict[int, list[int]] = {}

    def nanos(
        self, *, model: str, provider: str | None, tokens: Tokens, started_us: int
    ) -> int | None:
        """The catalogue's cost in nano-dollars (rounded half to even) of ``tokens`` for
        ``model`` at ``started_us``; None when the catalogue does not know the model."""
        found = self._model(model, provider or "")
        if found is None:
            return None
        price = self._price(found, started_us)
        starts = self._starts.get(id(price))
        if starts is None:
            starts = self._starts[id(price)] = _tier_starts(price)
        # Which run of input sizes between tier thresholds the request is in: the
        # package applies a tier's rate to all tokens of a request whose input exceeds
        # the tier's start, so within one run the cost is linear in the token counts.
        region = bisect_left(starts, tokens.input_tokens) if starts else 0
        cached = self._rates.get((id(price), region))
        if cached is None:
            cached = (price, _rates(price, region))
            self._rates[(id(price), region)] = cached
        rates = cached[1]
        if rates is not None:
            return rates.nanos(
                input_tokens=tokens.input_tokens,
                cache_read=tokens.cache_read,
                cache_write=tokens.cache_write,
                output=tokens.output,
            )
        try:
            with localcontext() as context:
                context.prec = 60
                dollars: Decimal = price.calc_price(_usage(tokens))["total_price"]
                return int((dollars * 10**9).to_integral_value(rounding=ROUND_HALF_EVEN))
        except ValueError:  # usage the package cannot price
            return None

    def _price(
        self, found: catalogue_types.ModelInfo, started_us: int
    ) -> catalogue_types.ModelPrice:
        if not isinstance(found.prices, list):  # one price, whatever the date
            return found.prices
        moment = EPOCH + timedelta(microseconds=started_us)
        if not _changes_by_date_only(found):
            return found.get_prices(moment)  # e.g. off-peak hours
        key = (id(found), started_us // US_PER_DAY)
        price = self._daily.get(key)
        if price is None:
            price = self._daily[key] = found.get_prices(moment)
        return price

    @cached_property
    def _snapshot(self) -> DataSnapshot:
        from genai_prices.data_snapshot import get_snapshot

        return self._given or get_snapshot()

    def warm(self) -> None:
        """Import the package and read its data now (e.g. in a thread after start-up)."""
        self._model("gpt-4o", "openai")

    def _model(self, model: str, provider: str) -> catalogue_types.ModelInfo | None:
        key = (model, provider)
        if key not in self._models:
            try:
                _, found = self._snapshot.find_provider_model(model, None, provider or None, None)
            except LookupError:
                found = None
            self._models[key] = found
        return self._models[key]


def _changes_by_date_only(model: catalogue_types.ModelInfo) -> bool:
    """Whether every price change of ``model`` starts on a UTC date (none by hour)."""
    conditional = model.prices
    if not isinstance(conditional, list):
        return True
    return all(
        item.constraint is None or isinstance(item.constraint, _package().StartDateConstraint)
        for item in conditional
    )


def _usage_class() -> type[Usage]:
    from genai_prices import Usage

    return Usage


def _usage(tokens: Tokens) -> Usage:
    return _usage_class()(
        input_tokens=tokens.input_tokens,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        output_tokens=tokens.output,
    )


def _tier_starts(price: catalogue_types.ModelPrice) -> list[int]:
    """The input-token thresholds where a tiered rate of ``price`` changes."""
    starts = {
        tier.start
        for value in vars(price).values()
        if isinstance(value, _package().TieredPrices)
        for tier in value.tiers
    }
    return sorted(starts)


def _rates(price: catalogue_types.ModelPrice, region: int) -> Rates | None:
    """The per-million rates of ``price`` for requests in tier region ``region``, read
    by pricing tokens of each kind with the package itself (at a request size in that
    region); None when no such size can be probed."""
    if not all(
        isinstance(value, Decimal | _package().TieredPrices | None)
        for value in vars(price).values()
    ):
        return None
    starts = _tier_starts(price)
    if not starts:
        size = MILLION
    elif region == 0:
        size = starts[0]  # the largest input still at the base rate
    else:
        size = starts[region - 1] + 1  # the smallest input past the threshold
    if size <= 0:
        return None

    def per_million(**counts: int) -> Decimal:
        usage = _usage_class()(input_tokens=size, **counts)
        return price.calc_price(usage)["total_price"] * MILLION / size

    with localcontext() as context:
        context.prec = 60
        uncached = per_million()
        return Rates.of(
            (
                uncached,
                per_million(cache_read_tokens=size),
                per_million(cache_write_tokens=size),
                per_million(output_tokens=size) - uncached,
            )
        )
