"""A clock tests can set and move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FrozenClock:
    def __init__(self, moment: datetime | str = "2026-11-25T12:00:00+00:00") -> None:
        self.moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment

    def __call__(self) -> datetime:
        return self.moment.astimezone(UTC)

    def set(self, moment: datetime | str) -> None:
        self.moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)
