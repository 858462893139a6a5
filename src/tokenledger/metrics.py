"""Metrics: what a report sums over requests, each declared once.

A :class:`Metric` says how one event contributes to it (in Python for the write path,
in SQL for ``verify``, ``rebuild-rollups`` and the raw slivers of odd time zones), its
SQL type, how two partial sums merge and its unit (money is exact: integer
nano-dollars). A :class:`Derived` metric is a sum of stored ones (total tokens). The
declarations in :data:`METRICS` are the single source: the rollup tables' columns, the
write path, every report, ``verify``, the JSON answers, the CSV exports, the sort keys
and the benchmark's comparison all follow from them.

Adding a metric (e.g. cost) is one declaration here plus a migration that adds its
column to every rollup table (``store/schema.py`` names them) and refills the rollups::

    Metric(
        "cost_nanos",
        per_event=value_of("cost_nanos"),   # an events column (NULL counts 0)
        unit=Unit.NANO_USD,                 # exact money: a decimal string in JSON and CSV
        public_name="cost_usd",             # the name in JSON, CSV and sort keys
        label="Cost",
    )

Every metric is additive (it merges by ``+``): that is what lets the day rollup keep
running totals, so a 365-day report costs two index seeks per user. The span of a set
of requests (first and last instant) merges by min / max; it is kept beside the
metrics, not declared as one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from operator import attrgetter, itemgetter
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, FromClause, case, func, literal
from sqlalchemy.types import TypeEngine

from tokenledger.events import Event

# Usage as a plain list: the stored metrics in declaration order, then the span
# (first_us, last_us; None when unknown). Reports over 10,000s of users build no object
# per user, only these lists.
Raw = list[Any]


class Unit(Enum):
    """What a metric counts, and so how it is written in JSON and CSV."""

    COUNT = "count"
    TOKENS = "tokens"
    MILLISECONDS = "ms"
    NANO_USD = "nano_usd"  # exact money: 10^-9 US dollars, an integer

    @property
    def money(self) -> bool:
        return self is Unit.NANO_USD

    def json_value(self, value: int) -> int | str:
        """Numbers as numbers; money as a decimal string of dollars (never a float)."""
        return _dollars_text(value) if self.money else value

    def csv_value(self, value: int) -> int | str:
        """Durations as exact seconds, money as exact dollars, counts as they are."""
        if self is Unit.MILLISECONDS:
            return _seconds_text(value)
        return self.json_value(value)

    @property
    def csv_text(self) -> Callable[[int], str] | None:
        """The function writing a value of this unit as CSV text (None: as it is)."""
        return {Unit.MILLISECONDS: _seconds_text, Unit.NANO_USD: _dollars_text}.get(self)


def _seconds_text(duration_ms: int) -> str:
    return format(seconds(duration_ms), "f")


def _dollars_text(nanos: int) -> str:
    return format(dollars(nanos), "f")


def seconds(duration_ms: int) -> Decimal:
    """Milliseconds as exact seconds, e.g. 12345 -> 12.345."""
    return Decimal(duration_ms).scaleb(-3)


def dollars(nanos: int) -> Decimal:
    """Nano-dollars as exact dollars, e.g. 225000 -> 0.000225000."""
    return Decimal(nanos).scaleb(-9)


@dataclass(frozen=True)
class Contribution:
    """How one event adds to a metric: the same number in Python and in SQL."""

    python: Callable[[Event], int]
    # A SQL expression over the ``events`` table (or a select with its columns).
    sql: Callable[[FromClause], ColumnElement[Any]]
    # ``python`` as an expression over ``event``, when one of the helpers below made
    # it: the write path then computes an event's whole vector in one function.
    source: str | None = None


def _column(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"not a column name: {name!r}")
    return name


def one() -> Contribution:
    """1 for every event (a count of requests)."""
    return Contribution(lambda _event: 1, lambda _events: literal(1, BigInteger), "1")


def value_of(column: str) -> Contribution:
    """The event's value of ``column`` (an attribute of Event too); NULL counts 0."""
    get = attrgetter(column)
    return Contribution(
        lambda event: get(event) or 0,
        lambda events: func.coalesce(events.c[column], 0),
        f"(event.{_column(column)} or 0)",
    )


def flag(column: str, equals: str) -> Contribution:
    """1 when the event's ``column`` equals ``equals``, else 0."""
    get = attrgetter(column)
    return Contribution(
        lambda event: 1 if get(event) == equals else 0,
        lambda events: case((events.c[column] == equals, 1), else_=0),
        f"(1 if event.{_column(column)} == {equals!r} else 0)",
    )


