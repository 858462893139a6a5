"""A deterministic year of AI usage, shaped like a real company's.

Same (events, users, seed, days, end instant) gives the same events, in time order:

* users: names and e-mails from the demo lists (many accented), a home time zone among
  a few, a heavy-tailed volume (Pareto: a few people make most requests) and a
  heavy-tailed token size (lognormal: some people send much bigger prompts); some join
  during the year and some leave;
* days: weekdays heavier than weekends, adoption growing over the year;
* hours: working hours with a lunch dip in the user's own zone, a thin evening tail;
* requests: several models with their own token sizes and speeds, 2% errors, some
  cached prompt tokens, reasoning tokens on some models, metadata on some.

Exactly ``events`` events are produced: the total is split over days by weight, then
each day's events are drawn per user by weight. Events leave in time order (a day's
events are held until no later day can produce an earlier instant), as a live system
would receive them. Ids are random, like the request ids real gateways send.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tokenledger.demo import FIRST_NAMES, LAST_NAMES, MODELS
from tokenledger.localdays import US_PER_DAY, US_PER_SECOND, local_midnight_us, to_us
from tokenledger.search import fold

GENERATOR_VERSION = 1
# (zone, share of users)
ZONES = (
    ("Europe/Paris", 0.25),
    ("America/New_York", 0.2),
    ("Asia/Kolkata", 0.2),
    ("Asia/Ho_Chi_Minh", 0.1),
    ("Europe/Berlin", 0.1),
    ("America/Los_Angeles", 0.1),
    ("Asia/Tokyo", 0.05),
)
# Relative requests per local hour 0..23: working hours, lunch dip, evening tail.
HOUR_WEIGHTS = (
    0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 1.0,
    3.0, 7.0, 9.0, 9.0, 5.0, 6.0, 9.0, 9.0,
    8.0, 6.0, 3.0, 1.5, 1.2, 1.0, 0.7, 0.4,
)  # fmt: skip
WEEKEND_FACTOR = 0.12
ERROR_RATE = 0.02
APPS = ("chat", "code-assist", "search", "summarize", "translate")


@dataclass(frozen=True, slots=True)
class BenchUser:
    user_id: str
    name: str | None
    email: str | None
    zone: int  # index into ZONES
    weight: float  # relative requests per working day
    token_scale: float  # multiplies the model's typical token counts
    first_day: int  # day index of the first possible request
    last_day: int  # day index of the last possible request


def make_users(count: int, seed: int, days: int) -> list[BenchUser]:
    rng = random.Random(f"bench-users-{seed}")
    zone_cum = list(itertools.accumulate(share for _, share in ZONES))
    users = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = fold(f"{first}.{last}").replace(" ", "").replace("'", "")
        named = rng.random() >= 0.02  # a few events carry only the user id
        first_day, last_day = 0, days - 1
        if rng.random() < 0.15:  # joined during the year
            first_day = rng.randrange(days)
        if rng.random() < 0.08:  # left during the year
            last_day = rng.randrange(first_day, days)
        users.append(
            BenchUser(
                user_id=f"emp-{index + 1:06d}",
                name=f"{first} {last}" if named else None,
                email=f"{local}.{index + 1}@example.com" if named else None,
                zone=bisect.bisect(zone_cum, rng.random() * zone_cum[-1]),
                weight=min(1000.0, rng.paretovariate(1.2)),
                token_scale=rng.lognormvariate(0.0, 0.6),
                first_day=first_day,
                last_day=last_day,
            )
        )
    return users


def _split(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders), exactly."""
    whole = sum(weights)
    shares = [total * weight / whole for weight in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _utc_text(us: int, cache: dict[int, str]) -> str:
    day, rest = divmod(us, US_PER_DAY)
    prefix = cache.get(day)
    if prefix is None:
        prefix = cache[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
    seconds, micros = divmod(rest, US_PER_SECOND)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{prefix}T{hours:02d}:{minutes:02d}:{seconds:02d}.{micros // 1000:03d}Z"


class Generator:
    """The event stream of one dataset, ending at ``end`` (no event after it)."""

    def __init__(self, *, events: int, users: int, seed: int, days: int, end: datetime) -> None:
        self.total = events
        self.seed = seed
        self.days = days
        self.end_us = to_us(end)
        self.users = make_users(users, seed, days)
        self.zones = [ZoneInfo(name) for name, _ in ZONES]
        # Local midnights of each day index in each zone; the last day is today there.
        self.midnights: list[list[int]] = []
        for tz in self.zones:
            today = end.astimezone(tz).date()
            self.midnights.append(
                [
                    local_midnight_us(today - timedelta(days=days - 1 - k), tz)
                    for k in range(days + 1)
                ]
            )
        self.zone_users: list[list[int]] = [[] for _ in ZONES]
        for index, user in enumerate(self.users):
            self.zone_users[user.zone].append(index)
        self.zone_cum = [
            list(itertools.accumulate(self.users[i].weight for i in members))
            for members in self.zone_users
        ]
        self.hour_cum = list(itertools.accumulate(HOUR_WEIGHTS))
        self.model_cum = list(itertools.accumulate(model[2] for model in MODELS))
        self._dates: dict[int, str] = {}

    def _day_factor(self, zone: int, k: int) -> float:
        local_day = datetime.fromtimestamp(self.midnights[zone][k] / US_PER_SECOND, UTC)
        weekday = local_day.astimezone(self.zones[zone]).weekday()
        trend = 0.7 + 0.6 * k / max(1, self.days - 1)  # adoption grows over the year
        return trend * (WEEKEND_FACTOR if weekday >= 5 else 1.0)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event, in time order."""
        zone_weights = [cum[-1] if cum else 0.0 for cum in self.zone_cum]
        day_zone_weights = [
            [zone_weights[z] * self._day_factor(z, k) for z in range(len(ZONES))]
            for k in range(self.days)
        ]
        per_day = _split(self.total, [sum(weights) for weights in day_zone_weights])
        pending: list[tuple[int, dict[str, Any]]] = []
        for k, count in enumerate(per_day):
            rng = random.Random(f"bench-day-{self.seed}-{k}")
            zone_cum = list(itertools.accumulate(day_zone_weights[k]))
            for _ in range(count):
                pending.append(self._event(rng, k, zone_cum))
            pending.sort(key=lambda item: item[0])
            # No later day can produce an instant before the earliest next midnight.
            watermark = min(midnights[k + 1] for midnights in self.midnights)
            cut = bisect.bisect_left(pending, watermark, key=lambda item: item[0])
            for _, event in pending[:cut]:
                yield event
            del pending[:cut]
        for _, event in pending:
            yield event

    def _user(self, rng: random.Random, k: int, zone_cum: list[float]) -> BenchUser:
        while True:
            zone = bisect.bisect(zone_cum, rng.random() * zone_cum[-1])
            cum = self.zone_cum[zone]
            user = self.users[self.zone_users[zone][bisect.bisect(cum, rng.random() * cum[-1])]]
            if user.first_day <= k <= user.last_day:
                return user

    def _instant(self, rng: random.Random, k: int, zone: int) -> int:
        midnight = self.midnights[zone][k]
        hour = bisect.bisect(self.hour_cum, rng.random() * self.hour_cum[-1])
        offset = hour * 3_600_000 + rng.randrange(3_600_000)  # milliseconds into the day
        instant = midnight + offset * 1000
        if instant > self.end_us:  # today, later than now: squeeze into the morning so far
            instant = midnight + int(rng.random() * (self.end_us - midnight)) // 1000 * 1000
        return instant

    def _event(
        self, rng: random.Random, k: int, zone_cum: list[float]
    ) -> tuple[int, dict[str, Any]]:
        user = self._user(rng, k, zone_cum)
        instant = self._instant(rng, k, user.zone)
        model = MODELS[bisect.bisect(self.model_cum, rng.random() * self.model_cum[-1])]
        name, provider, _, typical_in, typical_out, ms_per_token = model
        scale = user.token_scale
        input_tokens = max(1, int(rng.lognormvariate(math.log(typical_in * scale), 0.8)))
        output_tokens = max(1, int(rng.lognormvariate(math.log(typical_out * scale), 0.7)))
        error = rng.random() < ERROR_RATE
        if error:
            output_tokens = 0
        who: dict[str, Any] = {"id": user.user_id}
        if user.name is not None:
            who["name"] = user.name
            who["email"] = user.email
        event: dict[str, Any] = {
            "event_id": f"req-{rng.getrandbits(96):024x}",
            "user": who,
            "started_at": _utc_text(instant, self._dates),
            "duration_ms": int(max(output_tokens, 20) * ms_per_token * rng.uniform(0.6, 1.5)) + 150,
            "model": name,
            "provider": provider,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "status": "error" if error else "ok",
        }
        if rng.random() < 0.4:
            event["cache_read_tokens"] = rng.randrange(input_tokens + 1)
        if name.startswith(("claude", "gemini")) and not error:
            event["reasoning_tokens"] = rng.randrange(output_tokens + 1)
        if rng.random() < 0.3:
            event["metadata"] = {"app": APPS[int(rng.random() * len(APPS))]}
        return instant, event
