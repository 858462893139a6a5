"""A backup taken while writers send events is one consistent moment of the ledger.

Writer threads send batches to a real server while the backup runs (``tokenledger
backup`` on SQLite; on PostgreSQL the ``pg_dump`` command of docs/operations.md). The
backup is restored into a new database (``tokenledger restore`` / ``pg_restore``), and
there: ``tokenledger verify`` is clean, every batch acknowledged before the backup began
is present, none sent after it ended is, and each batch is there whole or not at all.
A server on the restored database then takes the batches acknowledged after the backup
again, and the ledger holds every acknowledged event exactly once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.reliability.checks import stored_event_ids
from tests.reliability.conftest import Servers, create_keys
from tests.reliability.workload import event_for, soak, wait_until
from tokenledger.cli import app
from tokenledger.ingest import ingest
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.store.usage_store import UsageStore

pytestmark = pytest.mark.xdist_group("reliability-load")
WRITERS, BATCH_SIZE = 4, 30
PRELOADED = 100_000 if soak() else 10_000
AFTER = 5  # batches each writer sends after the backup ended
USERS = 40


@dataclass
class Delivery:
    ids: list[str]
    sent: float
    acked: float | None = None


def _write(
    url: str, key: str, writer: int, deliveries: list[Delivery], stop: threading.Event
) -> None:
    """Send batches until ``stop`` is set, each after the answer to the one before."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
        for number in range(10_000):
            if stop.is_set():
                return
            events = [event_for(f"w{writer}-b{number}-{i}", USERS) for i in range(BATCH_SIZE)]
            delivery = Delivery([event["event_id"] for event in events], time.monotonic())
            deliveries.append(delivery)
            if client.post("/api/v1/events", json={"events": events}).status_code == 200:
                delivery.acked = time.monotonic()


def _preload(database_url: str) -> set[str]:
    db = open_database(Settings(database_url=database_url))
    events = [event_for(f"pre-{n}", USERS) for n in range(PRELOADED)]
    try:
        for start in range(0, PRELOADED, 1000):
            ingest(UsageStore(db), events[start : start + 1000], now_us=time.time_ns() // 1000)
    finally:
        db.dispose()
    return {event["event_id"] for event in events}


def _tokenledger(database_url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "tokenledger", "--database-url", database_url, *args],
        check=True,
        capture_output=True,
        timeout=600,
    )


def _libpq(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _take_backup(database_url: str, backup: Path) -> None:
    if database_url.startswith("sqlite"):
        _tokenledger(database_url, "backup", str(backup))
    else:  # as docs/operations.md says
        subprocess.run(
            ["pg_dump", "--format=custom", f"--file={backup}", _libpq(database_url)],
            check=True,
            timeout=600,
        )


def _restore(database_url: str, backup: Path, tmp_path: Path) -> str:
    """The URL of a new database holding ``backup``."""
    if database_url.startswith("sqlite"):
        restored = f"sqlite:///{tmp_path / 'restored.db'}"
        _tokenledger(restored, "restore", "--yes", str(backup))
        return restored
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {url.database}_restored"))
    admin.dispose()
    restored = url.set(database=f"{url.database}_restored").render_as_string(hide_password=False)
    subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={_libpq(restored)}", str(backup)],
        check=True,
        timeout=600,
    )
    return restored


def test_a_backup_under_load_restores_consistent_and_complete(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite") and shutil.which("pg_dump") is None:
        pytest.fail("pg_dump is not on PATH")
    preloaded = _preload(database_url)
    keys = create_keys(database_url)
    server = servers.start(database_url)
    deliveries: list[list[Delivery]] = [[] for _ in range(WRITERS)]
    stop = threading.Event()
    writers = [
        threading.Thread(target=_write, args=(server.url, keys.ingest, n, deliveries[n], stop))
        for n in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    backup = tmp_path / "backup.db"
    try:
        wait_until(
            lambda: sum(d.acked is not None for ds in deliveries for d in ds) >= 2 * WRITERS,
            timeout=120,
            message="writers under way",
        )
        began = time.monotonic()
        _take_backup(database_url, backup)
        ended = time.monotonic()
        wait_until(
            lambda: all(sum(d.sent > ended for d in ds) >= AFTER for ds in deliveries),
            timeout=120,
            message="batches sent after the backup",
        )
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=600)
    server.stop()
    every = [delivery for ds in deliveries for delivery in ds]
    assert all(delivery.acked is not None for delivery in every), "every batch acknowledged"
    during = [d for d in every if d.acked is not None and began <= d.acked <= ended]
    assert during, "batches were committed while the backup was taken"

    restored = _restore(database_url, backup, tmp_path)
    assert CliRunner().invoke(app, ["--database-url", restored, "verify"]).exit_code == 0
    present = set(stored_event_ids(restored))
    assert preloaded <= present
    for delivery in every:
        inside = {event_id in present for event_id in delivery.ids}
        assert len(inside) == 1, "a batch is in the backup whole or not at all"
        if delivery.acked is not None and delivery.acked < began:
            assert inside == {True}, "acknowledged before the backup began, so in it"
        if delivery.sent > ended:
            assert inside == {False}, "sent after the backup ended, so not in it"

    # The restored ledger takes the lost batches again: every acknowledged event, once.
    again = servers.start(restored)
    auth = {"Authorization": f"Bearer {keys.ingest}"}
    sent_ids = [event_id for delivery in every for event_id in delivery.ids]
    with httpx.Client(base_url=again.url, headers=auth, timeout=60) as client:
        for start in range(0, len(sent_ids), 900):
            chunk = sent_ids[start : start + 900]
            events = [event_for(event_id, USERS) for event_id in chunk]
            answer = client.post("/api/v1/events", json={"events": events}).json()
            statuses = [result["status"] for result in answer["results"]]
            expected = ["duplicate" if event_id in present else "accepted" for event_id in chunk]
            assert statuses == expected
    ids = stored_event_ids(restored)
    assert len(ids) == len(set(ids)) == len(preloaded) + len(every) * BATCH_SIZE
    assert CliRunner().invoke(app, ["--database-url", restored, "verify"]).exit_code == 0
    print(
        f"\n{len(every)} batches; {len(during)} acknowledged while the backup ran "
        f"({ended - began:.1f} s); {len(present) - len(preloaded)} sent events in the backup"
    )
