"""The current time, injectable so tests can freeze it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from tokenledger.localdays import to_us

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def now_us(clock: Clock) -> int:
    return to_us(clock())
