"""Local days and the UTC buckets that cover them exactly.

All instants are integers: microseconds since the Unix epoch, UTC. A local day is
``[local midnight, next local midnight)``, each end converted to UTC on its own, so
23- and 25-hour DST days and +05:30 / +05:45 zones come out exact. Nothing here reads
the process's own time zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

US_PER_SECOND = 1_000_000
US_PER_QUARTER = 15 * 60 * US_PER_SECOND
US_PER_HOUR = 60 * 60 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(9998, 12, 31)


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; ValueError when there is none."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch for an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(us: int, tz: ZoneInfo) -> datetime:
    """The instant ``us`` as an aware datetime in ``tz``."""
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz)


def iso(us: int | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 with offset in ``tz`` (None stays None)."""
    if us is None:
        return None
    return from_us(us, tz).isoformat()


_NAIVE_EPOCH = datetime(1970, 1, 1)


class IsoFormatter:
    """:func:`iso` for many instants in one zone, about twice as fast.

    A zone's offset is constant over nearly every UTC hour, so the offset and its text
    are worked out once per hour and the local time is formatted without a zone. An
    hour with a change of offset in it is formatted the exact way, instant by instant.
    Memory is bounded: the per-hour table is cleared when it grows large.
    """

    __slots__ = ("_hours", "_tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._hours: dict[int, tuple[int, str] | None] = {}

    def __call__(self, us: int) -> str:
        hour = us // US_PER_HOUR
        try:
            found = self._hours[hour]
        except KeyError:
            found = self._learn(hour)
        if found is None:
            return from_us(us, self._tz).isoformat()
        offset_us, suffix = found
        return (_NAIVE_EPOCH + timedelta(microseconds=us + offset_us)).isoformat() + suffix

    def spans(self, start_us: int, end_us: int) -> list[tuple[int, int, int, str]]:
        """``(from_us, to_us, offset_us, suffix)``: the runs of whole UTC hours over
        ``[start_us, end_us)`` in which the zone keeps one offset (an hour in which it
        changes is in none), for formatting in SQL exactly as here."""
        found: list[tuple[int, int, int, str]] = []
        for hour in range(start_us // US_PER_HOUR, -(-end_us // US_PER_HOUR)):
            entry = self._hours[hour] if hour in self._hours else self._learn(hour)
            lo = hour * US_PER_HOUR
            if entry is None:
                continue
            if found and found[-1][1] == lo and found[-1][2:] == entry:
                found[-1] = (found[-1][0], lo + US_PER_HOUR, *entry)
            else:
                found.append((lo, lo + US_PER_HOUR, *entry))
        return found

    def _learn(self, hour: int) -> tuple[int, str] | None:
        if len(self._hours) > 100_000:
            self._hours.clear()
        first = from_us(hour * US_PER_HOUR, self._tz)
        last = from_us((hour + 1) * US_PER_HOUR - 1, self._tz)
        offset = first.utcoffset()
        entry: tuple[int, str] | None = None
        if offset is not None and offset == last.utcoffset():
            naive = first.replace(tzinfo=None).isoformat()
            suffix = first.isoformat()[len(naive) :]
            entry = (offset // timedelta(microseconds=1), suffix)
        self._hours[hour] = entry
        return entry


def local_midnight_us(day: date, tz: ZoneInfo) -> int:
    """The UTC instant at which local ``day`` begins in ``tz``.

    ``fold=0`` picks the first occurrence of an ambiguous midnight, and for a midnight
    skipped by a DST jump it yields the instant of the jump, which is when that local
    day really begins.
    """
    return to_us(datetime(day.year, day.month, day.day, tzinfo=tz))


def today(tz: ZoneInfo, now: datetime) -> date:
    """The local date in ``tz`` at instant ``now``."""
    return now.astimezone(tz).date()


def parse_date(value: str) -> date:
    """A local date written ``YYYY-MM-DD`` (nothing else: no ``20261101``, no weeks)."""
    if len(value) != 10:
        raise ValueError(f"must be a date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"must be a date YYYY-MM-DD, got {value!r}") from exc


@dataclass(frozen=True)
class LocalRange:
    """Local dates ``start``..``end`` inclusive in zone ``tz``, with their UTC bounds."""

    start: date
    end: date
    tz: ZoneInfo
    start_us: int
    end_us: int

    @classmethod
    def of(cls, start: date, end: date, tz: ZoneInfo) -> LocalRange:
        if end < start:
            raise ValueError("end is before start")
        if start < MIN_DATE or end > MAX_DATE:
            raise ValueError(f"dates must lie between {MIN_DATE} and {MAX_DATE}")
        return cls(
            start=start,
            end=end,
            tz=tz,
            start_us=local_midnight_us(start, tz),
            end_us=local_midnight_us(end + timedelta(days=1), tz),
        )

    @classmethod
    def around(
        cls, start: date | None, end: date | None, tz: ZoneInfo, now: datetime
    ) -> LocalRange:
        """The range the report parameters name: each missing date is today in ``tz``."""
        current = today(tz, now)
        return cls.of(start or current, end or current, tz)

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)

    def day_bounds(self) -> Iterator[tuple[date, int, int]]:
        """Each local day with its own UTC bounds ``[start_us, end_us)``."""
        begin = self.start_us
        for day in self.days():
            finish = local_midnight_us(day + timedelta(days=1), self.tz)
            yield day, begin, finish
            begin = finish

    def hour_bounds(self) -> Iterator[tuple[datetime, int, int]]:
        """Each local hour of the range as ``(local start, start_us, end_us)``.

        Hours are steps of one real hour from the start of the range, so a 25-hour
        day has 25 of them and a 23-hour day 23; a zone whose offset is not whole
        hours gets hours that start on its own half or quarter hour.
        """
        begin = self.start_us
        while begin < self.end_us:
            finish = min(begin + US_PER_HOUR, self.end_us)
            yield from_us(begin, self.tz), begin, finish
            begin = finish


def _ceil(value: int, step: int) -> int:
    return -((-value) // step) * step


def _floor(value: int, step: int) -> int:
    return (value // step) * step


@dataclass
class BucketPlan:
    """The fewest UTC buckets whose union is exactly ``[start_us, end_us)``.

    ``days`` is a half-open range of UTC day numbers, ``hours`` and ``quarters`` lists
    of half-open ranges of bucket numbers, ``raw`` the microsecond ranges that no
    15-minute bucket covers (only zones with historical non-quarter-hour offsets).
    """

    days: tuple[int, int] | None = None
    hours: list[tuple[int, int]] = field(default_factory=list)
    quarters: list[tuple[int, int]] = field(default_factory=list)
    raw: list[tuple[int, int]] = field(default_factory=list)


def plan_buckets(start_us: int, end_us: int, *, use_days: bool = True) -> BucketPlan:
    """Split ``[start_us, end_us)`` into day, hour, 15-minute and raw pieces."""
    plan = BucketPlan()
    if end_us <= start_us:
        return plan
    q_start, q_end = _ceil(start_us, US_PER_QUARTER), _floor(end_us, US_PER_QUARTER)
    if q_start >= q_end:
        plan.raw.append((start_us, end_us))
        return plan
    if start_us < q_start:
        plan.raw.append((start_us, q_start))
    if q_end < end_us:
        plan.raw.append((q_end, end_us))
    h_start, h_end = _ceil(q_start, US_PER_HOUR), _floor(q_end, US_PER_HOUR)
    if h_start >= h_end:
        plan.quarters.append((q_start // US_PER_QUARTER, q_end // US_PER_QUARTER))
        return plan
    if q_start < h_start:
        plan.quarters.append((q_start // US_PER_QUARTER, h_start // US_PER_QUARTER))
    if h_end < q_end:
        plan.quarters.append((h_end // US_PER_QUARTER, q_end // US_PER_QUARTER))
    d_start, d_end = _ceil(h_start, US_PER_DAY), _floor(h_end, US_PER_DAY)
    if not use_days or d_start >= d_end:
        plan.hours.append((h_start // US_PER_HOUR, h_end // US_PER_HOUR))
        return plan
    if h_start < d_start:
        plan.hours.append((h_start // US_PER_HOUR, d_start // US_PER_HOUR))
    if d_end < h_end:
        plan.hours.append((d_end // US_PER_HOUR, h_end // US_PER_HOUR))
    plan.days = (d_start // US_PER_DAY, d_end // US_PER_DAY)
    return plan
