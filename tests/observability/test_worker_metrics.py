"""``TOKENLEDGER_WORKERS`` = 2: each worker counts what it served, and whichever worker
answers ``/metrics`` adds up both (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
from prometheus_client.mmap_dict import MmapedDict
from typer.testing import CliRunner

from tests.conftest import make_event
from tests.observability.conftest import parse_metrics, value
from tests.reliability.conftest import create_keys
from tests.support.server import ServerProcess
from tokenledger.cli import app

ROUTE = {"method": "POST", "route": "/api/v1/events", "status": "200"}


def _served_by_each_worker(directory: Path) -> dict[str, float]:
    """Ingest requests answered 200, per worker process, from its own file."""
    served: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = re.fullmatch(r"counter_(\d+)\.db", path.name)
        assert pid is not None, path.name
        served[pid.group(1)] = sum(
            number
            for key, number, _, _ in MmapedDict.read_all_values_from_file(str(path))
            if json.loads(key)[1] == "tokenledger_http_requests_total"
            and json.loads(key)[2] == ROUTE
        )
    return served


def _serving(directory: Path) -> list[str]:
    """The workers that have answered ingest requests (each has a file once started)."""
    return [pid for pid, served in _served_by_each_worker(directory).items() if served > 0]


def test_two_workers_add_up_their_metrics(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'workers.db'}"
    keys = create_keys(database_url)
    made = CliRunner().invoke(
        app, ["--database-url", database_url, "keys", "create", "--name", "p", "--scope", "metrics"]
    )
    scraper = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
    runtime = tmp_path / "tmp"  # where serve makes this run's metrics directory
    runtime.mkdir()
    server = ServerProcess(database_url, tmp_path, TOKENLEDGER_WORKERS="2", TMPDIR=str(runtime))
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    with server:
        (directory,) = runtime.glob("tokenledger-metrics-*")
        sent = 0

        def send(_: int) -> int:
            response = httpx.post(
                f"{server.url}/api/v1/events",
                json={"events": [make_event(started_at=now), make_event(started_at=now)]},
                headers={"Authorization": f"Bearer {keys.ingest}"},
            )
            return response.status_code

        # New connections, 8 at a time: the kernel spreads them over the two workers.
        with ThreadPoolExecutor(8) as pool:
            while sent < 16 or (sent < 400 and len(_serving(directory)) < 2):
                assert set(pool.map(send, range(8))) == {200}
                sent += 8
        per_worker = _served_by_each_worker(directory)
        assert len(per_worker) == 2
        assert all(served > 0 for served in per_worker.values()), per_worker
        assert sum(per_worker.values()) == sent
        for _ in range(8):  # whichever worker answers, the totals are the same
            scraped = httpx.get(f"{server.url}/metrics", headers=scraper)
            assert scraped.status_code == 200
            samples = parse_metrics(scraped.text)
            assert value(samples, "tokenledger_http_requests_total", **ROUTE) == sent
            accepted = value(
                samples, "tokenledger_ingest_events_total", outcome="accepted", code=""
            )
            assert accepted == 2 * sent
            assert value(samples, "tokenledger_group_commit_events_sum") == 2 * sent
            assert value(samples, "tokenledger_build_info", version="0.1.0") == 1
    assert not directory.exists(), "the run's metrics directory is removed when serve ends"
