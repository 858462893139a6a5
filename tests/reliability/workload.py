"""The load of the reliability tests: writer processes sending overlapping batches to a
real server, reader threads querying reports, and the expected result computed here.

Every event is a pure function of its id, so the test process knows exactly what the
ledger must hold without asking the writers: each writer sends its own events plus, in
batch ``b``, the ids ``shared-b-*`` that every other writer sends in its batch ``b`` too
(10 % of each batch). Every batch is sent twice. A writer counts a batch as delivered
only on a 200 or 207 answer (the acknowledgement) and retries anything else.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.synchronize
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx

from tests.support.server import ServerProcess

ACKNOWLEDGED = {200, 207}
FIRST_INSTANT = datetime(2024, 10, 1, tzinfo=UTC)
SPAN_SECONDS = 61 * 86_400  # October and November 2024: the autumn DST changes
REPORT_START, REPORT_END = "2024-09-29", "2024-12-02"  # every event, in any zone
READER_ZONES = ("UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata", "Asia/Kathmandu")


@dataclass(frozen=True)
class Workload:
    """How much to send: ``writers`` processes x ``batches`` batches of ``batch_size``."""

    writers: int = 8
    batches: int = 20
    batch_size: int = 50
    shared_per_batch: int = 5  # 10 % of 50: ids every writer sends in the same batch
    users: int = 40

    def batch(self, writer: int, number: int) -> list[dict[str, Any]]:
        own = [
            event_for(f"w{writer}-b{number}-{i}", self.users)
            for i in range(self.batch_size - self.shared_per_batch)
        ]
        shared = [shared_event(number, i, self.users) for i in range(self.shared_per_batch)]
        # Shared ids sit in the middle of the batch, not in a fixed position.
        middle = len(own) // 2
        return own[:middle] + shared + own[middle:]

    def unique_events(self) -> dict[str, dict[str, Any]]:
        """Every distinct event the writers send, by id."""
        found: dict[str, dict[str, Any]] = {}
        for writer in range(self.writers):
            for number in range(self.batches):
                for event in self.batch(writer, number):
                    found[event["event_id"]] = event
        return found

    @property
    def requests_sent(self) -> int:
        return 2 * self.writers * self.batches


def shared_event(number: int, index: int, users: int) -> dict[str, Any]:
    return event_for(f"shared-b{number}-{index}", users)


def _digits(event_id: str) -> int:
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big")


def event_for(event_id: str, users: int) -> dict[str, Any]:
    """The one event with id ``event_id`` (same id, same content, in every process)."""
    digits = _digits(event_id)
    started = FIRST_INSTANT + timedelta(microseconds=digits % (SPAN_SECONDS * 1_000_000))
    user = digits % users
    input_tokens = digits % 4000
    return {
        "event_id": event_id,
        "user": {"id": f"load-user-{user:03d}", "name": f"Load User {user}"},
        "started_at": started.isoformat(),
        "duration_ms": (digits >> 20) % 30_000,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": input_tokens,
        "output_tokens": (digits >> 12) % 1500,
        "cache_read_tokens": (digits >> 30) % (input_tokens + 1),
        "status": "error" if digits % 17 == 0 else "ok",
    }


def expected_totals(events: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Report totals of ``events``, computed in Python."""
    totals = Counter[str]()
    for event in events.values():
        totals["requests"] += 1
        totals["error_requests"] += event["status"] == "error"
        totals["input_tokens"] += event["input_tokens"]
        totals["output_tokens"] += event["output_tokens"]
        totals["cache_read_tokens"] += event["cache_read_tokens"]
        totals["duration_ms"] += event["duration_ms"]
    totals["total_tokens"] = totals["input_tokens"] + totals["output_tokens"]
    return dict(totals)


# -- writers (separate processes) ------------------------------------------------------


@dataclass
class WriterReport:
    """What one writer saw; sent back to the test process."""

    writer: int
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    resent_not_duplicate: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


@dataclass(frozen=True)
class WriterJob:
    url: str
    key: str
    writer: int
    workload: Workload
    acked: Any  # multiprocessing.Value("i"): batches acknowledged by every writer
    deadline_s: float = 600.0


def run_writer(job: WriterJob, results: multiprocessing.Queue[WriterReport]) -> None:
    """Send each batch, then send it again one batch later; retry until acknowledged."""
    report = WriterReport(job.writer)
    started = time.monotonic()
    try:
        with httpx.Client(
            base_url=job.url,
            headers={"Authorization": f"Bearer {job.key}"},
            timeout=httpx.Timeout(60.0, connect=30.0),
        ) as client:
            for number in range(job.workload.batches):
                _deliver(client, job, number, report, resend=False)
                if number > 0:
                    _deliver(client, job, number - 1, report, resend=True)
            _deliver(client, job, job.workload.batches - 1, report, resend=True)
    except Exception as exc:  # reported to the test, which fails on any problem
        report.note(f"writer crashed: {exc!r}")
    report.seconds = time.monotonic() - started
    results.put(report)


