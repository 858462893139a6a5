"""Every export leaves an audit entry: who, when, the filters and the rows sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import make_event
from tests.web.signed_in import signed_in_client
from tokenledger.auth import audit
from tokenledger.cli import app as cli_app
from tokenledger.store.database import Database

PATH = "/api/v1/reports/user-usage/export"
PARAMS = {"start": "2026-11-20", "end": "2026-11-25", "tz": "Asia/Kolkata", "q": "a"}
FILTERS = {
    "start": "2026-11-20",
    "end": "2026-11-25",
    "timezone": "Asia/Kolkata",
    "q": "a",
    "sort": "-total_tokens",
    "granularity": "daily",
}


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def usage(post_events: Callable[..., Any]) -> None:
    events = [
        make_event(user={"id": "u-ann", "name": "Ann"}),
        make_event(user={"id": "u-bea", "name": "Bea"}),
        make_event(user={"id": "u-cy", "name": "Cy"}),
    ]
    assert post_events(events).status_code == 200


def _exports(db: Database) -> list[audit.AuditEntry]:
    return audit.entries(db, action=audit.EXPORT)


def test_a_signed_in_viewer_exports_and_it_is_audited(
    app: FastAPI, db: Database, usage: None
) -> None:
    with signed_in_client(app, role="viewer") as browser:
        response = browser.get(PATH, params={**PARAMS, "granularity": "daily"})
    assert response.status_code == 200
    assert response.text.count("\r\n") == 3  # header, Ann, Bea
    (entry,) = _exports(db)
    assert entry.actor == "viewer@example.com"
    assert entry.details == {"filters": FILTERS, "rows": 2, "complete": True}
    assert entry.client == "testclient"
    assert entry.at_us > 0


def test_a_read_key_export_is_audited_with_the_key(
    client: TestClient, db: Database, read_key: str, ingest_key: str, usage: None
) -> None:
    response = client.get(PATH, headers={"Authorization": f"Bearer {read_key}"})
    assert response.status_code == 200
    (entry,) = _exports(db)
    assert entry.actor.startswith(f"key {read_key[:11]}… (tests reader)")
    assert read_key not in entry.actor
    assert entry.details["rows"] == 3
    refused = client.get(PATH, headers={"Authorization": f"Bearer {ingest_key}"})
    assert refused.status_code == 403
    assert client.get(PATH).status_code == 401
    assert len(_exports(db)) == 1


def test_a_command_line_export_is_audited(database_url: str, db: Database, usage: None) -> None:
    result = CliRunner().invoke(
        cli_app,
        ["--database-url", database_url, "export", "--start", "2026-11-25", "--tz", "UTC"],
    )
    assert result.exit_code == 0, result.output
    (entry,) = _exports(db)
    assert entry.actor.startswith("cli")
    assert entry.details["rows"] == 3
    assert entry.details["filters"]["granularity"] == "summary"
