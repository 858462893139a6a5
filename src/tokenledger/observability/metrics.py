"""Every Prometheus metric TokenLedger exports, declared in one place.

A feature that needs a metric adds one line to :class:`Metrics` (and a row to the
table in docs/operations.md: a test checks that every metric is documented), then
calls it where the thing happens, e.g. ``ctx.metrics.alert_deliveries.labels(status)
.inc()``.

With one process the metrics live in a registry of the app. With
``TOKENLEDGER_WORKERS`` > 1, ``tokenledger serve`` gives the run a fresh directory in
``PROMETHEUS_MULTIPROC_DIR`` before the workers start: each worker writes its values
to files there, and whichever worker answers ``/metrics`` adds up every worker's
(prometheus-client's multiprocess mode). The directory is removed when serve ends, so
a restart starts from zero, as Prometheus expects of a restarted target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from tokenledger import __version__
from tokenledger.store.database import Database
from tokenledger.store.writes import BatchResult

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_EVENTS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """The metrics of one app. Each attribute is a prometheus-client metric."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        """``registry``: where the metrics are registered (None in multiprocess mode,
        where their values go to files and :meth:`exposition` reads those)."""
        self.registry = registry

        def counter(name: str, help_text: str, *labels: str) -> Counter:
            return Counter(name, help_text, labels, registry=registry)

        def histogram(
            name: str, help_text: str, buckets: Sequence[float], *labels: str
        ) -> Histogram:
            return Histogram(name, help_text, labels, registry=registry, buckets=buckets)

        self.http_requests = counter(
            "tokenledger_http_requests",
            "HTTP requests answered, by method, route template and status.",
            "method",
            "route",
            "status",
        )
        self.http_duration = histogram(
            "tokenledger_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            _SECONDS,
            "method",
            "route",
        )
        self.ingest_events = counter(
            "tokenledger_ingest_events",
            "Events received over HTTP, by outcome (accepted, duplicate, rejected) and "
            "rejection code (empty unless rejected).",
            "outcome",
            "code",
        )
        self.commit_events = histogram(
            "tokenledger_group_commit_events",
            "Events (of any outcome) handled per group commit, which is one transaction.",
            _EVENTS,
        )
        self.commit_batches = histogram(
            "tokenledger_group_commit_batches",
            "Ingest requests sharing one group commit.",
            _BATCHES,
        )
        self.commit_wait = histogram(
            "tokenledger_group_commit_wait_seconds",
            "Time an ingest batch waited for its group commit to begin.",
            _SECONDS,
        )
        self.commit_duration = histogram(
            "tokenledger_group_commit_duration_seconds",
            "Time a group commit took (writes and the commit itself).",
            _SECONDS,
        )
        self.database_errors = counter(
            "tokenledger_database_errors",
            "Errors the database driver raised, by class (OperationalError, ...).",
            "error",
        )
        self.export_rows = counter(
            "tokenledger_export_rows",
            "CSV rows sent by exports, by granularity.",
            "granularity",
        )
        self.gateway_requests = counter(
            "tokenledger_gateway_requests",
            "Gateway requests answered, by provider kind, endpoint, upstream (empty when "
            "refused before one was chosen), status and the gateway's error code (empty "
            "when none; client_gone when the client left first).",
            "kind",
            "endpoint",
            "upstream",
            "status",
            "error",
        )
        self.gateway_upstream_latency = histogram(
            "tokenledger_gateway_upstream_latency_seconds",
            "Time from sending a call to an upstream to its answer's status and headers "
            "(for a stream, its start), by upstream.",
            _SECONDS,
            "upstream",
        )
        self.alert_deliveries = counter(
            "tokenledger_alert_deliveries",
            "Budget alert delivery attempts, by channel kind and outcome: sent, retrying "
            "(failed, tried again later) or gave_up (failed, its 24 hours are over).",
            "channel",
            "status",
        )
        self.exports = counter(
            "tokenledger_exports",
            "CSV exports ended, by granularity and whether the file was complete.",
            "granularity",
            "complete",
        )

    def group_committed(
        self, results: Sequence[BatchResult], *, waits_s: Sequence[float], duration_s: float
    ) -> None:
        """A group commit stored ``results`` (one per batch) in ``duration_s``, after
        its batches waited ``waits_s`` for it to begin (called by the group commit)."""
        for result in results:
            for outcome in result.outcomes:
                code = outcome.rejection.code if outcome.rejection is not None else ""
                self.ingest_events.labels(outcome.status, code).inc()
        self.commit_events.observe(sum(len(result.outcomes) for result in results))
        self.commit_batches.observe(len(results))
        self.commit_duration.observe(duration_s)
        for wait in waits_s:
            self.commit_wait.observe(wait)

    def gateway_answered(
        self, *, kind: str, endpoint: str, upstream: str, status: int, error: str
    ) -> None:
        self.gateway_requests.labels(kind, endpoint, upstream, str(status), error).inc()

    def gateway_upstream_answered(self, *, upstream: str, seconds: float) -> None:
        self.gateway_upstream_latency.labels(upstream).observe(seconds)

    def alert_attempted(self, *, channel: str, status: str) -> None:
        self.alert_deliveries.labels(channel, status).inc()

    def export_finished(self, granularity: str, *, rows: int, complete: bool) -> None:
        self.export_rows.labels(granularity).inc(rows)
        self.exports.labels(granularity, str(complete).lower()).inc()

    def exposition(self, db: Database) -> bytes:
        """The text exposition format of every metric, every worker's added up."""
        registry = CollectorRegistry()
        if self.registry is not None:
            registry.register(_Merged(self.registry))
        else:
            MultiProcessCollector(registry, path=os.environ[MULTIPROCESS_DIR])  # type: ignore[no-untyped-call]
        registry.register(DatabaseFiles(db))
        return generate_latest(registry)


