"""A real ``tokenledger serve``: its log is JSON lines, one per request, and holds no
password, key or cookie (searched for byte by byte)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import orjson
from typer.testing import CliRunner

from tests.conftest import make_event
from tests.reliability.conftest import create_keys
from tests.support.server import ServerProcess
from tokenledger.cli import app

ADMIN_PASSWORD = "admin-pw-7f3a9c-Ωμέγα-horse"
WRONG_PASSWORD = "wrong-pw-5e1d2c-battery"
NEW_PASSWORD = "new-pw-0b9e41-staple-long"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client: httpx.Client, path: str) -> str:
    found = _CSRF.search(client.get(path).text)
    assert found, path
    return found.group(1)


def test_the_log_is_json_lines_without_a_secret(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'logs.db'}"
    keys = create_keys(database_url)
    made = CliRunner().invoke(
        app, ["--database-url", database_url, "keys", "create", "--name", "p", "--scope", "metrics"]
    )
    metrics_key = made.stdout.strip().splitlines()[-1]
    unknown_key = "tl_" + secrets.token_urlsafe(32)
    env = {
        "TOKENLEDGER_ADMIN_EMAIL": "ops@example.com",
        "TOKENLEDGER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    server = ServerProcess(database_url, tmp_path, **env)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    with server, httpx.Client(base_url=server.url, follow_redirects=False) as browser:
        sign_in = {"email": "ops@example.com", "next": "/account"}
        token = _csrf(browser, "/sign-in")
        refused = browser.post(
            "/sign-in", data={**sign_in, "password": WRONG_PASSWORD, "csrf_token": token}
        )
        assert refused.status_code == 401
        token = _csrf(browser, "/sign-in")
        signed_in = browser.post(
            "/sign-in", data={**sign_in, "password": ADMIN_PASSWORD, "csrf_token": token}
        )
        assert signed_in.status_code == 303
        cookies = dict(browser.cookies.items())
        assert "tokenledger_session" in cookies
        change = {
            "current_password": ADMIN_PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "csrf_token": _csrf(browser, "/account"),
        }
        assert browser.post("/account/password", data=change).status_code == 303
        api = httpx.Client(base_url=server.url)
        sent = api.post(
            "/api/v1/events",
            json={"events": [make_event(started_at=now)]},
            headers={"Authorization": f"Bearer {keys.ingest}", "X-Request-ID": keys.ingest},
        )
        assert sent.status_code == 200
        assert sent.headers["x-request-id"] != keys.ingest
        report = api.get(
            "/api/v1/reports/user-usage/export",
            params={"key": keys.read, "password": ADMIN_PASSWORD},
            headers={"Authorization": f"Bearer {keys.read}"},
        )
        assert report.status_code == 200
        assert (
            api.get("/metrics", headers={"Authorization": f"Bearer {metrics_key}"}).status_code
            == 200
        )
        assert (
            api.get("/metrics", headers={"Authorization": f"Bearer {unknown_key}"}).status_code
            == 401
        )
        assert api.get("/readyz", headers={"X-Request-ID": "probe-1"}).status_code == 200
        api.close()
    log = server.log_path.read_bytes()

    for secret in (
        ADMIN_PASSWORD,
        WRONG_PASSWORD,
        NEW_PASSWORD,
        keys.ingest,
        keys.read,
        metrics_key,
        unknown_key,
        *cookies.values(),
        token,
    ):
        assert secret.encode() not in log, "a secret is in the log"
        assert secret[-20:].encode() not in log, "part of a secret is in the log"

    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith(b"{")]
    requests = [line for line in lines if line["logger"] == "tokenledger.request"]
    seen = [(line["method"], line["route"], line["status"]) for line in requests]
    assert ("POST", "/sign-in", 401) in seen
    assert ("POST", "/sign-in", 303) in seen
    assert ("POST", "/account/password", 303) in seen
    assert ("POST", "/api/v1/events", 200) in seen
    assert ("GET", "/api/v1/reports/user-usage/export", 200) in seen
    assert ("GET", "/metrics", 401) in seen
    assert requests[-1]["request_id"] == "probe-1"
    for line in requests:
        assert {"time", "level", "route", "status", "duration_ms", "request_id", "path"} <= set(
            line
        )
        assert "?" not in line["path"]
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's too
    others = [line for line in log.splitlines() if line.strip() and not line.startswith(b"{")]
    assert all(not line.startswith((b"INFO", b"WARNING", b"ERROR")) for line in others)
