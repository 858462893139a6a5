"""Item 4: CSV export, rows per second and the server's memory.

Measured against the export endpoint's contract,
``GET /api/v1/reports/user-usage/export?granularity=summary|daily|events&start&end&tz&q``
(streamed CSV, ``report:read`` key). A build without it answers 404, and the step
records "not available in this build" instead of a figure.

Each granularity gets a fresh server. "Before" is its resident memory after a tiny
export (code loaded, nothing big held); during the repetitions a thread samples the
resident memory every 10 ms; "after" is the peak (the larger of the sampled peak and
the kernel's high-water mark ``VmHWM``). Growth is peak minus before.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx2 as httpx

from bench.cases import ReportCase
from bench.context import Context, rss_kib, serve
from bench.progress import say
from bench.stats import WARMUP, summarize

PATH = "/api/v1/reports/user-usage/export"
EXPORTS = (
    ("summary", ReportCase("365 days", 365)),
    ("daily", ReportCase("31 days", 31)),
    ("events", ReportCase("31 days", 31)),
)


def run(ctx: Context) -> dict[str, Any]:
    results = []
    for granularity, case in EXPORTS:
        with serve(ctx, ctx.main.url) as served:
            probe = _params(ctx, granularity, ReportCase("today", 1))
            status = served.client.get(PATH, params=probe).status_code
            if status == 404:
                return {
                    "status": "not_available",
                    "reason": f"not available in this build (GET {PATH} answers 404)",
                }
            if status != 200:
                raise RuntimeError(f"export answered {status}")
            results.append(_measure(ctx, served.client, served.pid, granularity, case))
    return {"status": "ok", "dataset": ctx.main.spec.key, "exports": results}


def _params(ctx: Context, granularity: str, case: ReportCase) -> dict[str, Any]:
    query = case.query(ctx.end, ctx.options.zone)
    return {"granularity": granularity, **{k: query[k] for k in ("start", "end", "tz")}}


def _measure(
    ctx: Context, client: httpx.Client, pid: int, granularity: str, case: ReportCase
) -> dict[str, Any]:
    before = rss_kib(pid)["VmRSS"]
    sampler = _Sampler(pid)
    sampler.start()
    params = _params(ctx, granularity, case)
    rates, seconds, rows = [], [], 0
    say(f"Export {granularity} ({case.label}): {ctx.options.repetitions} repetitions")
    try:
        for number in range(WARMUP + ctx.options.repetitions):
            begin = time.perf_counter()
            rows = _download(client, params)
            elapsed = time.perf_counter() - begin
            if number >= WARMUP:
                seconds.append(elapsed * 1000)
                rates.append(rows / elapsed)
    finally:
        sampler.stop()
    peak = max(sampler.peak, rss_kib(pid)["VmHWM"])
    return {
        "granularity": granularity,
        "range": case.label,
        "rows": rows,
        "rows_per_s": summarize(rates, digits=0),
        "ms": summarize(seconds),
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_growth_mib": round((peak - before) / 1024, 1),
    }


def _download(client: httpx.Client, params: dict[str, Any]) -> int:
    """Data rows of the CSV (lines after the header)."""
    lines = 0
    with client.stream("GET", PATH, params=params) as response:
        if response.status_code != 200:
            raise RuntimeError(f"export answered {response.status_code}")
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)


class _Sampler:
    """Polls the resident memory of a process, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_kib(self.pid)["VmRSS"])