class _Merged(Collector):
    """Another registry's metrics, collected into the exposition registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class DatabaseFiles(Collector):
    """Read at each scrape: the version, and for SQLite the file's size and the free
    space of its disk (the database stops taking events when that is full)."""

    def __init__(self, db: Database) -> None:
        self.path = db.sqlite_file

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "tokenledger_build_info", "TokenLedger's version (always 1).", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        path = self.path
        if path is None or not path.exists():
            return
        files = GaugeMetricFamily(
            "tokenledger_sqlite_file_bytes",
            "Size of the SQLite database and its write-ahead log.",
            labels=["file"],
        )
        for name, suffix in (("database", ""), ("wal", "-wal")):
            part = path.with_name(path.name + suffix)
            files.add_metric([name], part.stat().st_size if part.exists() else 0)
        yield files
        disk = shutil.disk_usage(path.parent)
        yield GaugeMetricFamily(
            "tokenledger_sqlite_disk_free_bytes",
            "Free space on the disk that holds the SQLite file (for the server's user).",
            value=disk.free,
        )
        yield GaugeMetricFamily(
            "tokenledger_sqlite_disk_size_bytes",
            "Size of the disk that holds the SQLite file.",
            value=disk.total,
        )


def create_metrics() -> Metrics:
    """The app's metrics: in its own registry, with the process' memory, CPU, files
    and garbage collection; or in multiprocess mode when serve set
    ``PROMETHEUS_MULTIPROC_DIR`` (before prometheus-client was imported)."""
    if os.environ.get(MULTIPROCESS_DIR):
        return Metrics(None)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    return Metrics(registry)


def count_database_errors(db: Database, metrics: Metrics) -> None:
    """Count every error the database driver raises through ``db``'s engines."""

    def _on_error(context: ExceptionContext) -> None:
        metrics.database_errors.labels(type(context.original_exception).__name__).inc()

    for engine in db.engines:
        event.listen(engine, "handle_error", _on_error)


@contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """A fresh directory for this run's worker metrics, in ``PROMETHEUS_MULTIPROC_DIR``
    while the block runs (the workers inherit it), removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="tokenledger-metrics-"))
    previous = os.environ.get(MULTIPROCESS_DIR)
    os.environ[MULTIPROCESS_DIR] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_DIR, None)
        else:
            os.environ[MULTIPROCESS_DIR] = previous
        shutil.rmtree(directory, ignore_errors=True)
