"""Property tests: for random events, IANA zones and date ranges, the User Usage report
and the daily series equal a brute-force computation from the raw events in Python,
and the days of a range add up to the range. With random own prices and reported
costs, the report's cost is the sum of its events' costs to the nano-dollar, and each
event's cost is what its price says (computed here).

Instants are drawn from 1968 to 2035 (every zone's DST rules of that time, Monrovia's
-00:44:30 until 1972, Kiritimati's -10:40 until 1979, Apia's skipped 2011-12-30), with
extra weight on the exact instants where local days begin.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.reliability.workload import soak
from tokenledger import prices
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange
from tokenledger.model_usage import model_usage
from tokenledger.reports import usage_series, user_usage
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_HOUR = 3_600_000_000
QUARTER = timedelta(minutes=15)
NOW_US = 2**62  # nothing drawn is in the future
EXAMPLES = 2000 if soak() else 50
ZONES = sorted(available_timezones())
# Zones with something odd, and the years it happened in (ranges are drawn there).
ODD_ZONES = {
    "Africa/Monrovia": (1968, 1972),  # -00:44:30 until 1972: no quarter-hour buckets
    "Pacific/Kiritimati": (1968, 1996),  # -10:40 until 1979, skipped 1994-12-31
    "Pacific/Apia": (2010, 2012),  # skipped 2011-12-30
    "Antarctica/Casey": (2009, 2011),  # clocks back across midnight on 2010-03-05
    "Asia/Kathmandu": (1984, 1988),  # +05:30, then +05:45 from 1986
    "Australia/Lord_Howe": (1980, 2030),  # 30-minute DST
    "Pacific/Chatham": (1990, 2030),  # +12:45 / +13:45
    "Australia/Eucla": (1968, 2030),  # +08:45 (and DST some years)
    "America/St_Johns": (1985, 2030),  # -03:30 with DST (double DST in 1988)
    "Europe/Dublin": (1968, 2030),  # negative DST in tzdb
    "America/Caracas": (2006, 2017),  # -04:30 from 2007 to 2016
    "Asia/Pyongyang": (2014, 2019),  # +08:30 from 2015 to 2018
    "America/Sao_Paulo": (1985, 2020),  # DST changes at midnight
    "America/New_York": (2005, 2030),
}
OFFSETS = ["Z", "+00:00", "+05:45", "-03:30", "+14:00", "-12:00", "+01:00"]
TABLES = [
    "events",
    "users",
    "rollup_user_quarter",
    "rollup_user_hour",
    "rollup_user_day",
    "rollup_total_quarter",
    "rollup_total_hour",
    "rollup_user_model_hour",
    "rollup_user_model_day",
    "rollup_model_hour",
    "rollup_model_day",
    "prices",
]
# gpt-4o's catalogue price (USD per million input, cached input, output tokens); it has
# no cache-write price, so cache writes cost as input. "house" has a drawn own price,
# "mystery" no price at all.
GPT_4O = (Decimal("2.5"), Decimal("1.25"), Decimal("10"))
MODELS = ["gpt-4o", "house", "mystery", None]


def _instant(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def local_day(us: int, tz: ZoneInfo) -> date:
    """The local day of an instant, from the wall clock: its date, except that when a
    clock goes back across midnight (since 1968, only Antarctica/Casey on 2010-03-05)
    the repeated time stays in the later day, since a day runs from one local midnight
    to the next. So: the latest wall-clock date shown in the 26 hours up to ``us``."""
    moment = _instant(us)
    return max((moment - k * QUARTER).astimezone(tz).date() for k in range(26 * 4 + 1))


@dataclass
class Sums:
    requests: int = 0
    error_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    duration_ms: int = 0
    usage_missing_requests: int = 0
    cost_usd: int = 0  # nano-dollars, as the metric sums them
    unpriced_requests: int = 0
    instants: list[int] = field(default_factory=list)

    def add(self, event: dict[str, Any], us: int, cost: int | None) -> None:
        self.requests += 1
        self.cost_usd += cost or 0
        self.unpriced_requests += cost is None
        self.error_requests += event["status"] == "error"
        self.input_tokens += event["input_tokens"]
        self.output_tokens += event["output_tokens"]
        self.cache_read_tokens += event.get("cache_read_tokens", 0)
        self.cache_write_tokens += event.get("cache_write_tokens", 0)
        self.reasoning_tokens += event.get("reasoning_tokens", 0)
        self.duration_ms += event["duration_ms"]
        metadata = event.get("metadata") or {}
        self.usage_missing_requests += metadata.get("usage_missing") is True
        self.instants.append(us)

    def metrics(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "error_requests": self.error_requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "duration_ms": self.duration_ms,
            "usage_missing_requests": self.usage_missing_requests,
            "cost_usd": self.cost_usd,
            "unpriced_requests": self.unpriced_requests,
        }


@dataclass(frozen=True)
class OwnPrice:
    valid_from: date
    per_million: tuple[Decimal, Decimal, Decimal, Decimal]  # input, read, write, output


@dataclass(frozen=True)
class Scenario:
    tz: ZoneInfo
    start: date
    end: date
    events: list[tuple[int, dict[str, Any]]]  # (instant in µs, event as sent)
    house: OwnPrice = OwnPrice(date(1970, 1, 1), (Decimal(1), Decimal(1), Decimal(1), Decimal(1)))


def _half_even(per_million_sum: Decimal) -> int:
    """Dollars-per-million x tokens, as nano-dollars (x 1000), rounded half to even."""
    return int((per_million_sum * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def expected_cost(event: dict[str, Any], us: int, house: OwnPrice) -> int | None:
    """What the event costs, from its reported cost or the prices, computed here."""
    if "cost_usd" in event:
        return int((Decimal(event["cost_usd"]) * 10**9).quantize(Decimal(1), ROUND_HALF_EVEN))
    model = event.get("model")
    read, write = event.get("cache_read_tokens", 0), event.get("cache_write_tokens", 0)
    uncached = event["input_tokens"] - read - write
    if model in (None, "mystery") or uncached < 0:
        return None
    if model == "gpt-4o":
        inp, cached, out = GPT_4O
        return _half_even(
            inp * uncached + cached * read + inp * write + out * event["output_tokens"]
        )
    if _instant(us).date() < house.valid_from:
        return None
    inp, cached, written, out = house.per_million
    return _half_even(
        inp * uncached + cached * read + written * write + out * event["output_tokens"]
    )


def _midnight_us(day: date, tz: ZoneInfo) -> int:
    """Where a local day begins; used only to aim events at the edges."""
    return _us(datetime(day.year, day.month, day.day, tzinfo=tz))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(ODD_ZONES)))
        first, last = ODD_ZONES[name]
        start = draw(st.dates(min_value=date(first, 1, 3), max_value=date(last, 12, 31)))
    else:
        name = draw(st.sampled_from(ZONES))
        start = draw(st.dates(min_value=date(1968, 1, 3), max_value=date(2035, 12, 1)))
    tz = ZoneInfo(name)
    days = draw(st.one_of(st.integers(0, 3), st.integers(0, 40), st.integers(0, 800)))
    end = start + timedelta(days=days)
    low = _us(datetime(start.year, start.month, start.day, tzinfo=UTC)) - 3 * 86_400_000_000
    high = _us(datetime(end.year, end.month, end.day, tzinfo=UTC)) + 4 * 86_400_000_000
    edges = [
        _midnight_us(day, tz)
        for day in (start, start + timedelta(days=1), end, end + timedelta(days=1))
    ]
    instant = st.one_of(
        st.integers(low, high),
        st.builds(lambda edge, nudge: edge + nudge, st.sampled_from(edges), st.integers(-1, 1)),
        st.builds(
            lambda edge, hours: edge + hours * US_PER_HOUR,
            st.sampled_from(edges),
            st.integers(-26, 26),
        ),
    )
    events = []
    for index in range(draw(st.integers(0, 30))):
        us = draw(instant)
        input_tokens = draw(st.integers(0, 10**6))
        output_tokens = draw(st.integers(0, 10**5))
        offset = draw(st.sampled_from(OFFSETS))
        shift = timedelta() if offset == "Z" else _offset(offset)
        started = (_instant(us) + shift).replace(tzinfo=None).isoformat(timespec="microseconds")
        event: dict[str, Any] = {
            "event_id": f"e{index}",
            "user": {"id": draw(st.sampled_from(["ana", "bo", "chen", "dmitri"]))},
            "started_at": started + offset,
            "duration_ms": draw(st.integers(0, 10**7)),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "status": draw(st.sampled_from(["ok", "ok", "error"])),
        }
        if draw(st.booleans()):
            event["cache_read_tokens"] = draw(st.integers(0, input_tokens))
            event["cache_write_tokens"] = draw(st.integers(0, input_tokens))
            event["reasoning_tokens"] = draw(st.integers(0, output_tokens))
        model = draw(st.sampled_from(MODELS))
        if model is not None:
            event["model"] = model
        if draw(st.integers(0, 4)) == 0:  # a reported cost, exact or beyond nanos
            amount = draw(st.decimals(0, 1000, places=draw(st.integers(0, 12))))
            event["cost_usd"] = format(amount, "f")
        events.append((us, event))
    money = st.decimals(0, 100, places=draw(st.integers(0, 9)))
    house = OwnPrice(
        draw(st.dates(min_value=start - timedelta(days=5), max_value=end + timedelta(days=1))),
        (draw(money), draw(money), draw(money), draw(money)),
    )
    return Scenario(tz, start, end, events, house)


def _offset(text: str) -> timedelta:
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))


def _reset(db: Database) -> None:
    """One database per test function; each example starts from empty tables."""
    with db.write() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


def _set_house_price(db: Database, house: OwnPrice) -> None:
    inp, read, write, out = (format(value, "f") for value in house.per_million)
    price = prices.parse_price(
        {
            "model": "house",
            "valid_from": house.valid_from.isoformat(),
            "input": inp,
            "cache_read": read,
            "cache_write": write,
            "output": out,
        }
    )
    prices.set_price(db, price, now_us=0, actor="tests")


def _check(db: Database, scenario: Scenario) -> None:
    _reset(db)
    _set_house_price(db, scenario.house)
    result = ingest(UsageStore(db), [event for _, event in scenario.events], now_us=NOW_US)
    assert result.count("accepted") == len(scenario.events)
    with db.read() as conn:
        stored = dict(conn.execute(text("SELECT event_id, cost_nanos FROM events")).all())
    costs = {
        event["event_id"]: expected_cost(event, us, scenario.house) for us, event in scenario.events
    }
    assert stored == costs, "each event costs what its price says"

    tz = scenario.tz
    per_user: dict[str, Sums] = defaultdict(Sums)
    per_day: dict[date, Sums] = defaultdict(Sums)
    whole = Sums()
    for us, event in scenario.events:
        day = local_day(us, tz)
        if scenario.start <= day <= scenario.end:
            cost = stored[event["event_id"]]
            per_user[event["user"]["id"]].add(event, us, cost)
            per_day[day].add(event, us, cost)
            whole.add(event, us, cost)

    local_range = LocalRange.of(scenario.start, scenario.end, tz)
    report = user_usage(UsageStore(db), local_range=local_range, limit=500)
    assert report.total_users == len(per_user)
    assert report.totals.metrics() == whole.metrics()
    rows = {row.user_id: row.usage for row in report.rows}
    assert set(rows) == set(per_user)
    for user_id, sums in per_user.items():
        usage = rows[user_id]
        assert usage.metrics() == sums.metrics(), user_id
        assert (usage.first_us, usage.last_us) == (min(sums.instants), max(sums.instants))

    series = usage_series(UsageStore(db), local_range=local_range, interval="day")
    expected_days = [scenario.start + timedelta(days=n) for n in range(len(series))]
    assert [point.start.date() for point in series] == expected_days
    assert expected_days[-1] == scenario.end
    for point in series:
        assert point.usage.metrics() == per_day[point.start.date()].metrics(), point.start
    added = Sums()
    for point in series:
        for name, value in point.usage.metrics().items():
            if name != "total_tokens":
                setattr(added, name, getattr(added, name) + value)
    assert added.metrics() == whole.metrics(), "the days add up to the range"
    if (scenario.end - scenario.start).days <= 3:
        hours = usage_series(UsageStore(db), local_range=local_range, interval="hour")
        assert sum(point.usage.requests for point in hours) == whole.requests
    by_model = model_usage(UsageStore(db), local_range=local_range)
    assert by_model.totals.metrics() == whole.metrics(), "the models add up to the range"


def test_reports_equal_a_brute_force_computation(db: Database) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not soak(),  # the same examples on every run of make test
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenarios())
    def check(scenario: Scenario) -> None:
        _check(db, scenario)

    check()


def test_the_hour_casey_repeated_across_midnight_stays_in_the_later_day(db: Database) -> None:
    # 2010-03-05 02:00 +11 became 2010-03-04 23:00 +08 (15:00Z): the wall clock showed
    # March 4 again for an hour, but March 5 had begun at its midnight.
    tz = ZoneInfo("Antarctica/Casey")
    repeated = _us(datetime(2010, 3, 4, 15, 30, tzinfo=UTC))
    assert _instant(repeated).astimezone(tz).date() == date(2010, 3, 4)
    assert local_day(repeated, tz) == date(2010, 3, 5)
    event = {
        "event_id": "casey",
        "user": {"id": "ana"},
        "started_at": "2010-03-04T15:30:00Z",
        "duration_ms": 1,
        "input_tokens": 1,
        "output_tokens": 1,
        "status": "ok",
    }
    _check(db, Scenario(tz, date(2010, 3, 4), date(2010, 3, 4), [(repeated, event)]))
    _check(db, Scenario(tz, date(2010, 3, 5), date(2010, 3, 5), [(repeated, event)]))
