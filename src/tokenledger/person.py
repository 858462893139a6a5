"""One person's usage in depth: the person view and its API.

For a range: the person's row of the User Usage report (cards), the same for the
previous range of as many days, their tokens per local day (per hour for one day) with
their team's median per person beside it, a table per model, a 7 x 24 heat map of
requests by weekday and hour in the viewer's zone, and their events newest first.

The cards and series come from the rollups (they are the report's own figures); the
per-model table and the heat map from the person's raw events, read through the index
on (user_pk, started_us): one person's events are few enough for that even at 10
million events in all (see docs/people.md and the benchmark's ``person-events`` step).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from tokenledger.localdays import LocalRange
from tokenledger.reports import (
    Comparison,
    SeriesPoint,
    Usage,
    previous_usage,
    usage_series,
    user_usage,
)
from tokenledger.store import person_reads
from tokenledger.store.person_reads import PersonRow
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter

# Above this many points, the team's median is left out of the series (one report of
# the team per point).
MEDIAN_MAX_POINTS = 93
EVENTS_PAGE_SIZE = 50
MAX_EVENTS_PAGE = 500
STATUSES = ("ok", "error")


class NoSuchPerson(LookupError):
    """No person has this user id."""


@dataclass
class ModelUsage:
    """One model's line of the person's table (a model and provider)."""

    model: str | None
    provider: str | None
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nanos: int = 0  # exact; the priced requests' cost
    unpriced_requests: int = 0  # requests without a price: their cost is unknown
    durations: list[int] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def duration_ms(self) -> int:
        return sum(self.durations)

    @property
    def median_ms(self) -> int | None:
        return int(statistics.median_low(self.durations)) if self.durations else None

    @property
    def p95_ms(self) -> int | None:
        return percentile(self.durations, 95)


def percentile(values: Sequence[int], rank: int) -> int | None:
    """The nearest-rank percentile (a value that occurred); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, -(-rank * len(ordered) // 100) - 1)
    return ordered[index]


@dataclass
class SeriesItem:
    """A point of the person's series, with the team's median per person (None: not
    computed, or no team)."""

    point: SeriesPoint
    team_median: int | None = None


@dataclass
class PersonReport:
    person: PersonRow
    range: LocalRange
    usage: Usage  # = the person's row of the User Usage report of the range
    previous: Comparison
    interval: Literal["hour", "day"]
    series: list[SeriesItem]
    models: list[ModelUsage]
    # heat[weekday][hour]: requests, Monday first, in the range's zone.
    heat: list[list[int]]

    @property
    def previous_usage(self) -> Usage:
        return self.previous.of(self.person.user_pk)


def find_person(store: UsageStore, user_id: str) -> PersonRow:
    found = person_reads.person(store, user_id)
    if found is None:
        raise NoSuchPerson(user_id)
    return found


def person_report(store: UsageStore, *, user_id: str, local_range: LocalRange) -> PersonReport:
    """Everything the person view shows for ``local_range`` (NoSuchPerson if unknown)."""
    person = find_person(store, user_id)
    users = UserFilter(user_id=user_id)
    report = user_usage(store, local_range=local_range, users=users, limit=1)
    usage = report.rows[0].usage if report.rows else Usage(metrics=store.metrics)
    previous = previous_usage(store, local_range=local_range, users=users)
    interval: Literal["hour", "day"] = "hour" if local_range.start == local_range.end else "day"
    points = usage_series(store, local_range=local_range, interval=interval, users=users)
    series = [SeriesItem(point) for point in points]
    if person.team is not None and len(points) <= MEDIAN_MAX_POINTS:
        _team_medians(store, series, local_range, interval, person.team)
    models, heat = _from_events(store, person.user_pk, local_range)
    return PersonReport(person, local_range, usage, previous, interval, series, models, heat)


def _team_medians(
    store: UsageStore,
    series: list[SeriesItem],
    local_range: LocalRange,
    interval: str,
    team: str,
) -> None:
    """Each point's median of tokens per person over the team's people with requests in
    the range (a person without requests in a point counts 0)."""
    team_filter = UserFilter(where=(("team", team),))
    metrics = store.metrics
    bounds = (
        [(lo, hi) for _, lo, hi in local_range.hour_bounds()]
        if interval == "hour"
        else [(lo, hi) for _, lo, hi in local_range.day_bounds()]
    )
    with store.read() as reader:
        members = list(reader.per_user(local_range.start_us, local_range.end_us, team_filter))
        if not members:
            return
        for item, (lo, hi) in zip(series, bounds, strict=True):
            per_user = reader.per_user(lo, hi, team_filter)
            tokens = [
                metrics.value(per_user[pk], "total_tokens") if pk in per_user else 0
                for pk in members
            ]
            item.team_median = int(statistics.median(tokens))


def _from_events(
    store: UsageStore, user_pk: int, local_range: LocalRange
) -> tuple[list[ModelUsage], list[list[int]]]:
    by_model: dict[tuple[str | None, str | None], ModelUsage] = {}
    heat = [[0] * 24 for _ in range(7)]
    tz = local_range.tz
    hour_cache: dict[int, tuple[int, int]] = {}
    for (
        started_us,
        model,
        provider,
        status,
        duration_ms,
        input_tokens,
        output_tokens,
        cache_read,
        cache_write,
        reasoning,
        cost,
    ) in person_reads.scan(
        store, user_pk=user_pk, start_us=local_range.start_us, end_us=local_range.end_us
    ):
        line = by_model.get((model, provider))
        if line is None:
            line = by_model[(model, provider)] = ModelUsage(model, provider)
        line.requests += 1
        line.errors += status == "error"
        line.input_tokens += input_tokens
        line.output_tokens += output_tokens
        line.cache_read_tokens += cache_read or 0
        line.cache_write_tokens += cache_write or 0
        line.reasoning_tokens += reasoning or 0
        if cost is None:
            line.unpriced_requests += 1
        else:
            line.cost_nanos += cost
        line.durations.append(duration_ms)
        utc_hour = started_us // 3_600_000_000
        cell = hour_cache.get(utc_hour)
        if cell is None:
            local = datetime.fromtimestamp(started_us / 1_000_000, UTC).astimezone(tz)
            cell = (local.weekday(), local.hour)
            # With a whole-hour offset, every instant of a UTC hour is in one local hour.
            if not _odd_offset(local):
                hour_cache[utc_hour] = cell
        heat[cell[0]][cell[1]] += 1
    ordered = sorted(
        by_model.values(),
        key=lambda line: (-line.total_tokens, line.model or "", line.provider or ""),
    )
    return ordered, heat


def _odd_offset(local: datetime) -> bool:
    offset = local.utcoffset()
    return offset is not None and offset.total_seconds() % 3600 != 0


# -- the events --------------------------------------------------------------------


@dataclass(frozen=True)
class EventsPage:
    rows: list[dict[str, Any]]
    next_cursor: str | None  # the keyset of the last row, for the next page


def encode_cursor(started_us: int, event_pk: int) -> str:
    return f"{started_us}.{event_pk}"


def decode_cursor(cursor: str) -> tuple[int, int]:
    """A cursor from :func:`encode_cursor` (ValueError otherwise)."""
    started, _, pk = cursor.partition(".")
    if not (started.lstrip("-").isdigit() and pk.isdigit()) or len(cursor) > 40:
        raise ValueError("is not a cursor from a previous page")
    return int(started), int(pk)


def events_page(
    store: UsageStore,
    *,
    user_id: str,
    local_range: LocalRange,
    cursor: str | None = None,
    model: str | None = None,
    status: str | None = None,
    page_size: int = EVENTS_PAGE_SIZE,
) -> EventsPage:
    """One page of the person's events in the range, newest first (keyset paging)."""
    person = find_person(store, user_id)
    before = decode_cursor(cursor) if cursor else None
    rows = person_reads.page(
        store,
        user_pk=person.user_pk,
        start_us=local_range.start_us,
        end_us=local_range.end_us,
        before=before,
        model=model,
        status=status,
        page_size=page_size,
    )
    found = [dict(zip(person_reads.PAGE_COLUMNS, row, strict=True)) for row in rows]
    next_cursor = None
    if len(rows) == page_size:
        last = found[-1]
        next_cursor = encode_cursor(last["started_us"], last["id"])
    return EventsPage(found, next_cursor)
