"""Own prices: what an admin says a model costs (negotiated rates, self-hosted models,
models the catalogue lacks).

An own price is per model (and optionally provider), in US dollars per million input,
cache-read, cache-write and output tokens (exact decimals, to the nano-dollar), valid
from a UTC date on. It wins over the catalogue for events on or after that date; the
latest such date wins, and a price naming the event's provider wins over one for any
provider. Setting or deleting one writes an audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tokenledger.auth import audit
from tokenledger.catalogue import divide_half_even
from tokenledger.events import escape_surrogates
from tokenledger.localdays import US_PER_DAY, parse_date
from tokenledger.store import own_prices
from tokenledger.store.database import Database

NANOS = Decimal(10**9)
# Per million tokens: up to a million dollars, to the nano-dollar.
MAX_PER_MILLION = Decimal(1_000_000)
KINDS = ("input", "cache_read", "cache_write", "output")


class InvalidPrice(ValueError):
    """A price field that cannot be stored: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class OwnPrice:
    """An admin's price: nano-dollars per million tokens of each kind."""

    model: str
    provider: str  # '' = any provider
    valid_from: date
    input_nanos: int
    cache_read_nanos: int | None  # None: the input price
    cache_write_nanos: int | None  # None: the input price
    output_nanos: int
    id: int | None = None
    created_us: int | None = None

    @property
    def valid_from_us(self) -> int:
        return day_start_us(self.valid_from)

    def nanos(self, *, input_tokens: int, cache_read: int, cache_write: int, output: int) -> int:
        """The cost in nano-dollars (rounded half to even) of the tokens; input tokens
        include the cache reads and writes."""
        read = self.input_nanos if self.cache_read_nanos is None else self.cache_read_nanos
        write = self.input_nanos if self.cache_write_nanos is None else self.cache_write_nanos
        per_million = (
            self.input_nanos * (input_tokens - cache_read - cache_write)
            + read * cache_read
            + write * cache_write
            + self.output_nanos * output
        )
        return divide_half_even(per_million, 1_000_000)

    def json(self) -> dict[str, Any]:
        """As the API and the CLI show it: dollars per million as decimal strings."""
        return {
            "id": self.id,
            "model": self.model,
            "provider": self.provider or None,
            "valid_from": self.valid_from.isoformat(),
            **{
                f"{kind}_per_million_usd": dollars_text(getattr(self, f"{kind}_nanos"))
                for kind in KINDS
            },
        }


def dollars_text(nanos: int | None) -> str | None:
    if nanos is None:
        return None
    return format(Decimal(nanos).scaleb(-9).normalize(), "f")


def _required_per_million(field: str, value: Any) -> int:
    nanos = _per_million(field, value)
    if nanos is None:
        raise InvalidPrice(field, "is required (US dollars per million tokens)")
    return nanos


