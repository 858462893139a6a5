"""Who used how much between two local dates: the User Usage report and usage series.

The numbers come from the usage store (:mod:`tokenledger.store.usage_reads`), the
order of the rows from :mod:`tokenledger.ordering`; this module puts them together:
one page of rows plus the totals over every matching user, a complete list for
exports, and series per local hour or day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from tokenledger.localdays import US_PER_QUARTER, LocalRange
from tokenledger.metrics import Raw
from tokenledger.ordering import Item, needs_every_profile, order, parse_sort, sql_order
from tokenledger.store.port import UsagePort, UsageQueries
from tokenledger.store.retention import EventsRemoved
from tokenledger.usage import Profile, Usage, UserFilter

__all__ = [
    "Comparison",
    "GroupUsage",
    "SeriesPoint",
    "Usage",
    "UserFilter",
    "UserUsage",
    "UserUsageReport",
    "all_rows",
    "change",
    "day_rows",
    "previous_range",
    "previous_usage",
    "usage_by_attribute",
    "usage_by_change",
    "usage_series",
    "user_usage",
]


@dataclass(slots=True)
class UserUsage:
    """One row of the User Usage report."""

    user_pk: int
    user_id: str
    name: str | None
    email: str | None
    usage: Usage


@dataclass
class UserUsageReport:
    range: LocalRange
    total_users: int
    totals: Usage
    rows: list[UserUsage]


@dataclass
class _Rows:
    items: list[Item]  # (user pk, raw usage) in report order
    profiles: dict[int, Profile]


def _collect(
    reader: UsageQueries,
    local_range: LocalRange,
    users: UserFilter,
    *,
    sort: str,
    include_inactive: bool,
    window: slice | None,
) -> _Rows:
    metrics = reader.metrics
    parse_sort(sort, metrics)
    start_us, end_us = local_range.start_us, local_range.end_us
    raw = reader.per_user(start_us, end_us, users)
    profiles: dict[int, Profile] = {}
    if include_inactive:
        for pk, profile in reader.matching_users(users):
            profiles[pk] = profile
            if pk not in raw:
                raw[pk] = metrics.empty()
    everything = window is None or needs_every_profile(sort, metrics)
    if everything:
        profiles.update(reader.profiles(pk for pk in raw if pk not in profiles))
        reader.fill_first(_active(raw), start_us, end_us)
    items = list(raw.items())
    order(
        items,
        profiles,
        sort,
        metrics=metrics,
        window=None if everything else window,
        fetch_profiles=reader.profiles,
    )
    if not everything:
        assert window is not None
        page = dict(items[window])
        reader.fill_first(_active(page), start_us, end_us)
        profiles.update(reader.profiles(pk for pk in page if pk not in profiles))
    return _Rows(items, profiles)


def _active(raw: dict[int, Raw]) -> dict[int, Raw]:
    """The users with at least one request (a first request to look for): those whose
    last request is known."""
    return {pk: values for pk, values in raw.items() if values[-1] is not None}


def _rows(reader: UsageQueries, items: list[Item], profiles: dict[int, Profile]) -> list[UserUsage]:
    return [
        UserUsage(pk, *profiles[pk], Usage(values, metrics=reader.metrics)) for pk, values in items
    ]


def events_removed_before(store: UsagePort, local_range: LocalRange) -> int | None:
    """The retention horizon when ``local_range`` starts before it (the individual
    events of its start were deleted; its totals are exact from the rollups), else
    None."""
    horizon = store.retained_from()
    return horizon if horizon is not None and local_range.start_us < horizon else None


def check_retained(store: UsagePort, local_range: LocalRange) -> None:
    """EventsRemoved if a report of ``local_range`` (or one of its local days) would need
    raw events that retention deleted: a local midnight before the horizon that is not
    on a quarter hour (a zone's historical offset). Checked before an export's first
    byte, which could otherwise only break off."""
    horizon = events_removed_before(store, local_range)
    if horizon is None:
        return
    for _, start_us, end_us in local_range.day_bounds():
        if start_us >= horizon:
            return
        # A raw sliver at either end of the day, before the (quarter-hour) horizon.
        if start_us % US_PER_QUARTER or (end_us % US_PER_QUARTER and end_us < horizon):
            raise EventsRemoved(horizon)


def all_rows(
    reader: UsageQueries,
    local_range: LocalRange,
    users: UserFilter,
    *,
    sort: str,
    include_inactive: bool = False,
) -> list[UserUsage]:
    """Every matching user's row in report order, complete (for exports)."""
    rows = _collect(
        reader, local_range, users, sort=sort, include_inactive=include_inactive, window=None
    )
    return _rows(reader, rows.items, rows.profiles)


def day_rows(
    reader: UsageQueries, start_us: int, end_us: int, users: UserFilter, *, sort: str
) -> list[UserUsage]:
    """The rows of the users with requests in ``[start_us, end_us)`` (one local day of
    a daily export), complete and in report order."""
    raw = _active(reader.per_user(start_us, end_us, users))
    reader.fill_first(raw, start_us, end_us)
    profiles = reader.profiles(raw)
    items = list(raw.items())
    order(
        items,
        profiles,
        sort,
        metrics=reader.metrics,
        window=None,
        fetch_profiles=reader.profiles,
    )
    return _rows(reader, items, profiles)


def user_usage(
    store: UsagePort,
    *,
    local_range: LocalRange,
    q: str | None = None,
    sort: str = "-total_tokens",
    limit: int = 50,
    offset: int = 0,
    include_inactive: bool = False,
    users: UserFilter | None = None,
) -> UserUsageReport:
    """The User Usage report: one page of rows plus totals over all matching users
    (``users``, or the search ``q``).

    The totals leave out the first request (it is not known without a seek per user);
    their last request is the latest of all.
    """
    window = slice(offset, offset + limit)
    metrics = store.metrics
    by_sql = None if include_inactive else sql_order(sort, metrics, limit=limit, offset=offset)
    with store.read() as reader:
        if by_sql is not None:  # count, totals and page in SQL: ~50 rows reach Python
            found = reader.per_user_page(
                local_range.start_us, local_range.end_us, users or UserFilter(q=q), order=by_sql
            )
            reader.fill_first(_active(dict(found.items)), local_range.start_us, local_range.end_us)
            shown = _rows(reader, found.items, found.profiles)
            total = Usage(found.totals, metrics=metrics)
            return UserUsageReport(local_range, found.people, total, shown)
        rows = _collect(
            reader,
            local_range,
            users or UserFilter(q=q),
            sort=sort,
            include_inactive=include_inactive,
            window=window,
        )
        page = _rows(reader, rows.items[window], rows.profiles)
    totals = metrics.totals(values for _, values in rows.items)
    return UserUsageReport(local_range, len(rows.items), Usage(totals, metrics=metrics), page)


@dataclass
class GroupUsage:
    """The usage of the people who share a value of an attribute (a team)."""

    value: Any  # None for the people without one
    people: int  # people with requests in the range
    usage: Usage
    all_people: int = 0  # every person with this value (with usage or not)


def usage_by_attribute(
    store: UsagePort,
    *,
    local_range: LocalRange,
    attribute: str,
    users: UserFilter | None = None,
) -> list[GroupUsage]:
    """Usage per value of a person's attribute (store/dimensions.py), over the people
    with requests in the range; the groups by value, people without one last."""
    metrics = store.metrics
    start_us, end_us = local_range.start_us, local_range.end_us
    users = users or UserFilter()
    with store.read() as reader:
        raw = reader.per_user(start_us, end_us, users)
        reader.fill_first(raw, start_us, end_us)
        values = reader.attributes(raw, (attribute,))
        everyone = reader.people_per_value(attribute, users)
    groups: dict[Any, tuple[list[int], Raw]] = {value: ([0], metrics.empty()) for value in everyone}
    for pk, usage in raw.items():
        value = values[pk][0]
        found = groups.get(value)
        if found is None:
            groups[value] = ([1], list(usage))
        else:
            found[0][0] += 1
            metrics.add(found[1], usage)
    ordered = sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return [
        GroupUsage(value, people[0], Usage(usage, metrics=metrics), everyone.get(value, 0))
        for value, (people, usage) in ordered
    ]


def previous_range(local_range: LocalRange) -> LocalRange:
    """The range of as many local days just before ``local_range`` (same zone)."""
    days = local_range.end - local_range.start
    end = local_range.start - timedelta(days=1)
    return LocalRange.of(end - days, end, local_range.tz)


@dataclass
class Comparison:
    """Usage in the previous range of the same length: per person and in total."""

    range: LocalRange
    per_user: dict[int, Usage]
    totals: Usage

    def of(self, user_pk: int) -> Usage:
        return self.per_user.get(user_pk) or Usage(metrics=self.totals.metric_set)


def previous_usage(store: UsagePort, *, local_range: LocalRange, users: UserFilter) -> Comparison:
    """The usage of ``users`` in the range before ``local_range`` (for "+23% vs the 30
    days before"): exactly the report of that range."""
    before = previous_range(local_range)
    metrics = store.metrics
    with store.read() as reader:
        raw = reader.per_user(before.start_us, before.end_us, users)
    return Comparison(
        before,
        {pk: Usage(values, metrics=metrics) for pk, values in raw.items()},
        Usage(metrics.totals(raw.values()), metrics=metrics),
    )


def usage_by_change(
    store: UsagePort,
    *,
    local_range: LocalRange,
    users: UserFilter,
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> UserUsageReport:
    """The User Usage report ordered by the change of each person's total tokens
    against the previous range of as many days (then by user id); people without
    requests in the range but with some before come too (their change is negative)."""
    before = previous_range(local_range)
    metrics = store.metrics
    with store.read() as reader:
        raw = reader.per_user(local_range.start_us, local_range.end_us, users)
        previous = reader.per_user(before.start_us, before.end_us, users)
        for pk in previous:
            raw.setdefault(pk, metrics.empty())
        profiles = reader.profiles(raw)

        def key(pk: int) -> tuple[int, str]:
            now = metrics.value(raw[pk], "total_tokens")
            then = metrics.value(previous[pk], "total_tokens") if pk in previous else 0
            return (now - then) * (-1 if descending else 1), profiles[pk][0]

        ordered = sorted(raw, key=key)
        page = {pk: raw[pk] for pk in ordered[offset : offset + limit]}
        reader.fill_first(_active(page), local_range.start_us, local_range.end_us)
    rows = _rows(reader, list(page.items()), profiles)
    totals = Usage(metrics.totals(raw.values()), metrics=metrics)
    return UserUsageReport(local_range, len(raw), totals, rows)


def change(current: int, previous: int) -> float | None:
    """The relative change from ``previous`` to ``current`` (None: no previous usage)."""
    if previous == 0:
        return None
    return (current - previous) / previous


@dataclass
class SeriesPoint:
    start: datetime
    usage: Usage


def usage_series(
    store: UsagePort,
    *,
    local_range: LocalRange,
    interval: Literal["hour", "day"],
    q: str | None = None,
    user_id: str | None = None,
    users: UserFilter | None = None,
) -> list[SeriesPoint]:
    """Usage per local hour or day of ``local_range`` (zero-filled), of ``users`` (or
    the search ``q`` and ``user_id``)."""
    if interval == "day":
        starts: list[datetime] = []
        buckets = []
        for day, lo, hi in local_range.day_bounds():
            starts.append(datetime(day.year, day.month, day.day, tzinfo=local_range.tz))
            buckets.append((lo, hi))
    else:
        hours = list(local_range.hour_bounds())
        starts = [start for start, _, _ in hours]
        buckets = [(lo, hi) for _, lo, hi in hours]
    with store.read() as reader:
        values = reader.series(buckets, users or UserFilter(q=q, user_id=user_id))
    return [
        SeriesPoint(start, Usage(raw, metrics=store.metrics))
        for start, raw in zip(starts, values, strict=True)
    ]