def is_null(column: str) -> Contribution:
    """1 when the event has no value in ``column`` (e.g. a request without a price)."""
    get = attrgetter(column)
    return Contribution(
        lambda event: 1 if get(event) is None else 0,
        lambda events: case((events.c[column].is_(None), 1), else_=0),
        f"(1 if event.{_column(column)} is None else 0)",
    )


def _vector_function(contributions: Sequence[Contribution]) -> Callable[[Event], Raw]:
    """``event -> [its contribution to each metric]`` as one function: the write path
    calls it for every event, and one list display of plain expressions is several
    times faster than a call per metric. The expressions come from the helpers above
    (column names checked as identifiers), never from input; a contribution without
    one is called."""
    parts: list[str] = []
    namespace: dict[str, Any] = {}
    for index, contribution in enumerate(contributions):
        if contribution.source is None:
            namespace[f"c{index}"] = contribution.python
            parts.append(f"c{index}(event)")
        else:
            parts.append(contribution.source)
    vector: Callable[[Event], Raw] = _list_function("event", parts, namespace)
    return vector


def _list_function(argument: str, parts: list[str], namespace: dict[str, Any]) -> Any:
    """``lambda <argument>: [<parts>]``, for loops over every event or every row of an
    export. Only this module's own expressions (positions, checked column names,
    functions passed in ``namespace``) are ever put in it."""
    return eval(f"lambda {argument}: [{', '.join(parts)}]", namespace)  # noqa: S307


@dataclass(frozen=True)
class Metric:
    """A number summed over requests and kept in every rollup."""

    name: str  # the rollup column (``cum_<name>`` in running-total tables)
    per_event: Contribution
    unit: Unit = Unit.COUNT
    label: str = ""
    public_name: str = ""  # the name in JSON, CSV and sort keys (default ``name``)
    csv_name: str = ""  # the CSV column when it differs from the public name
    sql_type: type[TypeEngine[int]] = BigInteger
    merge: Literal["sum"] = "sum"  # see the module docstring: additive by design

    @property
    def public(self) -> str:
        return self.public_name or self.name

    @property
    def csv(self) -> str:
        return self.csv_name or self.public


@dataclass(frozen=True)
class Derived:
    """A metric computed from stored ones (a sum of them), never stored itself."""

    name: str
    parts: tuple[str, ...]
    unit: Unit = Unit.COUNT
    label: str = ""
    csv_name: str = ""

    @property
    def public(self) -> str:
        return self.name

    @property
    def csv(self) -> str:
        return self.csv_name or self.name


Shown = Metric | Derived


