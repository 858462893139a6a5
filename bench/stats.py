"""Repeated measurements and their summaries (median, p95, spread).

The machine may be shared and noisy, so every figure is a distribution over warm
repetitions, and methods that are compared run interleaved (one repetition of each in
turn) so that a noisy minute hurts all of them alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

WARMUP = 2


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float], *, digits: int = 2) -> dict[str, Any]:
    """n, median, p95 (and p5), min, max, and the spread: the interquartile range as a
    percentage of the median."""
    median = percentile(values, 0.5)
    iqr = percentile(values, 0.75) - percentile(values, 0.25)
    return {
        "n": len(values),
        "median": round(median, digits),
        "p95": round(percentile(values, 0.95), digits),
        "p5": round(percentile(values, 0.05), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "spread_pct": round(100 * iqr / median, 1) if median else 0.0,
    }


def time_ms(action: Callable[[], object]) -> float:
    begin = time.perf_counter()
    action()
    return (time.perf_counter() - begin) * 1000


def interleaved(
    actions: Mapping[str, Callable[[], object]], *, repetitions: int, warmup: int = WARMUP
) -> dict[str, list[float]]:
    """Milliseconds of each action over ``repetitions`` rounds, after ``warmup`` rounds;
    each round runs every action once, in the given order."""
    for _ in range(warmup):
        for action in actions.values():
            action()
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repetitions):
        for name, action in actions.items():
            samples[name].append(time_ms(action))
    return samples


def ratio(slow: float, fast: float) -> float:
    return round(slow / fast, 1) if fast > 0 else math.inf
