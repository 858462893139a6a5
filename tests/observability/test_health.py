"""``/healthz`` (the process is up) and ``/readyz`` (the database can serve)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import fresh_database_url, make_event
from tests.observability.conftest import migrated_database, parse_metrics, value
from tests.reliability.workload import wait_until
from tests.support.postgres import Cluster
from tests.support.server import ServerProcess
from tokenledger.auth.keys import create_key
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import open_database
from tokenledger.web.app import create_app

NOT_MIGRATED = {"status": "not ready", "reason": "database not migrated"}
UNAVAILABLE = {"status": "not ready", "reason": "database unavailable"}


def test_ready_when_the_database_is_migrated(client: TestClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})
    assert "set-cookie" not in response.headers  # a probe is not a browser
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("revision", [None, "0001"])
def test_not_ready_until_migrated_to_the_newest_revision(
    tmp_path: Path, revision: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'tokenledger.db'}")
    db = open_database(settings)
    if revision is not None:
        migrate.upgrade(db, revision)
    try:
        with TestClient(create_app(settings, db=db)) as client:
            refused = client.get("/readyz")
            assert (refused.status_code, refused.json()) == (503, NOT_MIGRATED)
            assert refused.headers["retry-after"] == "5"
            assert client.get("/healthz").status_code == 200  # the process is up
            migrate.upgrade(db)
            assert client.get("/readyz").status_code == 200
    finally:
        db.dispose()
    assert "not at the newest revision" in caplog.text


@pytest.mark.postgres
def test_postgresql_down_not_ready_and_metrics_still_served(
    own_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    url = migrated_database(own_cluster)
    settings = Settings(database_url=url)
    db = open_database(settings)
    ingest = create_key(db, name="ingest", scope="ingest", now_us=0)[1]
    scraper = {"Authorization": f"Bearer {create_key(db, name='m', scope='metrics', now_us=0)[1]}"}
    sender = {"Authorization": f"Bearer {ingest}"}
    try:
        with TestClient(create_app(settings, db=db)) as client:
            assert client.get("/readyz").status_code == 200
            assert client.get("/metrics", headers=scraper).status_code == 200
            events = {"events": [make_event()]}
            assert client.post("/api/v1/events", json=events, headers=sender).status_code == 200

            own_cluster.stop("immediate")
            refused = client.get("/readyz")
            assert (refused.status_code, refused.json()) == (503, UNAVAILABLE)
            assert str(own_cluster.port) not in refused.text  # the detail is only logged
            assert client.get("/healthz").status_code == 200
            assert client.post("/api/v1/events", json=events, headers=sender).status_code == 503
            # The key was seen valid: the outage is scraped, not hidden behind a 503.
            during = client.get("/metrics", headers=scraper)
            assert during.status_code == 200
            samples = parse_metrics(during.text)
            route = {"method": "POST", "route": "/api/v1/events"}
            assert value(samples, "tokenledger_http_requests_total", **route, status="503") == 1
            assert value(samples, "tokenledger_http_requests_total", **route, status="200") == 1
            assert (
                value(
                    samples,
                    "tokenledger_http_requests_total",
                    method="GET",
                    route="/readyz",
                    status="503",
                )
                == 1
            )
            assert value(samples, "tokenledger_database_errors_total", error="OperationalError") > 0
            unknown = client.get("/metrics", headers={"Authorization": f"Bearer {ingest}"})
            assert unknown.status_code == 503  # a key never seen valid: nothing to vouch for it

            own_cluster.start()
            wait_until(
                lambda: client.get("/readyz").status_code == 200,
                timeout=30,
                message="ready again once PostgreSQL is back",
            )
    finally:
        db.dispose()
    details = [
        record.detail  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "tokenledger.health" and record.levelno == logging.WARNING
    ]
    assert details, "the reason the database was unavailable is logged"
    assert all(isinstance(detail, str) and detail for detail in details)


def test_a_read_only_sqlite_file_is_not_ready(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = fresh_database_url(request, "sqlite", tmp_path)
    path = Path(database_url.removeprefix("sqlite:///"))
    with ServerProcess(database_url, tmp_path, respect_file_modes=True) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        path.chmod(0o444)
        refused = httpx.get(f"{server.url}/readyz")
        assert (refused.status_code, refused.json()) == (503, UNAVAILABLE)
        assert str(path) not in refused.text
        assert f"the SQLite file {path} is not writable" in server.log()  # logged
        path.chmod(0o644)
        assert httpx.get(f"{server.url}/readyz").status_code == 200