def _per_million(field: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidPrice(field, "must be a decimal number of US dollars per million tokens")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidPrice(
            field, f"must be a decimal number, e.g. 2.50 (got {text[:40]!r})"
        ) from exc
    if not amount.is_finite() or amount < 0:
        raise InvalidPrice(field, "must be a number >= 0")
    if amount > MAX_PER_MILLION:
        raise InvalidPrice(field, "must be at most 1000000 (US dollars per million tokens)")
    nanos = amount * NANOS
    if nanos != nanos.to_integral_value():
        raise InvalidPrice(field, "has more than 9 decimal places (nano-dollars)")
    return int(nanos)


def _name(field: str, value: Any, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidPrice(field, "must be text")
    text: str = value.strip()
    if required and not text:
        raise InvalidPrice(field, "is required")
    if len(text) > 255:
        raise InvalidPrice(field, "must be at most 255 characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise InvalidPrice(field, "must not contain control characters")
    if escape_surrogates(text) != text:
        raise InvalidPrice(field, "must be valid Unicode (lone surrogate)")
    return text


def parse_price(values: Mapping[str, Any]) -> OwnPrice:
    """An own price from its fields (``model``, ``provider``, ``valid_from``,
    ``input``, ``cache_read``, ``cache_write``, ``output`` in dollars per million);
    InvalidPrice naming the first bad field."""
    known = {"model", "provider", "valid_from", *KINDS}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidPrice(unknown[0], "is not a known field (check the spelling)")
    raw_date = values.get("valid_from")
    if not isinstance(raw_date, str):
        raise InvalidPrice("valid_from", "is required: a date YYYY-MM-DD (UTC)")
    try:
        valid_from = parse_date(raw_date)
    except ValueError as exc:
        raise InvalidPrice("valid_from", str(exc)) from exc
    input_nanos = _required_per_million("input", values.get("input"))
    output_nanos = _required_per_million("output", values.get("output"))
    return OwnPrice(
        model=_name("model", values.get("model"), required=True),
        provider=_name("provider", values.get("provider"), required=False),
        valid_from=valid_from,
        input_nanos=input_nanos,
        cache_read_nanos=_per_million("cache_read", values.get("cache_read")),
        cache_write_nanos=_per_million("cache_write", values.get("cache_write")),
        output_nanos=output_nanos,
    )


def _from_row(row: Any) -> OwnPrice:
    valid_from = row.valid_from
    if isinstance(valid_from, str):  # pragma: no cover - SQLite without type processing
        valid_from = date.fromisoformat(valid_from)
    return OwnPrice(
        model=row.model,
        provider=row.provider,
        valid_from=valid_from,
        input_nanos=row.input_nanos,
        cache_read_nanos=row.cache_read_nanos,
        cache_write_nanos=row.cache_write_nanos,
        output_nanos=row.output_nanos,
        id=row.id,
        created_us=row.created_us,
    )


def _values(price: OwnPrice) -> dict[str, Any]:
    return {
        "model": price.model,
        "provider": price.provider,
        "valid_from": price.valid_from,
        "input_nanos": price.input_nanos,
        "cache_read_nanos": price.cache_read_nanos,
        "cache_write_nanos": price.cache_write_nanos,
        "output_nanos": price.output_nanos,
    }


class OwnPrices:
    """Own prices by model, for pricing events (the latest valid one wins)."""

    def __init__(self, found: Iterable[OwnPrice] = ()) -> None:
        self._by_model: dict[str, list[OwnPrice]] = {}
        for price in found:
            self._by_model.setdefault(price.model, []).append(price)
        for candidates in self._by_model.values():
            # Latest date first; on one date, a named provider before "any provider".
            candidates.sort(key=lambda p: (p.valid_from, p.provider != ""), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._by_model)

    def find(self, *, model: str, provider: str | None, started_us: int) -> OwnPrice | None:
        for price in self._by_model.get(model, ()):
            if price.provider in ("", provider or "") and price.valid_from_us <= started_us:
                return price
        return None


def load(conn: Any) -> OwnPrices:
    """The own prices as the transaction ``conn`` sees them."""
    return OwnPrices(_from_row(row) for row in own_prices.rows(conn))


def list_prices(db: Database) -> list[OwnPrice]:
    with db.read() as conn:
        return [_from_row(row) for row in own_prices.rows(conn)]


def set_price(
    db: Database, price: OwnPrice, *, now_us: int, actor: str, client: str | None = None
) -> OwnPrice:
    """Store ``price`` (replacing the one of the same model, provider and date)."""
    with db.write() as conn:
        before = own_prices.find(
            conn, model=price.model, provider=price.provider, valid_from=price.valid_from
        )
        price_id = own_prices.upsert(conn, values=_values(price), now_us=now_us)
        stored = _from_row(
            own_prices.find(
                conn, model=price.model, provider=price.provider, valid_from=price.valid_from
            )
        )
        details: dict[str, Any] = {"price": stored.json()}
        if before is not None:
            details["before"] = _from_row(before).json()
        audit.record_in(
            conn, actor=actor, action=audit.PRICE_SET, details=details, now_us=now_us, client=client
        )
    assert stored.id == price_id
    return stored


def delete_price(
    db: Database, price_id: int, *, now_us: int, actor: str, client: str | None = None
) -> OwnPrice:
    """Delete own price ``price_id``; LookupError when there is none."""
    with db.write() as conn:
        found = own_prices.remove(conn, price_id)
        if found is None:
            raise LookupError(f"no own price with id {price_id}")
        deleted = _from_row(found)
        audit.record_in(
            conn,
            actor=actor,
            action=audit.PRICE_DELETED,
            details={"price": deleted.json()},
            now_us=now_us,
            client=client,
        )
    return deleted


def day_start_us(day: date) -> int:
    """UTC midnight of ``day`` (own prices and reprices start at a UTC date)."""
    return (day - date(1970, 1, 1)).days * US_PER_DAY


@dataclass(frozen=True, slots=True)
class UnpricedModel:
    model: str  # '' when the events name none
    provider: str
    requests: int


def unpriced_models(db: Database, *, limit: int = 20) -> list[UnpricedModel]:
    """The models with the most requests no price covers."""
    with db.read() as conn:
        return [UnpricedModel(*row) for row in own_prices.unpriced_models(conn, limit=limit)]