def _deliver(
    client: httpx.Client, job: WriterJob, number: int, report: WriterReport, *, resend: bool
) -> None:
    events = job.workload.batch(job.writer, number)
    deadline = time.monotonic() + job.deadline_s
    pause = 0.05
    while True:
        try:
            response = client.post("/api/v1/events", json={"events": events})
        except httpx.TransportError:
            report.transport_errors += 1
        else:
            report.statuses[response.status_code] += 1
            if "database is locked" in response.text:
                report.note(f"batch {number}: 'database is locked' in the answer")
            if response.status_code in ACKNOWLEDGED:
                _count(response.json(), report, number, resend=resend)
                if not resend:
                    with job.acked.get_lock():
                        job.acked.value += 1
                return
            if response.status_code != 503:  # 503: database unavailable, retry later
                report.note(f"batch {number}: {response.status_code} {response.text[:200]}")
                if response.status_code < 500:
                    return
        if time.monotonic() > deadline:
            report.note(f"batch {number}: not acknowledged within {job.deadline_s} s")
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _count(body: dict[str, Any], report: WriterReport, number: int, *, resend: bool) -> None:
    report.accepted += body["accepted"]
    report.duplicates += body["duplicates"]
    report.rejected += body["rejected"]
    if body["rejected"]:
        report.note(f"batch {number}: rejected {body['results'][:2]}")
    if resend and body["accepted"]:
        report.resent_not_duplicate += body["accepted"]


class Writers:
    """Writer processes (spawned, so nothing of the test process leaks into them)."""

    def __init__(self, url: str, key: str, workload: Workload) -> None:
        context = multiprocessing.get_context("spawn")
        self.acked = context.Value("i", 0)
        self.results: multiprocessing.Queue[WriterReport] = context.Queue()
        self.processes = [
            context.Process(
                target=run_writer,
                args=(WriterJob(url, key, writer, workload, self.acked), self.results),
                name=f"writer-{writer}",
            )
            for writer in range(workload.writers)
        ]

    def start(self) -> Writers:
        for process in self.processes:
            process.start()
        return self

    def acknowledged_batches(self) -> int:
        return int(self.acked.value)

    def join(self, timeout: float, *, server: ServerProcess) -> list[WriterReport]:
        """Each writer's report. Fails if one does not finish within ``timeout``, or at
        once if ``server`` exits (the writers would only retry until their deadline)."""
        deadline = time.monotonic() + timeout
        reports: list[WriterReport] = []
        while len(reports) < len(self.processes):
            try:
                reports.append(self.results.get(timeout=1.0))
            except queue.Empty:
                if not server.running:
                    raise AssertionError(f"the server exited:\n{server.log()[-3000:]}") from None
                if time.monotonic() > deadline:
                    raise AssertionError(f"writers still running after {timeout} s") from None
        for process in self.processes:
            process.join(timeout=max(1.0, deadline - time.monotonic()))
        return sorted(reports, key=lambda report: report.writer)

    def terminate(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)
        self.results.close()
        self.results.join_thread()


# -- readers (threads of the test process) ---------------------------------------------


@dataclass
class ReaderReport:
    reports: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


class Readers:
    """Threads that query both reports until stopped, checking what they can: every
    answer is 200 (or a 503 when allowed), a report's rows add up to its totals, the
    days of a series add up to the report, and a reader never sees usage go down."""

    def __init__(self, url: str, key: str, count: int = 4) -> None:
        self.url = url
        self.key = key
        self.stop = threading.Event()
        self.results = [ReaderReport() for _ in range(count)]
        self.threads = [
            threading.Thread(target=self._run, args=(index,), name=f"reader-{index}", daemon=True)
            for index in range(count)
        ]

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _run(self, index: int) -> None:
        result = self.results[index]
        seen = 0
        with httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=httpx.Timeout(60.0, connect=30.0),
        ) as client:
            while not self.stop.is_set():
                tz = READER_ZONES[(index + result.reports) % len(READER_ZONES)]
                try:
                    seen = self._check_once(client, result, tz, seen)
                except httpx.TransportError:
                    result.transport_errors += 1
                    self.stop.wait(0.05)
                result.reports += 1

    def _check_once(self, client: httpx.Client, result: ReaderReport, tz: str, seen: int) -> int:
        params = {"start": REPORT_START, "end": REPORT_END, "tz": tz}
        report = client.get("/api/v1/reports/user-usage", params={**params, "limit": 500})
        result.statuses[report.status_code] += 1
        if report.status_code != 200:
            result.note(f"user-usage {report.status_code}: {report.text[:200]}")
            return seen
        body = report.json()
        requests: int = body["totals"]["requests"]
        if sum(row["requests"] for row in body["users"]) != requests:
            result.note(f"rows do not add up to the totals ({tz})")
        if requests < seen:
            result.note(f"usage went down from {seen} to {requests} ({tz})")
        series = client.get("/api/v1/reports/usage-series", params=params)
        result.statuses[series.status_code] += 1
        if series.status_code != 200:
            result.note(f"usage-series {series.status_code}: {series.text[:200]}")
            return requests
        days = sum(point["requests"] for point in series.json()["points"])
        if days < requests:
            result.note(f"series ({days}) behind a report read before it ({requests}, {tz})")
        return requests


def wait_until(
    condition: Callable[[], bool], *, timeout: float, message: str, every: float = 0.05
) -> None:
    """Poll ``condition()`` until true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {message}")
        time.sleep(every)


def soak() -> bool:
    return os.environ.get("TOKENLEDGER_SOAK", "") not in {"", "0"}
