"""CSRF: every state-changing browser request needs the token of its own session
(form field or X-CSRF-Token header), and a foreign Origin or Referer is refused."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import make_event
from tests.support.console import csrf_token, make_account, sign_in
from tokenledger.auth import accounts
from tokenledger.store.database import Database


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def viewer(db: Database) -> accounts.Account:
    return make_account(db, "viewer@example.com")


@pytest.fixture
def signed_in(client: TestClient, viewer: accounts.Account) -> TestClient:
    assert sign_in(client, "viewer@example.com").status_code == 303
    return client


def _rename(client: TestClient, **extra: object) -> int:
    response = client.post(
        "/account",
        follow_redirects=False,
        **extra,  # type: ignore[arg-type]
    )
    return response.status_code


def test_a_form_without_the_token_is_refused(signed_in: TestClient) -> None:
    response = signed_in.post("/account", data={"display_name": "Mallory"}, follow_redirects=False)
    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_the_right_token_in_the_form_or_the_header_is_accepted(signed_in: TestClient) -> None:
    token = csrf_token(signed_in)
    assert _rename(signed_in, data={"display_name": "V", "csrf_token": token}) == 303
    assert _rename(signed_in, data={"display_name": "V"}, headers={"X-CSRF-Token": token}) == 303


def test_a_token_from_another_session_is_refused(
    app: FastAPI, signed_in: TestClient, db: Database
) -> None:
    make_account(db, "mallory@example.com")
    mallory = TestClient(app)
    sign_in(mallory, "mallory@example.com")
    foreign = csrf_token(mallory)
    assert _rename(signed_in, data={"display_name": "x", "csrf_token": foreign}) == 403
    assert _rename(signed_in, data={"display_name": "x"}, headers={"X-CSRF-Token": foreign}) == 403
    assert _rename(signed_in, data={"display_name": "x", "csrf_token": ""}) == 403


def test_the_token_from_before_sign_in_is_not_valid_after(
    client: TestClient, viewer: accounts.Account
) -> None:
    before = csrf_token(client)
    sign_in(client, "viewer@example.com")
    assert _rename(client, data={"display_name": "x", "csrf_token": before}) == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Referer": "https://evil.example/page"},
    ],
)
def test_a_foreign_origin_is_refused_even_with_the_token(
    signed_in: TestClient, headers: dict[str, str]
) -> None:
    token = csrf_token(signed_in)
    status = _rename(signed_in, data={"display_name": "x", "csrf_token": token}, headers=headers)
    assert status == 403


def test_this_sites_origin_passes(signed_in: TestClient) -> None:
    token = csrf_token(signed_in)
    headers = {"Origin": "http://testserver", "Referer": "http://testserver/account"}
    assert (
        _rename(signed_in, data={"display_name": "x", "csrf_token": token}, headers=headers) == 303
    )


def test_sign_in_itself_needs_the_token(client: TestClient, viewer: accounts.Account) -> None:
    form = {"email": "viewer@example.com", "password": "correct horse battery staple"}
    assert client.post("/sign-in", data=form, follow_redirects=False).status_code == 403
    other_browser_token = csrf_token(TestClient(client.app))
    client.get("/sign-in")
    response = client.post(
        "/sign-in", data={**form, "csrf_token": other_browser_token}, follow_redirects=False
    )
    assert response.status_code == 403


def test_sign_out_needs_the_token(signed_in: TestClient) -> None:
    assert signed_in.post("/sign-out", follow_redirects=False).status_code == 403
    assert signed_in.get("/account", follow_redirects=False).status_code == 200


def test_multipart_forms_need_the_header(signed_in: TestClient) -> None:
    token = csrf_token(signed_in)
    files = {"display_name": (None, "x"), "csrf_token": (None, token)}
    assert _rename(signed_in, files=files) == 403
    assert _rename(signed_in, files=files, headers={"X-CSRF-Token": token}) == 303


def test_api_keys_are_not_subject_to_csrf(
    signed_in: TestClient, ingest_key: str, read_key: str
) -> None:
    """A cross-site form cannot send an Authorization header, so key requests need no
    token, even from a browser that also has a session cookie."""
    response = signed_in.post(
        "/api/v1/events",
        json={"events": [make_event()]},
        headers={"Authorization": f"Bearer {ingest_key}"},
    )
    assert response.status_code == 200
    # Without a key (and without a session), the API's own answer: 401.
    anonymous = TestClient(signed_in.app)
    response = anonymous.post("/api/v1/events", json={"events": [make_event()]})
    assert response.status_code == 401
    # With a session cookie but no key, a state-changing API call needs the token.
    response = signed_in.post("/api/v1/events", json={"events": [make_event()]})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
