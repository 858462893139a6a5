from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenledger.localdays import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_QUARTER,
    IsoFormatter,
    LocalRange,
    iso,
    local_midnight_us,
    plan_buckets,
    to_us,
    zone,
)

HOUR = US_PER_HOUR


def _day_length_hours(day: date, tz_name: str) -> float:
    local_range = LocalRange.of(day, day, zone(tz_name))
    return (local_range.end_us - local_range.start_us) / HOUR


@pytest.mark.parametrize(
    ("tz_name", "day", "hours"),
    [
        ("America/New_York", date(2024, 3, 10), 23),
        ("America/New_York", date(2024, 11, 3), 25),
        ("America/New_York", date(2024, 11, 4), 24),
        ("Europe/Paris", date(2024, 3, 31), 23),
        ("Australia/Lord_Howe", date(2024, 4, 7), 24.5),  # 30-minute DST shift
        ("Asia/Kolkata", date(2024, 3, 10), 24),
    ],
)
def test_local_days_have_their_real_length(tz_name: str, day: date, hours: float) -> None:
    assert _day_length_hours(day, tz_name) == hours


def test_midnight_skipped_by_dst_starts_the_day_at_the_jump() -> None:
    # America/Santiago jumped from 00:00 to 01:00 on 2022-09-11: the day starts at
    # 01:00 local = 04:00 UTC.
    start = local_midnight_us(date(2022, 9, 11), zone("America/Santiago"))
    assert start == local_midnight_us(date(2022, 9, 11), zone("UTC")) + 4 * HOUR


def test_kolkata_and_kathmandu_day_bounds() -> None:
    kolkata = LocalRange.of(date(2024, 6, 2), date(2024, 6, 2), zone("Asia/Kolkata"))
    # 2024-06-02 00:00 +05:30 is 2024-06-01 18:30 UTC.
    assert (
        kolkata.start_us
        == local_midnight_us(date(2024, 6, 1), zone("UTC")) + 18 * HOUR + 2 * US_PER_QUARTER
    )
    kathmandu = LocalRange.of(date(2024, 6, 2), date(2024, 6, 2), zone("Asia/Kathmandu"))
    assert kathmandu.start_us == kolkata.start_us - US_PER_QUARTER


@pytest.mark.parametrize("name", ["Nowhere/City", "", "../etc/passwd", "/etc/localtime"])
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone(name)


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before start"):
        LocalRange.of(date(2024, 1, 2), date(2024, 1, 1), zone("UTC"))


def _covered(plan_start: int, plan_end: int) -> list[tuple[int, int]]:
    plan = plan_buckets(plan_start, plan_end)
    pieces = list(plan.raw)
    pieces += [(lo * US_PER_QUARTER, hi * US_PER_QUARTER) for lo, hi in plan.quarters]
    pieces += [(lo * US_PER_HOUR, hi * US_PER_HOUR) for lo, hi in plan.hours]
    if plan.days:
        pieces.append((plan.days[0] * US_PER_DAY, plan.days[1] * US_PER_DAY))
    return sorted(piece for piece in pieces if piece[0] < piece[1])


@given(
    st.integers(min_value=-(10**15), max_value=10**16),
    st.integers(min_value=0, max_value=400 * US_PER_DAY),
)
def test_bucket_plan_covers_the_range_exactly_once(start: int, length: int) -> None:
    pieces = _covered(start, start + length)
    position = start
    for lo, hi in pieces:
        assert lo == position
        position = hi
    assert position == start + length or (length == 0 and not pieces)


@given(
    st.integers(min_value=-(10**13), max_value=10**13).map(lambda n: n * US_PER_QUARTER // 1000),
    st.integers(min_value=1, max_value=5000),
)
def test_quarter_aligned_ranges_never_need_raw_events(start_quarter: int, quarters: int) -> None:
    start = (start_quarter // US_PER_QUARTER) * US_PER_QUARTER
    plan = plan_buckets(start, start + quarters * US_PER_QUARTER)
    assert plan.raw == []
    # At most 3 quarters and 23 hours on each side of the whole days.
    assert sum(hi - lo for lo, hi in plan.quarters) <= 6
    assert sum(hi - lo for lo, hi in plan.hours) <= 46


ZONES_WITH_ODD_HISTORY = [
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "Africa/Monrovia",  # -00:44:30 until 1972
    "Europe/Amsterdam",  # +00:19:32 in the 1930s
    "Pacific/Apia",  # skipped 2011-12-30
]


@given(
    tz_name=st.sampled_from(ZONES_WITH_ODD_HISTORY),
    instants=st.lists(st.integers(-2_500_000_000, 4_000_000_000), min_size=1, max_size=50),
    micros=st.integers(0, 999_999),
)
def test_iso_formatter_writes_what_iso_writes(
    tz_name: str, instants: list[int], micros: int
) -> None:
    tz = zone(tz_name)
    formatter = IsoFormatter(tz)
    for seconds in instants:
        for us in (seconds * 1_000_000, seconds * 1_000_000 + micros):
            assert formatter(us) == iso(us, tz)


@pytest.mark.parametrize(
    ("tz_name", "moment"),
    [
        ("America/New_York", "2024-11-03T05:30:00+00:00"),  # 01:30 EDT, first of two
        ("America/New_York", "2024-11-03T06:30:00+00:00"),  # 01:30 EST, second
        ("America/New_York", "2024-03-10T06:59:59.999999+00:00"),  # just before the jump
        ("America/New_York", "2024-03-10T07:00:00+00:00"),  # 03:00 EDT
        ("Australia/Lord_Howe", "2024-04-06T14:45:00+00:00"),
        ("Australia/Lord_Howe", "2024-04-06T15:15:00+00:00"),
        ("Asia/Kathmandu", "1985-12-31T18:30:00+00:00"),  # +05:30 to +05:45 mid-hour
        ("Africa/Monrovia", "1972-01-07T00:44:30+00:00"),  # -00:44:30 to +00:00
    ],
)
def test_iso_formatter_around_offset_changes(tz_name: str, moment: str) -> None:
    tz = zone(tz_name)
    us = to_us(datetime.fromisoformat(moment))
    formatter = IsoFormatter(tz)
    for probe in (us - HOUR, us - 1, us, us + 1, us + HOUR):
        assert formatter(probe) == iso(probe, tz)
