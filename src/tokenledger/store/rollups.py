"""Rollups: pre-aggregated sums of every metric, each rollup declared once.

A :class:`Rollup` names its keys (the dimensions it is summed by: a user, or nothing
for the totals) and its grains: plain sums per UTC 15-minute or hour bucket, and
running totals per UTC day (one row per key and day with activity, holding every
metric summed up to the end of that day, so a run of whole days costs two index seeks
per key however long it is). The tables (``rollup_<name>_<grain>``), the write path,
``verify`` / ``rebuild-rollups`` and the reports' queries all follow from
:data:`ROLLUPS` and the metrics of :mod:`tokenledger.metrics`.

Adding a rollup is one declaration plus a migration creating its tables (the
migration can copy what ``store/schema.py`` builds for it). For a per-model report::

    MODEL = event_column("model")
    PROVIDER = event_column("provider")
    USER_MODEL = Rollup("user_model", (USER, MODEL, PROVIDER), (Grain.HOUR, Grain.DAY))

Rollups are derived data (``tokenledger rebuild-rollups`` rewrites them from the
events), written in the transaction that stores their events.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from operator import attrgetter
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, FromClause, String, func
from sqlalchemy.types import TypeEngine

from tokenledger.events import Event
from tokenledger.localdays import US_PER_DAY, US_PER_HOUR, US_PER_QUARTER
from tokenledger.metrics import METRICS, MetricSet, Raw


class Grain(Enum):
    """How finely a rollup is bucketed (in UTC)."""

    QUARTER = US_PER_QUARTER  # plain sums per 15 minutes
    HOUR = US_PER_HOUR  # plain sums per hour
    DAY = US_PER_DAY  # running totals up to the end of each day with activity

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def us(self) -> int:
        return self.value

    @property
    def running(self) -> bool:
        return self is Grain.DAY


@dataclass(frozen=True)
class Key:
    """A dimension a rollup is summed by: one column of its tables."""

    name: str  # short name, used in index names ("user")
    column: str  # the column in the rollup tables ("user_pk")
    of_event: Callable[[Event, int], Hashable]  # (event, its user's pk) -> key value
    sql: Callable[[FromClause], ColumnElement[Any]]  # the same over the events table
    sql_type: TypeEngine[Any]
    # ``of_event`` as an expression over ``event`` and ``user_pk``, when made here: the
    # write path then computes every key of an event in one generated function.
    source: str | None = None


USER = Key(
    "user",
    "user_pk",
    lambda _event, user_pk: user_pk,
    lambda e: e.c.user_pk,
    BigInteger(),
    "user_pk",
)


def event_column(column: str, *, length: int = 255) -> Key:
    """A key by an event's text field (``model``, ``provider``); absent is ``''``."""
    if not column.isidentifier():
        raise ValueError(f"not a column name: {column!r}")
    get = attrgetter(column)
    return Key(
        column,
        column,
        lambda event, _user_pk: get(event) or "",
        lambda events: func.coalesce(events.c[column], ""),
        String(length),
        f"(event.{column} or '')",
    )


@dataclass(frozen=True)
class Rollup:
    """Sums of every metric per key and bucket, at each of its grains."""

    name: str
    keys: tuple[Key, ...]
    grains: tuple[Grain, ...]
    # Bucket grains also indexed by (keys, bucket): reads of a few keys over many
    # buckets (a searched report's edge hours) seek instead of scanning every key.
    seek_by_key: tuple[Grain, ...] = ()

    def table(self, grain: Grain) -> str:
        return f"rollup_{self.name}_{grain.label}"

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(key.column for key in self.keys)


USER_ROLLUP = Rollup("user", (USER,), (Grain.QUARTER, Grain.HOUR, Grain.DAY), (Grain.HOUR,))
TOTAL_ROLLUP = Rollup("total", (), (Grain.QUARTER, Grain.HOUR))
# Usage by model (the model report): per person too, so a search narrows it. No
# quarter hours: the edges of a range in a zone of a quarter-hour offset come from the
# events (a few minutes' worth), which keeps the write path to two more tables.
MODEL, PROVIDER = event_column("model"), event_column("provider")
USER_MODEL_ROLLUP = Rollup(
    "user_model", (USER, MODEL, PROVIDER), (Grain.HOUR, Grain.DAY), (Grain.HOUR,)
)
# Usage by model over everyone (the model report without a search or filter): a few
# keys, so a range is a dozen index seeks rather than two per person and model.
MODEL_ROLLUP = Rollup("model", (MODEL, PROVIDER), (Grain.HOUR, Grain.DAY))
ROLLUPS: tuple[Rollup, ...] = (USER_ROLLUP, TOTAL_ROLLUP, USER_MODEL_ROLLUP, MODEL_ROLLUP)

