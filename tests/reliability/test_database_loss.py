"""Database trouble: PostgreSQL stopped, the SQLite file made read-only, SQLite writes
failing at the OS. Ingest answers 503 with a clear message (never 2xx) and stores
nothing; both ingest and reports come back by themselves when the database does."""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI, fresh_database_url
from tests.reliability.checks import (
    assert_ledger_exact,
    assert_no_false_acknowledgement,
    assert_sqlite_intact,
    writer_problems,
)
from tests.reliability.conftest import Keys, Servers, create_keys
from tests.reliability.workload import Readers, Workload, Writers, soak, wait_until
from tests.support.postgres import Cluster, PostgresUnavailable, start_cluster
from tests.support.server import ServerProcess


def _batch(tag: str, count: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{tag}-{i}",
            "user": {"id": f"u-{tag}"},
            "started_at": "2026-11-20T10:00:00Z",
            "duration_ms": 100,
            "input_tokens": 10,
            "output_tokens": 5,
        }
        for i in range(count)
    ]


def _post(server: ServerProcess, keys: Keys, events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {keys.ingest}"},
        timeout=30,
    )


def _report(server: ServerProcess, keys: Keys, path: str = "user-usage") -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/v1/reports/{path}",
        params={"start": "2026-11-20", "end": "2026-11-20", "tz": "UTC"},
        headers={"Authorization": f"Bearer {keys.read}"},
        timeout=30,
    )


def _assert_unavailable(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    stored = ("nothing was stored",) if response.request.method == "POST" else ()
    for word in ("database", "retry later", *stored, *words):
        assert word in error["message"], error["message"]


def _assert_accepted(response: httpx.Response, count: int) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == count, "something was stored during the outage"


def _requests_on_the_day(server: ServerProcess, keys: Keys) -> int:
    response = _report(server, keys)
    assert response.status_code == 200, response.text
    requests: int = response.json()["totals"]["requests"]
    return requests


# -- PostgreSQL ----------------------------------------------------------------------


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test alone, so it can be stopped; durable (fsync,
    synchronous_commit on) unlike the shared one, since it is also crashed."""
    try:
        cluster = start_cluster(fsync=True)
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


def _new_database(cluster: Cluster) -> str:
    admin = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE tokenledger"))
    admin.dispose()
    return cluster.url("tokenledger")


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_stopped_answers_503_and_recovers(
    own_cluster: Cluster, servers: Servers, mode: str
) -> None:
    database_url = _new_database(own_cluster)
    keys = create_keys(database_url)
    server = servers.start(database_url)
    _assert_accepted(_post(server, keys, _batch("before")), 3)

    own_cluster.stop(mode)  # "immediate" is a crash of PostgreSQL
    for _ in range(3):  # each request tries again and fails again, quickly
        _assert_unavailable(_post(server, keys, _batch("during")))
    for path in ("user-usage", "usage-series"):
        _assert_unavailable(_report(server, keys, path))

    own_cluster.start()
    wait_until(
        lambda: _post(server, keys, _batch("during")).status_code != 503,
        timeout=30,
        message="ingest answers again after PostgreSQL is back",
    )
    # The batch refused during the outage was not half-stored: its retry was accepted
    # (by the poll above) and a further one is all duplicates.
    assert _post(server, keys, _batch("during")).json()["duplicates"] == 3
    assert _requests_on_the_day(server, keys) == 6


@pytest.mark.postgres
@pytest.mark.xdist_group("reliability-load")
def test_postgresql_restarted_under_load_loses_nothing_acknowledged(
    own_cluster: Cluster, servers: Servers
) -> None:
    workload = (
        Workload(batches=60) if soak() else Workload(batches=8, batch_size=30, shared_per_batch=3)
    )
    database_url = _new_database(own_cluster)
    keys = create_keys(database_url)
    server = servers.start(database_url)
    writers = Writers(server.url, keys.ingest, workload)
    try:
        with Readers(server.url, keys.read, count=2) as readers:
            writers.start()
            wait_until(
                lambda: writers.acknowledged_batches() >= workload.writers * 2,
                timeout=120,
                message="load running before PostgreSQL stops",
            )
            own_cluster.stop("immediate")
            wait_until(
                lambda: _post(server, keys, _batch("probe")).status_code == 503,
                timeout=30,
                message="the server notices PostgreSQL is gone",
            )
            own_cluster.start()
            reports = writers.join(timeout=600 if soak() else 180, server=server)
    finally:
        writers.terminate()

    assert writer_problems(reports) == []
    statuses = sum((report.statuses for report in reports), Counter[int]())
    assert set(statuses) <= {200, 503}, "no 500: a lost database is a 503"
    assert statuses[503] > 0, "the outage hit batches in flight"
    assert_no_false_acknowledgement(reports)
    for reader in readers.results:
        assert reader.problems == [] or all(" 503: " in p for p in reader.problems)
        assert set(reader.statuses) <= {200, 503}
    assert_ledger_exact(workload, database_url, server.url, keys)


# -- SQLite ----------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database_url(request, "sqlite", tmp_path)


def test_sqlite_file_made_read_only_answers_503_and_recovers(
    sqlite_url: str, servers: Servers
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    keys = create_keys(sqlite_url)
    server = servers.start(sqlite_url, respect_file_modes=True)
    _assert_accepted(_post(server, keys, _batch("before")), 3)

    path.chmod(0o444)
    # The server's open connections could still write to the file; it refuses anyway,
    # since the file's owner said it must not change.
    for _ in range(3):
        _assert_unavailable(_post(server, keys, _batch("during")), "not writable")
    # Reports too: while usage cannot be recorded, their numbers would stop growing
    # without anyone noticing; a 503 tells the people who can fix the file.
    report = _report(server, keys)
    assert report.status_code == 503, report.text
    assert report.headers["retry-after"] == "5"
    assert "not writable" in report.json()["error"]["message"]

    path.chmod(0o644)
    _assert_accepted(_post(server, keys, _batch("during")), 3)
    assert _requests_on_the_day(server, keys) == 6

    # Started while the file is read-only, every connection it opens is read-only.
    path.chmod(0o444)
    server.stop()
    server.start()
    _assert_unavailable(_post(server, keys, _batch("after")), "not writable")
    assert _report(server, keys).status_code == 503
    path.chmod(0o644)
    wait_until(
        lambda: _post(server, keys, _batch("after")).status_code == 200,
        timeout=60,
        message="ingest works again without a restart",
    )
    assert _requests_on_the_day(server, keys) == 9
    assert_sqlite_intact(sqlite_url)


def test_sqlite_writes_failing_at_the_os_answer_503_and_recover(
    sqlite_url: str, servers: Servers
) -> None:
    keys = create_keys(sqlite_url)
    server = servers.start(sqlite_url)
    _assert_accepted(_post(server, keys, _batch("before")), 3)

    # A file-size limit of one byte makes every write of the server process fail with
    # EFBIG, as a full or failing disk would (its log stays silent meanwhile).
    _, hard = resource.prlimit(server.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        for _ in range(3):
            _assert_unavailable(_post(server, keys, _batch("during")), "disk I/O error")
        assert _requests_on_the_day(server, keys) == 3
    finally:
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (hard, hard))
    _assert_accepted(_post(server, keys, _batch("during")), 3)
    assert _requests_on_the_day(server, keys) == 6
    assert_sqlite_intact(sqlite_url)
