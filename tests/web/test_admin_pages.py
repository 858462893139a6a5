"""The Accounts, Keys and Audit pages, the own-account page, and escaping."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import make_event
from tests.support.console import PASSWORD, csrf_token, make_account, post_form, sign_in, stored
from tokenledger.auth import accounts, audit, throttle
from tokenledger.auth.keys import list_keys
from tokenledger.store.database import Database

EVIL = '<img src=x onerror="alert(1)">&amp;'
EVIL_ESCAPED = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;amp;"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def admin(client: TestClient, db: Database) -> accounts.Account:
    account = make_account(db, "admin@example.com", "admin")
    assert sign_in(client, "admin@example.com").status_code == 303
    return account


def _actions(db: Database) -> list[str]:
    return [entry.action for entry in reversed(audit.entries(db, limit=500))]


def test_an_admin_creates_an_account_that_can_sign_in(
    app: FastAPI, client: TestClient, db: Database, admin: accounts.Account
) -> None:
    response = post_form(
        client,
        "/admin/accounts",
        {
            "email": "New@Example.com",
            "display_name": "Newton",
            "role": "viewer",
            "password": "x" * 14,
        },
    )
    assert response.status_code == 303
    created = accounts.find_account(db, "new@example.com")
    assert created is not None
    assert response.headers["location"] == f"/admin/accounts/{created.id}?done=created"
    assert "The account is created" in client.get(response.headers["location"]).text
    assert (created.role, created.display_name) == ("viewer", "Newton")
    assert sign_in(TestClient(app), "new@example.com", "x" * 14).status_code == 303
    entry = audit.entries(db, action=audit.ACCOUNT_CREATED)[0]
    assert (entry.actor, entry.details["account"]) == ("admin@example.com", "new@example.com")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "not-an-email", "password": "x" * 14}, "valid e-mail"),
        ({"email": "admin@example.com", "password": "x" * 14}, "exists already"),
        ({"email": "b@example.com", "password": "short"}, "at least 12"),
        ({"email": "b@example.com", "password": "x" * 14, "role": "root"}, "role must be"),
    ],
)
def test_account_form_errors_are_shown_and_nothing_is_created(
    client: TestClient, db: Database, admin: accounts.Account, form: dict[str, str], message: str
) -> None:
    response = post_form(client, "/admin/accounts", {"role": "viewer", **form})
    assert response.status_code == 400
    assert message in response.text
    assert form["password"] not in response.text
    assert len(accounts.list_accounts(db)) == 1


def test_a_smuggled_role_field_is_ignored_outside_the_role_control(
    app: FastAPI, client: TestClient, db: Database, admin: accounts.Account
) -> None:
    viewer = make_account(db, "viewer@example.com")
    # The admin's profile form for another account.
    response = post_form(
        client, f"/admin/accounts/{viewer.id}", {"display_name": "Vi", "role": "admin"}
    )
    assert response.status_code == 303
    assert stored(db, viewer.id).role == "viewer"
    assert stored(db, viewer.id).display_name == "Vi"
    # The viewer's own profile form.
    own = TestClient(app)
    sign_in(own, "viewer@example.com")
    response = post_form(own, "/account", {"display_name": "Me", "role": "admin", "enabled": "1"})
    assert response.status_code == 303
    assert stored(db, viewer.id).role == "viewer"
    assert own.get("/admin/accounts", follow_redirects=False).status_code == 403
    # The viewer cannot use the role control.
    response = post_form(own, f"/admin/accounts/{viewer.id}/role", {"role": "admin"})
    assert response.status_code == 403
    assert stored(db, viewer.id).role == "viewer"
    # The admin can.
    response = post_form(client, f"/admin/accounts/{viewer.id}/role", {"role": "admin"})
    assert response.status_code == 303
    assert stored(db, viewer.id).role == "admin"
    assert own.get("/admin/accounts", follow_redirects=False).status_code == 200


def test_the_last_admin_cannot_demote_or_disable_itself(
    client: TestClient, db: Database, admin: accounts.Account
) -> None:
    for path, form in [
        (f"/admin/accounts/{admin.id}/role", {"role": "viewer"}),
        (f"/admin/accounts/{admin.id}/disable", {}),
    ]:
        response = post_form(client, path, form)
        assert response.status_code == 400
        assert "last enabled admin" in response.text
    unchanged = accounts.get_account(db, admin.id)
    assert unchanged is not None
    assert (unchanged.role, unchanged.enabled) == ("admin", True)


def test_disable_enable_reset_and_sign_out_everywhere(
    app: FastAPI, client: TestClient, db: Database, admin: accounts.Account
) -> None:
    viewer = make_account(db, "viewer@example.com")
    browser = TestClient(app)
    sign_in(browser, "viewer@example.com")
    base = f"/admin/accounts/{viewer.id}"
    assert "Ends the 1 open session" in client.get(base).text
    assert post_form(client, f"{base}/sessions/revoke").status_code == 303
    assert browser.get("/account", follow_redirects=False).status_code == 303
    sign_in(browser, "viewer@example.com")
    assert post_form(client, f"{base}/disable").status_code == 303
    assert browser.get("/account", follow_redirects=False).status_code == 303
    assert sign_in(browser, "viewer@example.com").status_code == 401
    assert post_form(client, f"{base}/enable").status_code == 303
    mismatch = post_form(
        client, f"{base}/password", {"new_password": "n" * 13, "confirm_password": "m" * 13}
    )
    assert mismatch.status_code == 400
    assert "do not match" in mismatch.text
    reset = post_form(
        client, f"{base}/password", {"new_password": "n" * 13, "confirm_password": "n" * 13}
    )
    assert reset.status_code == 303
    assert sign_in(browser, "viewer@example.com", PASSWORD).status_code == 401
    assert sign_in(browser, "viewer@example.com", "n" * 13).status_code == 303
    assert [action for action in _actions(db) if action.startswith("account_")] == [
        "account_created",  # the admin
        "account_created",  # the viewer
        "account_changed",  # signed out everywhere
        "account_disabled",
        "account_enabled",
        "account_changed",  # password reset
    ]


def test_own_password_change_needs_the_current_one(
    app: FastAPI, client: TestClient, db: Database, admin: accounts.Account
) -> None:
    other_browser = TestClient(app)
    sign_in(other_browser, "admin@example.com")
    wrong = post_form(
        client,
        "/account/password",
        {
            "current_password": "not it at all",
            "new_password": "p" * 12,
            "confirm_password": "p" * 12,
        },
    )
    assert wrong.status_code == 401
    assert "current password is not correct" in wrong.text
    changed = post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "p" * 12, "confirm_password": "p" * 12},
    )
    assert changed.status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 200  # this session stays
    assert other_browser.get("/account", follow_redirects=False).status_code == 303  # others end
    assert audit.entries(db, action=audit.ACCOUNT_CHANGED)[0].details == {
        "account": "admin@example.com",
        "password": "changed",
    }


def test_a_key_is_shown_once_and_only_its_prefix_afterwards(
    client: TestClient, db: Database, admin: accounts.Account
) -> None:
    created = post_form(client, "/admin/keys", {"name": "chat gateway", "scope": "ingest"})
    assert (created.status_code, created.headers["location"]) == (303, "/admin/keys")
    response = client.get("/admin/keys")  # post/redirect/get: the secret comes once, here
    assert response.headers["cache-control"] == "no-store"
    secret = re.search(r'<code id="new-key">(tl_[^<]+)</code>', response.text).group(1)  # type: ignore[union-attr]
    (key,) = list_keys(db)
    listing = client.get("/admin/keys").text  # a reload
    assert secret not in listing
    assert key.prefix in listing
    assert "chat gateway" in listing
    sent = client.post(
        "/api/v1/events",
        json={"events": [make_event()]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert sent.status_code == 200
    assert "never" not in client.get("/admin/keys").text.split("chat gateway")[1].split("</tr>")[0]
    assert post_form(client, f"/admin/keys/{key.id}/revoke").status_code == 303
    refused = client.post(
        "/api/v1/events",
        json={"events": [make_event()]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert refused.status_code == 401
    assert [e.action for e in audit.entries(db)][:2] == ["key_revoked", "key_created"]
    assert post_form(client, "/admin/keys/999/revoke").status_code == 404


def test_key_form_errors(client: TestClient, db: Database, admin: accounts.Account) -> None:
    response = post_form(client, "/admin/keys", {"name": "x", "scope": "admin"})
    assert response.status_code == 400
    assert "scope must be one of" in response.text
    assert list_keys(db) == []


def test_the_audit_page_pages_newest_first_and_filters(
    client: TestClient, db: Database, admin: accounts.Account
) -> None:
    for n in range(60):
        audit.record(
            db, actor=f"reader{n}@example.com", action=audit.EXPORT, details={"rows": n}, now_us=n
        )
    first = client.get("/admin/audit").text
    assert first.index("reader59@") < first.index("reader58@")
    assert "reader9@" not in first
    older = re.search(r'href="(/admin/audit\?[^"]*before=\d+)"', first).group(1)  # type: ignore[union-attr]
    second = client.get(older.replace("&amp;", "&")).text
    assert "reader9@" in second
    assert "Newer" in second
    exports = client.get("/admin/audit", params={"action": "sign_in"}).text
    assert "reader" not in exports
    assert "admin@example.com" in exports


def test_user_supplied_strings_are_escaped_everywhere(
    app: FastAPI, client: TestClient, db: Database, admin: accounts.Account
) -> None:
    evil = make_account(db, "evil@example.com", "admin", display_name=EVIL)
    post_form(client, "/admin/keys", {"name": EVIL, "scope": "ingest"})
    audit.record(db, actor=EVIL, action=audit.EXPORT, details={"filters": {"q": EVIL}}, now_us=1)
    evil_browser = TestClient(app)
    sign_in(evil_browser, "evil@example.com")
    pages = [
        client.get("/admin/accounts").text,
        client.get(f"/admin/accounts/{evil.id}").text,
        client.get("/admin/keys").text,
        client.get("/admin/audit").text,
        evil_browser.get("/account").text,  # the nav shows the display name
    ]
    for page in pages:
        assert "<img src=x" not in page
        assert EVIL_ESCAPED in page


def test_pages_have_no_inline_scripts(client: TestClient, admin: accounts.Account) -> None:
    for path in (
        "/admin/accounts",
        f"/admin/accounts/{admin.id}",
        "/admin/keys",
        "/admin/audit",
        "/account",
        "/admin/accounts/999",
    ):
        page = client.get(path)
        for tag in re.findall(r"<script\b[^>]*>", page.text):
            assert 'src="/static/' in tag, (path, tag)
        assert " on" not in "".join(re.findall(r"<[^>]+ on[a-z]+=[^>]*>", page.text))
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"


def test_the_sign_in_page_is_hardened_too(app: FastAPI) -> None:
    page = TestClient(app).get("/sign-in")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert csrf_token(TestClient(app))


def test_the_audit_page_shows_how_many_attempts_a_pause_refused(
    client: TestClient, db: Database, admin: accounts.Account
) -> None:
    limits = throttle.Limits(per_account=1, per_client=50, window_s=900)
    for n in range(1 + 7):
        throttle.reserve(
            db,
            email="ghost@example.com",
            client="192.0.2.7",
            actor="ghost@example.com",
            now_us=n,
            limits=limits,
        )
    page = client.get("/admin/audit", params={"action": "sign_in_throttled"}).text
    row = page[page.index("ghost@example.com") :]
    assert re.search(r"<dt>refused attempts</dt><dd>7</dd>", row), row[:600]
    assert "<dt>paused for</dt><dd>this e-mail</dd>" in row
