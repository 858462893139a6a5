"""Group commit: batches that arrive together are committed together.

A commit waits for the disk (``fsync``); with several clients sending at once, one
writer thread takes every batch waiting and stores them in one transaction, each with
the outcomes it would have alone. Nothing is acknowledged before that commit, so
durability is unchanged: only the waiting is shared.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from tokenledger.events import Event, Rejection
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.store.port import UsagePort
from tokenledger.store.writes import BatchResult

log = logging.getLogger(__name__)


class CommitObserver(Protocol):
    """Told of each group commit (for metrics), before its batches are answered."""

    def __call__(
        self, results: Sequence[BatchResult], *, waits_s: Sequence[float], duration_s: float
    ) -> None: ...


@dataclass
class _Job:
    items: Sequence[Event | Rejection]
    now_us: int
    future: Future[BatchResult] = field(default_factory=Future)
    queued: float = field(default_factory=time.monotonic)


class GroupCommit:
    """Stores batches through one writer thread (started on first use)."""

    def __init__(
        self,
        store: UsagePort,
        *,
        max_events: int = 10_000,
        observer: CommitObserver | None = None,
        on_commit: Callable[[set[str]], None] | None = None,
    ) -> None:
        self._store = store
        # Told the user ids of each committed group, after it is answered (budgets).
        self._on_commit = on_commit
        self._max_events = max_events
        self._observer = observer
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def store_batch(self, items: Sequence[Event | Rejection], *, now_us: int) -> BatchResult:
        """Store ``items`` with the next group; returns after its commit."""
        job = _Job(items, now_us)
        self._ensure_started()
        self._queue.put(job)
        return job.future.result()

    def close(self) -> None:
        """Finish the batches already handed over, then stop the writer thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tokenledger-group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs, size, stop = [job], len(job.items), False
            while size < self._max_events:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stop = True
                    break
                jobs.append(following)
                size += len(following.items)
            self._commit(jobs)
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        started = time.monotonic()
        try:
            results = self._store.store_batches([(job.items, job.now_us) for job in jobs])
        except DatabaseUnavailable as exc:
            for job in jobs:
                job.future.set_exception(exc)
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            # Something in one batch failed the group: store each alone, so that only
            # that batch gets the error.
            for job in jobs:
                self._commit([job])
        else:
            self._observe(jobs, results, started)
            for job, result in zip(jobs, results, strict=True):
                job.future.set_result(result)
            self._tell(jobs)

    def _tell(self, jobs: list[_Job]) -> None:
        if self._on_commit is None:
            return
        people = {item.user_id for job in jobs for item in job.items if isinstance(item, Event)}
        try:
            self._on_commit(people)
        except Exception:  # never stop the writer thread: a sweep finds what is missed
            log.exception("could not hand a group commit's people over")

    def _observe(self, jobs: list[_Job], results: list[BatchResult], started: float) -> None:
        if self._observer is None:
            return
        waits = [started - job.queued for job in jobs]
        try:
            self._observer(results, waits_s=waits, duration_s=time.monotonic() - started)
        except Exception:  # metrics must never stop the writer thread: answers wait on it
            log.exception("could not record the metrics of a group commit")
