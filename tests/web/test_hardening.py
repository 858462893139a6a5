"""The smaller holes of issue 11 (items 9 and 10): answers never cached, redirects
that never name a host, 503s that name no host or file, compressed bodies, exports
started from another site, and one rule for every name a person types."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tests.support.console import post_form
from tests.support.postgres import free_port
from tests.web.signed_in import signed_in_client
from tokenledger.auth import audit
from tokenledger.settings import Settings
from tokenledger.store.database import Database, DatabaseUnavailable, open_database
from tokenledger.web.app import create_app

EXPORT = "/api/v1/reports/user-usage/export"


def test_pages_reports_and_errors_are_never_cached(app: FastAPI, read_key: str) -> None:
    with signed_in_client(app, role="admin") as admin:
        for path in ("/admin/accounts", "/admin/keys", "/admin/audit", "/account"):
            response = admin.get(path)
            assert (response.status_code, response.headers["cache-control"]) == (200, "no-store")
    with TestClient(app) as client:
        keyed = {"Authorization": f"Bearer {read_key}"}
        for path in ("/api/v1/reports/user-usage", "/api/v1/reports/usage-series"):
            response = client.get(path, headers=keyed)
            assert (response.status_code, response.headers["cache-control"]) == (200, "no-store")
        assert client.get("/api/v1/reports/user-usage").headers["cache-control"] == "no-store"
        static = client.get("/static/app.css?v=1")
        assert static.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("path", ["/admin/accounts/", "/account/", "/api/v1/reports/user-usage/"])
def test_a_trailing_slash_redirect_never_names_the_requested_host(app: FastAPI, path: str) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = client.get(path, headers={"Host": "evil.test"})
    assert response.status_code in {307, 308}
    assert response.headers["location"] == path.rstrip("/")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_sqlite_file_that_is_not_writable_is_not_named_in_the_answer(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert db.sqlite_file is not None
    monkeypatch.setattr("os.access", lambda *_args, **_kwargs: False)
    with caplog.at_level(logging.WARNING), pytest.raises(DatabaseUnavailable) as refused:
        db.check_writable()
    assert str(refused.value) == "the SQLite file is not writable"
    assert str(db.sqlite_file) in caplog.text  # the path is in the log, for the admin


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_an_unreachable_database_server_is_not_named_in_the_answer(
    backend: str, read_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    settings = Settings(database_url=f"postgresql+psycopg://tl@127.0.0.1:{port}/tokenledger")
    gone = open_database(settings)
    try:
        with caplog.at_level(logging.WARNING), TestClient(create_app(settings, db=gone)) as client:
            response = client.get(
                "/api/v1/reports/user-usage", headers={"Authorization": f"Bearer {read_key}"}
            )
    finally:
        gone.dispose()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "cannot be reached" in error["message"]
    assert "127.0.0.1" not in response.text
    assert str(port) not in response.text
    assert str(port) in caplog.text


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_ingest_body_gets_415_naming_the_encoding(
    client: TestClient, ingest_key: str, db: Database, encoding: str
) -> None:
    body = gzip.compress(json.dumps({"events": [make_event()]}).encode())
    response = client.post(
        "/api/v1/events",
        content=body,
        headers={
            "Authorization": f"Bearer {ingest_key}",
            "Content-Type": "application/json",
            "Content-Encoding": encoding,
        },
    )
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_encoding"
    assert encoding in error["message"]
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),  # another host of the same site
        ({"Sec-Fetch-Site": "same-origin"}, 200),  # the Export button
        ({"Sec-Fetch-Site": "none"}, 200),  # typed, or a bookmark
        ({"Sec-Fetch-Site": None, "Referer": "https://evil.test/page"}, 403),
        ({"Sec-Fetch-Site": None}, 403),
        ({"Sec-Fetch-Site": None, "Referer": "http://testserver/reporting/user-usage"}, 200),
    ],
)
def test_a_signed_in_export_must_be_started_from_this_site(
    app: FastAPI, db: Database, headers: dict[str, Any], status: int
) -> None:
    # Issue 11 (10): an export is a GET, so a link on another site could make a signed-in
    # admin's browser download usage and write an audit entry in the admin's name.
    with signed_in_client(app, role="admin") as admin:
        if headers.get("Sec-Fetch-Site", "") is None:
            del admin.headers["Sec-Fetch-Site"]
        sent = {name: value for name, value in headers.items() if value is not None}
        response = admin.get(EXPORT, params={"start": "2026-11-25"}, headers=sent)
    assert response.status_code == status, response.text
    exports = audit.entries(db, action=audit.EXPORT)
    assert len(exports) == (1 if status == 200 else 0)
    if status == 403:
        assert response.json()["error"]["code"] == "cross_site_request"


def test_an_export_with_a_key_works_from_anywhere(client: TestClient, read_key: str) -> None:
    response = client.get(
        EXPORT,
        headers={"Authorization": f"Bearer {read_key}", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 200, response.text


HIDDEN = {
    "NUL": "a\x00b",
    "escape": "\x1b[31mred",
    "right-to-left override": "\u202eexe.txt",
    "zero-width space": "a\u200bb",
    "byte order mark": "\ufeffname",
}


@pytest.mark.parametrize("name", HIDDEN.values(), ids=HIDDEN.keys())
def test_key_and_display_names_follow_one_rule(app: FastAPI, db: Database, name: str) -> None:
    # Issue 11 (9): key names took newline, ESC and U+202E (and NUL was a 500 on
    # PostgreSQL), which display names refused.
    with signed_in_client(app, role="admin") as admin:
        key = post_form(admin, "/admin/keys", {"name": name, "scope": "ingest"})
        profile = post_form(admin, "/account", {"display_name": name})
    assert key.status_code == 400, key.text
    assert "control, format or invisible characters" in key.text
    assert profile.status_code == 400, profile.text
    assert "control, format or invisible characters" in profile.text
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 0


def test_names_in_every_script_stay_names_and_white_space_is_one_space(
    app: FastAPI, db: Database
) -> None:
    names = ["مفتاح البوابة", "ключ шлюза", "فارسی\u200cنویس", "👩🏽\u200d💻 gateway", "a\n\tb"]
    with signed_in_client(app, role="admin") as admin:
        for name in names:
            created = post_form(admin, "/admin/keys", {"name": name, "scope": "ingest"})
            assert created.status_code == 303, created.text  # post/redirect/get
    with db.read() as conn:
        stored = conn.execute(text("SELECT name FROM api_keys ORDER BY id")).scalars()
        assert list(stored) == [*names[:-1], "a b"]
