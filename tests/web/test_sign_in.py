"""Web sign-in: redirects there and back, sessions, cookies, losing access at once."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support.clock import FrozenClock
from tests.support.console import PASSWORD, csrf_token, make_account, post_form, sign_in
from tokenledger.auth import accounts, audit
from tokenledger.settings import Settings
from tokenledger.store.database import Database
from tokenledger.web.app import create_app
from tokenledger.web.auth_pages import local_path


@pytest.fixture
def backend() -> str:
    """Sign-in logic is the same on both backends; the store is tested on both elsewhere."""
    return "sqlite"


@pytest.fixture
def admin(db: Database) -> accounts.Account:
    return make_account(db, "admin@example.com", "admin", display_name="Ada Admin")


@pytest.fixture
def viewer(db: Database) -> accounts.Account:
    return make_account(db, "viewer@example.com", "viewer")


def _client(app: FastAPI, **kwargs: object) -> TestClient:
    return TestClient(app, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


def test_a_page_sends_to_sign_in_and_sign_in_comes_back(
    client: TestClient, admin: accounts.Account
) -> None:
    response = client.get("/admin/keys?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fadmin%2Fkeys%3Fx%3D1"
    page = client.get(response.headers["location"])
    assert 'name="next" value="/admin/keys?x=1"' in page.text
    signed_in = sign_in(client, "admin@example.com", next="/admin/keys?x=1")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/admin/keys?x=1"
    assert client.get("/admin/keys", follow_redirects=False).status_code == 200


def test_htmx_requests_are_told_where_to_sign_in(client: TestClient) -> None:
    response = client.get("/account", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 204
    assert response.headers["hx-redirect"] == "/sign-in?next=%2Faccount"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=1",
        "/\tevil",
        " /admin",
        "",
    ],
)
def test_sign_in_never_redirects_off_site(
    client: TestClient, admin: accounts.Account, target: str
) -> None:
    assert local_path(target) == "/"
    response = sign_in(client, "admin@example.com", next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = client.get("/sign-in", params={"next": target})  # signed in: straight on
    assert page.history[0].headers["location"] == "/"


def test_local_paths_are_kept() -> None:
    assert (
        local_path("/admin/audit?action=export&before=9") == "/admin/audit?action=export&before=9"
    )
    assert local_path("/reporting/user-usage#top") == "/reporting/user-usage#top"


def test_the_session_id_changes_at_sign_in(
    app: FastAPI, client: TestClient, admin: accounts.Account
) -> None:
    client.cookies.set("tokenledger_session", "chosen-by-an-attacker", domain="testserver.local")
    sign_in(client, "admin@example.com")
    first = client.cookies["tokenledger_session"]
    assert first != "chosen-by-an-attacker"
    csrf_before = csrf_token(client)
    sign_in(client, "admin@example.com")  # again, while signed in
    second = client.cookies["tokenledger_session"]
    assert second != first
    assert csrf_token(client) != csrf_before  # the CSRF token follows the session
    stale = _client(app, cookies={"tokenledger_session": first})
    assert stale.get("/account").status_code == 303  # the old session is gone


def test_cookie_attributes_over_http(client: TestClient, admin: accounts.Account) -> None:
    response = sign_in(client, "admin@example.com")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("tokenledger_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert attributes == {"path", "httponly", "samesite"}
    assert "; Path=/;" in cookie
    assert "SameSite=Lax" in cookie


def test_cookie_attributes_over_https(app: FastAPI, admin: accounts.Account) -> None:
    browser = _client(app, base_url="https://console.example")
    response = sign_in(browser, "admin@example.com")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-tokenledger_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert attributes == {"path", "httponly", "samesite", "secure"}
    assert "Domain" not in cookie
    assert browser.get("/account").status_code == 200


def _app(settings: Settings, db: Database, clock: FrozenClock, **changes: object) -> FastAPI:
    return create_app(settings.model_copy(update=changes), db=db, clock=clock)


def _pre_session_cookie(browser: TestClient) -> str:
    """The cookie the sign-in page sets (over HTTP, a Secure cookie would not come back
    to this test client, so the attributes are read here rather than after sign-in)."""
    return browser.get("/sign-in").headers["set-cookie"]


@pytest.mark.parametrize(
    ("peer", "secure"), [("10.1.2.3", True), ("192.0.2.10", False)], ids=["trusted", "untrusted"]
)
def test_forwarded_proto_is_believed_only_from_trusted_proxies(
    settings: Settings, db: Database, clock: FrozenClock, peer: str, secure: bool
) -> None:
    app = _app(settings, db, clock, trusted_proxies="10.0.0.0/8, 127.0.0.1")
    browser = _client(app, client=(peer, 40000), headers={"X-Forwarded-Proto": "https"})
    cookie = _pre_session_cookie(browser)
    assert cookie.startswith("__Host-tokenledger_csrf=" if secure else "tokenledger_csrf=")
    assert ("; Secure" in cookie) is secure


@pytest.mark.parametrize(
    ("mode", "base_url", "secure"),
    [("always", "http://testserver", True), ("never", "https://testserver", False)],
)
def test_secure_cookies_setting_forces_the_choice(
    settings: Settings,
    db: Database,
    clock: FrozenClock,
    admin: accounts.Account,
    mode: str,
    base_url: str,
    secure: bool,
) -> None:
    browser = _client(_app(settings, db, clock, secure_cookies=mode), base_url=base_url)
    assert ("; Secure" in _pre_session_cookie(browser)) is secure
    if not secure:
        cookie = sign_in(browser, "admin@example.com").headers["set-cookie"]
        assert cookie.startswith("tokenledger_session=")
        assert "Secure" not in cookie


def test_the_client_address_comes_from_trusted_proxies_only(
    settings: Settings, db: Database, clock: FrozenClock, admin: accounts.Account
) -> None:
    app = _app(settings, db, clock, trusted_proxies="10.0.0.1")
    forwarded = {"X-Forwarded-For": "203.0.113.77, 10.0.0.1"}
    sign_in(_client(app, client=("10.0.0.1", 1), headers=forwarded), "admin@example.com")
    sign_in(_client(app, client=("198.51.100.4", 1), headers=forwarded), "admin@example.com")
    clients = [entry.client for entry in audit.entries(db, action=audit.SIGN_IN)]
    assert clients == ["198.51.100.4", "203.0.113.77"]


def test_sign_out_ends_the_session_for_good(
    app: FastAPI, client: TestClient, db: Database, viewer: accounts.Account
) -> None:
    sign_in(client, "viewer@example.com")
    token = client.cookies["tokenledger_session"]
    response = post_form(client, "/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?done=signed-out"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert "You are signed out" in client.get(response.headers["location"]).text
    replayed = _client(app, cookies={"tokenledger_session": token})
    assert replayed.get("/account").status_code == 303
    assert [e.actor for e in audit.entries(db, action=audit.SIGN_OUT)] == ["viewer@example.com"]


def test_a_disabled_account_loses_access_at_once(
    client: TestClient, db: Database, admin: accounts.Account, viewer: accounts.Account
) -> None:
    sign_in(client, "viewer@example.com")
    assert client.get("/account", follow_redirects=False).status_code == 200
    assert client.get("/api/v1/reports/user-usage").status_code == 200
    # Straight in the database (no session revoked): the next request sees it.
    with db.write() as conn:
        conn.execute(text("UPDATE accounts SET enabled = false WHERE email = 'viewer@example.com'"))
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/reports/user-usage").status_code == 401
    refused = sign_in(client, "viewer@example.com")
    assert refused.status_code == 401


def test_a_demoted_admin_gets_403_on_admin_pages_at_once(
    client: TestClient, db: Database, admin: accounts.Account
) -> None:
    make_account(db, "other-admin@example.com", "admin")
    sign_in(client, "admin@example.com")
    assert client.get("/admin/accounts").status_code == 200
    token = csrf_token(client)
    accounts.set_role(db, admin.id, role="viewer", actor="other-admin@example.com", now_us=1)
    for path in ("/admin/accounts", "/admin/keys", "/admin/audit", f"/admin/accounts/{admin.id}"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 403, path
        assert "Admins only" in page.text
        assert 'href="/admin/keys"' not in page.text  # the nav shows a viewer's links
    created = client.post("/admin/keys", data={"name": "x", "scope": "ingest", "csrf_token": token})
    assert created.status_code == 403
    assert client.get("/account").status_code == 200  # still signed in, as a viewer


def test_too_many_failures_pause_sign_in_with_a_clear_message(
    client: TestClient, admin: accounts.Account
) -> None:
    unknown = sign_in(client, "nobody@example.com", "wrong password!")
    wrong = sign_in(client, "admin@example.com", "wrong password!")
    assert unknown.status_code == wrong.status_code == 401
    message = "The e-mail address or password is not correct."
    assert message in unknown.text
    assert message in wrong.text
    for _ in range(9):
        sign_in(client, "admin@example.com", "wrong password!")
    paused = sign_in(client, "admin@example.com", PASSWORD)
    assert paused.status_code == 429
    assert "Too many failed sign-in attempts" in paused.text
    assert int(paused.headers["retry-after"]) > 0
    assert "tokenledger_session" not in paused.headers.get("set-cookie", "")


def test_signed_in_person_sees_the_console_nav(client: TestClient, admin: accounts.Account) -> None:
    sign_in(client, "admin@example.com")
    page = client.get("/account")
    assert "Ada Admin" in page.text
    assert 'href="/admin/audit"' in page.text
    assert 'action="/sign-out"' in page.text
