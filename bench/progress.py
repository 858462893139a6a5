"""Progress lines on stderr: what the harness is doing, with the time since it started."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def say(message: str) -> None:
    elapsed = int(time.monotonic() - _START)
    print(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)


class Meter:
    """Prints ``done/total``, the rate and an estimate of the time left, now and then."""

    def __init__(self, label: str, total: int, *, every_s: float = 10.0) -> None:
        self.label = label
        self.total = total
        self.every_s = every_s
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            rate = self.done / max(now - self.started, 1e-9)
            left = (self.total - self.done) / rate if rate else 0.0
            say(
                f"{self.label}: {self.done:,}/{self.total:,} "
                f"({100 * self.done / max(self.total, 1):.0f}%), {rate:,.0f}/s, "
                f"about {left / 60:.1f} min left"
            )
