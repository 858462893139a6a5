"""No password or key in plaintext anywhere: a real `tokenledger serve` with its first
admin, sign-ins (right and wrong), password changes, keys made on the page and on the
command line and used; then the bytes of the database files and of the server log
are searched for every secret used."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx
from typer.testing import CliRunner

from tests.conftest import make_event
from tests.support.server import ServerProcess
from tokenledger.cli import app

ADMIN_PASSWORD = "first admin passphrase 1"
WRONG_PASSWORD = "a wrong guess passphrase"
CHANGED_PASSWORD = "changed passphrase 22"
VIEWER_PASSWORD = "viewer from the cli 333"
RESET_PASSWORD = "reset from the cli 4444"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')


def _token(page: httpx.Response) -> str:
    found = _TOKEN.search(page.text)
    assert found, page.text[:500]
    return found.group(1) or found.group(2)


def _sign_in(web: httpx.Client, email: str, password: str) -> httpx.Response:
    token = _token(web.get("/sign-in"))
    return web.post("/sign-in", data={"email": email, "password": password, "csrf_token": token})


def _cli(database_url: str, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(app, ["--database-url", database_url, *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_no_secret_in_the_database_files_or_the_log(tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    url = f"sqlite:///{database}"
    secrets: list[str] = [ADMIN_PASSWORD, WRONG_PASSWORD, CHANGED_PASSWORD]
    env = {
        "TOKENLEDGER_ADMIN_EMAIL": "root@example.com",
        "TOKENLEDGER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    with ServerProcess(url, tmp_path, **env) as server, httpx.Client(base_url=server.url) as web:
        assert "created the admin account root@example.com" in server.log()
        assert "Sign in at http://127.0.0.1:" in server.log()
        assert _sign_in(web, "root@example.com", WRONG_PASSWORD).status_code == 401
        assert _sign_in(web, "root@example.com", ADMIN_PASSWORD).status_code == 303
        # A key made on the Keys page, and one on the command line; both used.
        page = web.post(
            "/admin/keys",
            data={
                "name": "web key",
                "scope": "ingest",
                "csrf_token": _token(web.get("/admin/keys")),
            },
            follow_redirects=True,  # the secret is shown by the page the form redirects to
        )
        web_key = re.search(r'<code id="new-key">([^<]+)</code>', page.text).group(1)  # type: ignore[union-attr]
        cli_key = _cli(
            url, "keys", "create", "--name", "cli key", "--scope", "report:read"
        ).split()[-1]
        secrets += [web_key, cli_key]
        sent = httpx.post(
            f"{server.url}/api/v1/events",
            json={"events": [make_event()]},
            headers={"Authorization": f"Bearer {web_key}"},
        )
        assert sent.status_code == 200
        report = httpx.get(
            f"{server.url}/api/v1/reports/user-usage",
            headers={"Authorization": f"Bearer {cli_key}"},
        )
        assert report.status_code == 200
        # Passwords set on the command line and on the account page.
        _cli(
            url,
            "accounts",
            "create",
            "--email",
            "v@example.com",
            "--role",
            "viewer",
            "--password-stdin",
            stdin=VIEWER_PASSWORD,
        )
        _cli(
            url,
            "accounts",
            "reset-password",
            "v@example.com",
            "--password-stdin",
            stdin=RESET_PASSWORD,
        )
        secrets += [VIEWER_PASSWORD, RESET_PASSWORD]
        changed = web.post(
            "/account/password",
            data={
                "current_password": ADMIN_PASSWORD,
                "new_password": CHANGED_PASSWORD,
                "confirm_password": CHANGED_PASSWORD,
                "csrf_token": _token(web.get("/account")),
            },
        )
        assert changed.status_code == 303
        session = web.cookies["tokenledger_session"]
        secrets.append(session)
        web.post("/sign-out", data={"csrf_token": _token(web.get("/account"))})
        # While running (the WAL holds the latest writes) and after the server stopped.
        files = {f"{p.name} (running)": p.read_bytes() for p in tmp_path.glob("ledger.db*")}
        assert "ledger.db-wal (running)" in files
    files |= {path.name: path.read_bytes() for path in tmp_path.glob("ledger.db*")}
    files["server log"] = server.log_path.read_bytes()
    assert b"POST /sign-in" in files["server log"]
    for name, content in files.items():
        for secret in secrets:
            assert secret.encode() not in content, f"a secret is in {name}"


def test_without_a_terminal_no_password_is_generated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with ServerProcess(url, tmp_path) as server:
        log = server.log()
    assert "no admin account yet" in log
    assert "TOKENLEDGER_ADMIN_PASSWORD" in log
    assert "password, shown only now" not in log
    out = _cli(url, "accounts", "list")
    assert "admin@localhost" not in out