# Sums per (key values..., bucket) of one rollup at one grain.
Sums = dict[tuple[Any, ...], Raw]


@dataclass(frozen=True)
class Level:
    """One rollup at one grain: what a table of it holds."""

    rollup: Rollup
    grain: Grain

    @property
    def table(self) -> str:
        return self.rollup.table(self.grain)


def levels(rollups: Iterable[Rollup]) -> list[Level]:
    return [Level(rollup, grain) for rollup in rollups for grain in rollup.grains]


def aggregate(
    events: Sequence[Event],
    user_pks: dict[str, int],
    *,
    metrics: MetricSet = METRICS,
    rollups: Sequence[Rollup] = ROLLUPS,
) -> dict[Level, Sums]:
    """Sums of ``events`` for every rollup level, ready to be added to its table.

    The events are summed once per (every key of every rollup, quarter hour); each
    rollup projects that onto its keys, and each grain sums the next finer one (which
    has fewer entries than the events).
    """
    columns = _all_keys(rollups)
    key_of = _key_function(columns)
    of_event = metrics.of_event
    n = metrics.size
    base: Sums = {}
    # The hot loop of the write path: every event of every batch.
    for event in events:
        started = event.started_us
        key = key_of(event, user_pks[event.user_id], started // US_PER_QUARTER)
        values = of_event(event)
        current = base.get(key)
        if current is None:
            values.append(started)
            values.append(started)
            base[key] = values
            continue
        for i in range(n):
            current[i] += values[i]
        if started < current[n]:
            current[n] = started
        elif started > current[n + 1]:
            current[n + 1] = started
    result: dict[Level, Sums] = {}
    for rollup in rollups:
        finer = _project(base, [columns.index(k) for k in rollup.keys], metrics)
        step = Grain.QUARTER.us
        for grain in sorted(rollup.grains, key=lambda g: g.us):
            if grain.us != step:
                finer = _coarsen(finer, grain.us // step, metrics)
                step = grain.us
            result[Level(rollup, grain)] = finer
    return result


def _key_function(columns: list[Key]) -> Callable[[Event, int, int], tuple[Any, ...]]:
    """``(event, user pk, quarter) -> (key values..., quarter)`` for ``columns``."""
    if columns == [USER]:
        return lambda _event, user_pk, quarter: (user_pk, quarter)
    if all(key.source is not None for key in columns):
        # One tuple display of plain expressions (checked column names, never input):
        # several times faster than a call per key for every event.
        parts = "".join(f"{key.source}, " for key in columns)
        made: Callable[[Event, int, int], tuple[Any, ...]] = eval(  # noqa: S307
            f"lambda event, user_pk, quarter: ({parts}quarter)"
        )
        return made
    getters = [key.of_event for key in columns]
    return lambda event, user_pk, quarter: (*(get(event, user_pk) for get in getters), quarter)


def _all_keys(rollups: Iterable[Rollup]) -> list[Key]:
    found: list[Key] = []
    for rollup in rollups:
        found += [key for key in rollup.keys if key not in found]
    return found


def _project(base: Sums, positions: list[int], metrics: MetricSet) -> Sums:
    if len(positions) == len(next(iter(base), ())) - 1 and positions == sorted(positions):
        return base  # every key, in order: the base itself
    return _regroup(base, lambda key: (*(key[p] for p in positions), key[-1]), metrics.size)


def _coarsen(finer: Sums, factor: int, metrics: MetricSet) -> Sums:
    return _regroup(finer, lambda key: (*key[:-1], key[-1] // factor), metrics.size)


def _regroup(sums: Sums, new_key: Callable[[tuple[Any, ...]], tuple[Any, ...]], n: int) -> Sums:
    """``sums`` summed again under ``new_key`` of each key (a rollup's spans are never
    empty, so they merge by plain comparisons)."""
    grouped: Sums = {}
    for key, values in sums.items():
        target = new_key(key)
        current = grouped.get(target)
        if current is None:
            grouped[target] = list(values)
            continue
        for i in range(n):
            current[i] += values[i]
        if values[n] < current[n]:
            current[n] = values[n]
        if values[n + 1] > current[n + 1]:
            current[n + 1] = values[n + 1]
    return grouped