@dataclass(frozen=True)
class MetricSet:
    """The declared metrics, in order, and everything computed from that order."""

    declared: tuple[Shown, ...]
    stored: tuple[Metric, ...] = field(init=False, compare=False)
    # Public name of a stored metric -> its position in a Raw.
    index: dict[str, int] = field(init=False, compare=False)
    public_names: tuple[str, ...] = field(init=False, compare=False)
    # ``event -> [each stored metric's contribution]`` (the write path's hot loop).
    of_event: Callable[[Event], Raw] = field(init=False, compare=False)
    _getters: dict[str, Callable[[Sequence[Any]], int]] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        stored = tuple(item for item in self.declared if isinstance(item, Metric))
        object.__setattr__(self, "stored", stored)
        object.__setattr__(self, "index", {m.public: i for i, m in enumerate(stored)})
        object.__setattr__(self, "public_names", tuple(i.public for i in self.declared))
        object.__setattr__(self, "of_event", _vector_function([m.per_event for m in stored]))
        names = list(self.public_names)
        if len(set(names)) != len(names) or len({m.name for m in stored}) != len(stored):
            raise ValueError(f"metric names must be unique: {names}")
        for item in self.declared:
            if isinstance(item, Derived) and not set(item.parts) <= self.index.keys():
                raise ValueError(f"{item.name} derives from unknown metrics {item.parts}")
        object.__setattr__(self, "_getters", {i.public: self._getter(i) for i in self.declared})

    def plus(self, *more: Shown) -> MetricSet:
        """These metrics and ``more`` (declared after them)."""
        return MetricSet((*self.declared, *more))

    @property
    def size(self) -> int:
        """How many stored metrics a :data:`Raw` holds before its span."""
        return len(self.stored)

    def find(self, public: str) -> Shown:
        for item in self.declared:
            if item.public == public:
                return item
        raise KeyError(public)

    # -- raw usage ------------------------------------------------------------------

    def empty(self) -> Raw:
        return [0] * self.size + [None, None]

    def add(self, target: Raw, source: Sequence[Any]) -> None:
        """Merge ``source`` into ``target`` (both :data:`Raw`): sums and the span."""
        n = self.size
        for i in range(n):
            target[i] += source[i]
        first, last = source[n], source[n + 1]
        if first is not None and (target[n] is None or first < target[n]):
            target[n] = first
        if last is not None and (target[n + 1] is None or last > target[n + 1]):
            target[n + 1] = last

    def totals(self, rows: Iterable[Raw]) -> Raw:
        """The sums of every row (column by column, in C) and the latest request; the
        first request is left out (None): rows of whole days do not know theirs."""
        columns = list(zip(*rows, strict=True))
        if not columns:
            return self.empty()
        n = self.size
        total: Raw = [sum(columns[i]) for i in range(n)]
        lasts = [value for value in columns[n + 1] if value is not None]
        total.append(None)
        total.append(max(lasts) if lasts else None)
        return total

    def value(self, raw: Sequence[Any], public: str) -> int:
        """The value of metric ``public`` (stored or derived) in ``raw``."""
        return self._getters[public](raw)

    def key(self, public: str) -> Callable[[Sequence[Any]], int]:
        """A fast function ``raw -> value of metric public`` (for sorting 10,000s of
        rows, so a derived metric of two parts is one addition, not a loop)."""
        if public not in self._getters:
            raise KeyError(public)
        return self._getters[public]

    def _getter(self, item: Shown) -> Callable[[Sequence[Any]], int]:
        if isinstance(item, Metric):
            return itemgetter(self.index[item.public])
        positions = [self.index[part] for part in item.parts]
        if len(positions) == 2:
            first, second = positions
            return lambda raw: raw[first] + raw[second]
        return lambda raw: sum(raw[position] for position in positions)

    def values(self, raw: Sequence[Any]) -> dict[str, int]:
        """Every declared metric's value, by public name, in declaration order."""
        return {item.public: self.value(raw, item.public) for item in self.declared}

    def json_values(self, raw: Sequence[Any]) -> dict[str, int | str]:
        return {
            item.public: item.unit.json_value(self.value(raw, item.public))
            for item in self.declared
        }

    def csv_cells(self, names: Sequence[str]) -> Callable[[Sequence[Any]], list[int | str]]:
        """A function ``raw -> the CSV cells of metrics names`` (an export writes it for
        every row, so what each cell needs is looked up once, here)."""
        parts: list[str] = []
        namespace: dict[str, Any] = {}
        for index, name in enumerate(names):
            item = self.find(name)
            parts_of = item.parts if isinstance(item, Derived) else (item.public,)
            value = " + ".join(f"raw[{self.index[part]}]" for part in parts_of)
            text = item.unit.csv_text
            if text is None:
                parts.append(value)
            else:
                namespace[f"f{index}"] = text
                parts.append(f"f{index}({value})")
        write: Callable[[Sequence[Any]], list[int | str]] = _list_function("raw", parts, namespace)
        return write


METRICS = MetricSet(
    (
        Metric("requests", one(), label="Requests"),
        Metric("error_requests", flag("status", "error"), label="Failed requests"),
        Metric("input_tokens", value_of("input_tokens"), Unit.TOKENS, "Input tokens"),
        Metric("output_tokens", value_of("output_tokens"), Unit.TOKENS, "Output tokens"),
        Derived("total_tokens", ("input_tokens", "output_tokens"), Unit.TOKENS, "Total tokens"),
        Metric(
            "cache_read_tokens", value_of("cache_read_tokens"), Unit.TOKENS, "Cache read tokens"
        ),
        Metric(
            "cache_write_tokens",
            value_of("cache_write_tokens"),
            Unit.TOKENS,
            "Cache write tokens",
        ),
        Metric("reasoning_tokens", value_of("reasoning_tokens"), Unit.TOKENS, "Reasoning tokens"),
        Metric(
            "duration_ms",
            value_of("duration_ms"),
            Unit.MILLISECONDS,
            "Usage time",
            csv_name="usage_seconds",
        ),
        # Exact money: each event's cost in integer nano-dollars (tokenledger/pricing.py);
        # an unpriced event adds nothing here and one to unpriced_requests.
        Metric("cost_nanos", value_of("cost_nanos"), Unit.NANO_USD, "Cost", public_name="cost_usd"),
        Metric("unpriced_requests", is_null("cost_nanos"), label="Unpriced requests"),
    )
)
