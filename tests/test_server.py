"""`tokenledger serve` as a real process: fresh database, ingest with a key, read back."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import make_event
from tests.support.server import ServerProcess
from tokenledger.cli import app


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_serve_ingest_and_report_over_http(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    if backend == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'fresh.db'}"  # not even migrated yet
    else:
        database_url = request.getfixturevalue("database_url")
    with ServerProcess(database_url, tmp_path) as server:
        runner = CliRunner()
        keys = {}
        for scope in ("ingest", "report:read"):
            result = runner.invoke(
                app,
                [
                    "--database-url",
                    database_url,
                    "keys",
                    "create",
                    "--name",
                    scope,
                    "--scope",
                    scope,
                ],
            )
            assert result.exit_code == 0, result.output
            keys[scope] = result.stdout.strip().splitlines()[-1]
        from datetime import UTC, datetime

        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        events = [make_event(started_at=now, input_tokens=7, output_tokens=5) for _ in range(3)]
        response = httpx.post(
            f"{server.url}/api/v1/events",
            json={"events": events},
            headers={"Authorization": f"Bearer {keys['ingest']}"},
        )
        assert response.status_code == 200, response.text
        assert "server" not in response.headers  # nothing to fingerprint (issue 11, 10)
        report = httpx.get(
            f"{server.url}/api/v1/reports/user-usage",
            params={"tz": "UTC"},
            headers={"Authorization": f"Bearer {keys['report:read']}"},
        ).json()
        assert report["total_users"] == 1
        assert report["totals"]["total_tokens"] == 36
        assert report["users"][0]["user_id"] == "u-alice"


def test_serve_with_two_worker_processes(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'workers.db'}"
    with ServerProcess(database_url, tmp_path, TOKENLEDGER_WORKERS="2") as server:
        result = CliRunner().invoke(
            app,
            ["--database-url", database_url, "keys", "create", "--name", "w", "--scope", "ingest"],
        )
        key = result.stdout.strip().splitlines()[-1]
        from datetime import UTC, datetime

        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        statuses = set()
        for _ in range(6):  # spread over both workers
            response = httpx.post(
                f"{server.url}/api/v1/events",
                json={"events": [make_event(started_at=now)]},
                headers={"Authorization": f"Bearer {key}"},
            )
            statuses.add(response.status_code)
        assert statuses == {200}
        assert "Started parent process" in server.log()


def test_serve_names_the_admin_at_every_start(tmp_path: Path) -> None:
    """Whoever finds the server running later learns which account is the admin, and
    how to get back in without the password."""
    database_url = f"sqlite:///{tmp_path / 'admins.db'}"
    env = {
        "TOKENLEDGER_ADMIN_EMAIL": "root@example.com",
        "TOKENLEDGER_ADMIN_PASSWORD": "first admin passphrase 1",
    }
    logs = []
    for _ in range(2):
        with ServerProcess(database_url, tmp_path, **env) as server:
            pass
        logs.append(server.log())
    assert "created the admin account root@example.com" in logs[0]
    assert "created the admin account" not in logs[1]
    for log in logs:
        assert "Admin account: root@example.com" in log
        assert "Run: tokenledger accounts reset-password root@example.com" in log
