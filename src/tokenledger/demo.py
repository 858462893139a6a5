"""Demo usage: a few hundred people with international names using AI over 90 days.

Events are deterministic per (seed, user, day), and their ids are stable, so running
the demo again adds only what is new (the days that have passed since). User ids start
with ``demo:`` (never a real person's id) and event ids are ``demo-<user id>-...``:
that is how ``tokenledger demo --remove`` finds exactly them (``store.demo_data``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tokenledger.search import fold

FIRST_NAMES = (
    "Zoë",
    "Chloé",
    "Léa",
    "François",
    "Jürgen",
    "Björn",
    "Søren",
    "Åsa",
    "Łukasz",
    "Zofia",
    "José",
    "Begoña",
    "Íñigo",
    "João",
    "Conceição",
    "Mehmet",
    "Ayşe",
    "Çağla",
    "Nguyễn Văn",
    "Thảo",
    "Minh",
    "Đức",
    "Hương",
    "Priya",
    "Arjun",
    "Ananya",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Sakura",
    "Olusegun",
    "Chiamaka",
    "Fatima",
    "Omar",
    "Layla",
    "Noah",
    "Emma",
    "Liam",
    "Olivia",
    "Mateo",
    "Sofía",
    "Ingrid",
    "Kalle",
    "Dmitri",
    "Anastasia",
    "Niamh",
    "Siobhán",
    "Eoin",
    "Aroha",
    "Kai",
    "Amélie",
    "Renée",
    "Maël",
    "Grégoire",
    "Bartłomiej",
)
LAST_NAMES = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Đặng",
    "Hoàng",
    "Müller",
    "Schröder",
    "Groß",
    "Weiß",
    "García",
    "Muñoz",
    "Peña",
    "Núñez",
    "Dubois",
    "Lefèvre",
    "Bérubé",
    "Østergaard",
    "Åberg",
    "Lindqvist",
    "Wójcik",
    "Kowalczyk",
    "Łęcki",
    "Yılmaz",
    "Çelik",
    "Şahin",
    "Öztürk",
    "Sharma",
    "Iyer",
    "Reddy",
    "Wang",
    "Zhang",
    "Li",
    "Sato",
    "Suzuki",
    "Tanaka",
    "Okafor",
    "Adeyemi",
    "Al-Farsi",
    "Haddad",
    "O'Brien",
    "Ní Bhriain",
    "Smith",
    "Johnson",
    "Silva",
    "Gonçalves",
    "Ivanova",
    "Petrov",
    "Novák",
    "Dvořák",
    "Kovač",
    "Horváth",
    "Papadopoulos",
)
USER_ID_PREFIX = "demo:"
ZONES = ("Europe/Paris", "Asia/Ho_Chi_Minh", "America/New_York", "Asia/Kolkata", "Europe/Berlin")
# (model, provider, relative popularity, typical input, typical output, ms per output token)
MODELS = (
    ("gpt-4o", "openai", 30, 1800, 450, 18),
    ("gpt-4o-mini", "openai", 25, 900, 300, 8),
    ("claude-sonnet-4", "anthropic", 20, 2600, 700, 22),
    ("claude-haiku-4", "anthropic", 10, 1200, 250, 9),
    ("gemini-2.5-pro", "google", 10, 3000, 800, 20),
    ("llama-3.1-70b", "self-hosted", 5, 1500, 400, 30),
)


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    name: str
    email: str
    zone: ZoneInfo
    intensity: float  # mean requests per working day


def demo_users(count: int, seed: int = 7) -> list[DemoUser]:
    rng = random.Random(f"users-{seed}")
    users = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = fold(f"{first}.{last}").replace(" ", "").replace("'", "")
        # Heavy-tailed: a few people make most of the requests.
        intensity = min(150.0, rng.paretovariate(1.6) * 1.2)
        users.append(
            DemoUser(
                user_id=f"{USER_ID_PREFIX}u{index + 1:04d}",
                name=f"{first} {last}",
                email=f"{local}{index + 1}@example.com",
                zone=ZoneInfo(rng.choice(ZONES)),
                intensity=intensity,
            )
        )
    return users


def _working_instant(rng: random.Random, day: datetime) -> datetime:
    # Working hours with a lunch dip: mostly 9-12 and 13-18 local.
    hour = rng.choice((8, 9, 9, 10, 10, 10, 11, 11, 13, 14, 14, 15, 15, 16, 16, 17, 18, 20, 22))
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))


def _event(rng: random.Random, user: DemoUser, started: datetime, seq: int) -> dict[str, Any]:
    weights = [model[2] for model in MODELS]
    model, provider, _, typical_in, typical_out, ms_per_token = rng.choices(MODELS, weights)[0]
    input_tokens = max(1, int(rng.lognormvariate(math.log(typical_in), 0.8)))
    output_tokens = max(1, int(rng.lognormvariate(math.log(typical_out), 0.7)))
    error = rng.random() < 0.02
    event: dict[str, Any] = {
        "event_id": f"demo-{user.user_id}-{started.astimezone(UTC):%Y%m%dT%H%M%S}-{seq}",
        "user": {"id": user.user_id, "name": user.name, "email": user.email},
        "started_at": started.isoformat(),
        "duration_ms": int(output_tokens * ms_per_token * rng.uniform(0.6, 1.5)) + 200,
        "model": model,
        "provider": provider,
        "input_tokens": input_tokens,
        "output_tokens": 0 if error else output_tokens,
        "status": "error" if error else "ok",
    }
    if rng.random() < 0.4:
        event["cache_read_tokens"] = rng.randrange(input_tokens + 1)
    if model.startswith(("claude", "gemini")) and not error:
        event["reasoning_tokens"] = rng.randrange(event["output_tokens"] + 1)
    if rng.random() < 0.3:
        event["metadata"] = {"app": rng.choice(("chat", "code-assist", "search", "summarize"))}
    return event


def demo_events(
    *, now: datetime, days: int = 90, users: int = 300, seed: int = 7
) -> Iterator[dict[str, Any]]:
    """Raw events (JSON-like dicts) for ``days`` days up to ``now``, never after it."""
    for user in demo_users(users, seed):
        local_now = now.astimezone(user.zone)
        for back in range(days, -1, -1):
            day = (local_now - timedelta(days=back)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            rng = random.Random(f"{seed}-{user.user_id}-{day.date()}")
            weekend = day.weekday() >= 5
            mean = user.intensity * (0.15 if weekend else 1.0)
            count = min(int(rng.expovariate(1 / mean)) if mean > 0 else 0, 2000)
            for seq in range(count):
                started = _working_instant(rng, day)
                if started <= now:
                    yield _event(rng, user, started, seq)
