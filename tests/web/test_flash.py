"""Post/redirect/get with a one-time flash: a new key's secret is shown once, after the
redirect, to the browser that made it, and is never stored in plaintext."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support.clock import FrozenClock
from tests.web.signed_in import signed_in_client
from tokenledger.auth.keys import list_keys
from tokenledger.store.database import Database

SECRET = re.compile(r'<code id="new-key">(tl_[^<]+)</code>')


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def admin(app: FastAPI) -> Iterator[TestClient]:
    with signed_in_client(app, role="admin") as client:
        yield client


def _create(client: TestClient, name: str = "gateway") -> str:
    """POST the form; returns the flash cookie the redirect sets."""
    response = client.post(
        "/admin/keys", data={"name": name, "scope": "ingest"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/keys"  # the secret is in no URL
    cookie = response.cookies.get("tokenledger_flash")
    assert cookie
    return cookie


def _sealed(db: Database) -> list[bytes]:
    with db.read() as conn:
        return [bytes(row[0]) for row in conn.execute(text("SELECT sealed FROM flashes"))]


def test_the_secret_is_shown_once_after_the_redirect(admin: TestClient, db: Database) -> None:
    _create(admin)
    (sealed,) = _sealed(db)
    page = admin.get("/admin/keys")
    assert page.headers["cache-control"] == "no-store"
    secret = SECRET.search(page.text).group(1)  # type: ignore[union-attr]
    assert secret.encode() not in sealed  # the database holds it XOR a pad it never sees
    assert "tokenledger_flash=;" in page.headers["set-cookie"]  # the browser drops the pad
    assert _sealed(db) == []  # read once, then gone
    assert SECRET.search(admin.get("/admin/keys").text) is None  # a reload shows nothing
    assert [key.name for key in list_keys(db)] == ["gateway"]


def test_a_flash_opens_only_with_its_own_pad(admin: TestClient, db: Database) -> None:
    cookie = _create(admin)
    flash_id, _, pad = cookie.partition(".")
    admin.cookies.delete("tokenledger_flash")
    admin.cookies.set("tokenledger_flash", f"{flash_id}.{'A' * len(pad)}")
    page = admin.get("/admin/keys")
    assert page.status_code == 200
    assert SECRET.search(page.text) is None
    assert _sealed(db) == []  # and the real pad cannot open it any more
    admin.cookies.delete("tokenledger_flash")
    admin.cookies.set("tokenledger_flash", cookie)
    assert SECRET.search(admin.get("/admin/keys").text) is None


def test_a_flash_nobody_came_back_for_expires(
    admin: TestClient, db: Database, clock: FrozenClock
) -> None:
    _create(admin)
    clock.advance(seconds=601)
    assert SECRET.search(admin.get("/admin/keys").text) is None
    _create(admin, "second")  # storing a flash also clears the stale ones
    assert len(_sealed(db)) == 1
