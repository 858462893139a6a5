"""Load with overlap, and a crash in the middle of it, against a real server process.

8 writer processes send their batches, every batch twice, 10 % of the ids shared
between writers, while 4 readers query both reports. ``make soak``
(TOKENLEDGER_SOAK=1): 200 batches of 50 events per writer; ``make test``: 20 of 30.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.reliability.checks import (
    assert_ledger_exact,
    assert_no_false_acknowledgement,
    assert_sqlite_intact,
    writer_problems,
)
from tests.reliability.conftest import Servers, create_keys
from tests.reliability.workload import Readers, Workload, Writers, soak, wait_until

WORKLOAD = (
    Workload(batches=200, batch_size=50, shared_per_batch=5)
    if soak()
    else Workload(batches=20, batch_size=30, shared_per_batch=3)
)
# The heavy tests share one xdist worker, one at a time, so they never compete for the
# two cores with each other (the other worker runs the light tests meanwhile).
pytestmark = pytest.mark.xdist_group("reliability-load")


def test_overlapping_writers_and_readers_store_each_event_once(
    database_url: str, servers: Servers
) -> None:
    keys = create_keys(database_url)
    server = servers.start(database_url)
    writers = Writers(server.url, keys.ingest, WORKLOAD)
    started = time.monotonic()
    try:
        with Readers(server.url, keys.read) as readers:
            writers.start()
            reports = writers.join(timeout=900 if soak() else 240, server=server)
    finally:
        writers.terminate()
    elapsed = time.monotonic() - started

    assert writer_problems(reports) == []
    statuses = sum((report.statuses for report in reports), Counter[int]())
    assert statuses == {200: WORKLOAD.requests_sent}, "every request answered 200 at once"
    assert sum(report.transport_errors for report in reports) == 0
    # Each unique event was accepted exactly once across all writers; everything else,
    # the shared ids sent by other writers and every resend, was a duplicate.
    expected = WORKLOAD.unique_events()
    assert sum(report.accepted for report in reports) == len(expected)
    assert_no_false_acknowledgement(reports)
    sent = 2 * WORKLOAD.writers * WORKLOAD.batches * WORKLOAD.batch_size
    assert sum(report.duplicates for report in reports) == sent - len(expected)

    for reader in readers.results:
        assert reader.problems == []
        assert set(reader.statuses) == {200}
        assert reader.transport_errors == 0
        assert reader.reports > 0
    assert "database is locked" not in server.log()
    assert_ledger_exact(WORKLOAD, database_url, server.url, keys)
    assert_sqlite_intact(database_url)
    print(
        f"\n{len(expected)} events, {WORKLOAD.requests_sent} requests in {elapsed:.1f} s; "
        f"{sum(r.reports for r in readers.results)} report reads"
    )


def test_kill_9_in_the_middle_loses_nothing_acknowledged(
    database_url: str, servers: Servers
) -> None:
    keys = create_keys(database_url)
    server = servers.start(database_url)
    writers = Writers(server.url, keys.ingest, WORKLOAD)
    total = WORKLOAD.writers * WORKLOAD.batches
    crashes = 3 if soak() else 1
    try:
        with Readers(server.url, keys.read) as readers:
            writers.start()
            for crash in range(1, crashes + 1):
                target = total * crash // (crashes + 1)

                def enough(target: int = target) -> bool:
                    assert server.running, server.log()[-3000:]
                    return writers.acknowledged_batches() >= target

                wait_until(enough, timeout=300, message=f"{target} batches before crash {crash}")
                server.kill()
                server.start()
            reports = writers.join(timeout=900 if soak() else 240, server=server)
    finally:
        writers.terminate()

    assert writer_problems(reports) == []
    statuses = sum((report.statuses for report in reports), Counter[int]())
    assert set(statuses) == {200}, "no 5xx, only connection errors while the server was down"
    assert sum(report.transport_errors for report in reports) > 0, "the crash hit in-flight load"
    assert_no_false_acknowledgement(reports)
    for reader in readers.results:
        assert reader.problems == []
        assert set(reader.statuses) <= {200}
    assert_ledger_exact(WORKLOAD, database_url, server.url, keys)
    assert_sqlite_intact(database_url)
