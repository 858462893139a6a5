"""``/metrics``: exact values after known traffic, the key it needs, and its docs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tests.conftest import make_event
from tests.observability.conftest import Samples, value
from tests.support.console import make_account, post_form, sign_in
from tokenledger.auth.keys import list_keys, revoke_key
from tokenledger.observability.metrics import DatabaseFiles, Metrics
from tokenledger.settings import Settings
from tokenledger.store.database import Database, open_database

OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
EVENTS = "/api/v1/events"


def test_metrics_after_known_traffic(
    client: TestClient,
    post_events: Callable[..., Any],
    read_key: str,
    settings: Settings,
    scrape: Callable[[], Samples],
) -> None:
    first, second = make_event(), make_event()
    assert post_events([first, second, make_event(user=None)]).status_code == 207
    assert post_events([first]).status_code == 200  # a duplicate
    assert post_events([make_event()], key=read_key).status_code == 403
    reader = {"Authorization": f"Bearer {read_key}"}
    assert client.get("/api/v1/reports/user-usage", headers=reader).status_code == 200
    export = client.get(
        "/api/v1/reports/user-usage/export", params={"granularity": "events"}, headers=reader
    )
    assert export.status_code == 200
    assert len(export.text.splitlines()) == 3  # the header and both events
    assert client.get("/no/such/page/7f3a9c").status_code == 404
    assert client.get("/admin/accounts/123", follow_redirects=False).status_code == 303

    samples = scrape()
    ingested = {
        labels: number
        for (name, labels), number in samples.items()
        if name == "tokenledger_ingest_events_total"
    }
    assert ingested == {
        frozenset({("outcome", "accepted"), ("code", "")}): 2,
        frozenset({("outcome", "duplicate"), ("code", "")}): 1,
        frozenset({("outcome", "rejected"), ("code", "missing")}): 1,
    }
    requests = "tokenledger_http_requests_total"
    for status, count in (("207", 1), ("200", 1), ("403", 1)):
        assert value(samples, requests, method="POST", route=EVENTS, status=status) == count
    duration = "tokenledger_http_request_duration_seconds"
    assert value(samples, f"{duration}_count", method="POST", route=EVENTS) == 3
    assert value(samples, f"{duration}_bucket", method="POST", route=EVENTS, le="+Inf") == 3
    assert value(samples, f"{duration}_sum", method="POST", route=EVENTS) > 0
    # Routes by template: a 404 is "unmatched", never its raw path.
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    template = "/admin/accounts/{account_id}"
    assert value(samples, requests, method="GET", route=template, status="303") == 1
    assert (
        value(
            samples, requests, method="GET", route="/api/v1/reports/user-usage/export", status="200"
        )
        == 1
    )
    assert not any("7f3a9c" in str(labels) or "/123" in str(labels) for _, labels in samples)
    # Two group commits (the 403 never reached one): 3 events, then 1.
    assert value(samples, "tokenledger_group_commit_events_count") == 2
    assert value(samples, "tokenledger_group_commit_events_sum") == 4
    assert value(samples, "tokenledger_group_commit_batches_sum") == 2
    assert value(samples, "tokenledger_group_commit_wait_seconds_count") == 2
    assert value(samples, "tokenledger_group_commit_duration_seconds_count") == 2
    assert value(samples, "tokenledger_export_rows_total", granularity="events") == 2
    assert value(samples, "tokenledger_exports_total", granularity="events", complete="true") == 1
    assert value(samples, "tokenledger_build_info", version="0.1.0") == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "tokenledger_database_errors_total", error="OperationalError") == 0
    if settings.database_url.startswith("sqlite"):
        database_file = Path(settings.database_url.removeprefix("sqlite:///"))
        assert value(samples, "tokenledger_sqlite_file_bytes", file="database") == (
            database_file.stat().st_size
        )
        assert (
            0
            < value(samples, "tokenledger_sqlite_disk_free_bytes")
            <= value(samples, "tokenledger_sqlite_disk_size_bytes")
        )
    else:
        assert not any(name.startswith("tokenledger_sqlite") for name, _ in samples)


def test_each_scrape_counts_the_one_before(
    client: TestClient, scrape: Callable[[], Samples]
) -> None:
    scrape()
    scrape()
    samples = scrape()
    assert (
        value(
            samples, "tokenledger_http_requests_total", method="GET", route="/metrics", status="200"
        )
        == 2
    )


def test_metrics_need_a_metrics_key(
    client: TestClient, db: Database, ingest_key: str, read_key: str, metrics_key: str
) -> None:
    def status(key: str | None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return client.get("/metrics", headers=headers).status_code

    assert status(None) == 401
    assert status("tl_not-a-key") == 401
    assert status(ingest_key) == 403
    assert status(read_key) == 403
    assert status(metrics_key) == 200
    key_id = next(key.id for key in list_keys(db) if key.scope == "metrics")
    revoke_key(db, key_id, now_us=0)
    assert status(metrics_key) == 401


def test_an_admin_makes_a_metrics_key_on_the_keys_page(client: TestClient, db: Database) -> None:
    make_account(db, "admin@example.com", "admin")
    assert sign_in(client, "admin@example.com").status_code == 303
    page = client.get("/admin/keys").text
    assert 'value="metrics"' in page
    assert "read Prometheus metrics" in page
    created = post_form(client, "/admin/keys", {"name": "prometheus", "scope": "metrics"})
    assert created.status_code == 303  # post/redirect/get: the secret is shown once, after
    response = client.get(created.headers["location"])
    found = re.search(r'<code id="new-key">(tl_[^<]+)</code>', response.text)
    assert found is not None, response.text
    scraper = TestClient(client.app, headers={"Authorization": f"Bearer {found.group(1)}"})
    assert scraper.get("/metrics").status_code == 200


def test_every_metric_is_documented(tmp_path: Path) -> None:
    """Each metric declared (used yet or not) is named in docs/operations.md."""
    (tmp_path / "tokenledger.db").touch()
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'tokenledger.db'}"))
    registry = CollectorRegistry()
    Metrics(registry)
    registry.register(DatabaseFiles(db))
    names = {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in registry.collect()
    }
    documented = set(re.findall(r"`(tokenledger_[a-z_]+)`", OPERATIONS_DOC.read_text()))
    assert names - documented == set()
    assert len(names) >= 12
