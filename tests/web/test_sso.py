"""Signing in with the identity provider, through the app's routes, against a provider
that signs tokens with the test's own keys (``FakeIdP``): roles from groups, accounts
made just in time, and every refused case with its page and its audit entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import BACKENDS
from tests.support.clock import FrozenClock
from tests.support.console import (
    make_account,
    post_form,
    session_cookie,
    sign_in,
    stored,
)
from tests.support.idp import (
    ADMINS,
    CLIENT_ID,
    ISSUER,
    VIEWERS,
    FakeIdP,
    person,
    sign_in_with,
    signing_key,
)
from tokenledger.auth import accounts, audit, sso, sso_flows
from tokenledger.settings import Settings
from tokenledger.store.database import Database
from tokenledger.web.app import create_app


@pytest.fixture
def backend() -> str:
    """SQLite here; the tests that write accounts also run on PostgreSQL (marked)."""
    return "sqlite"


@pytest.fixture
def idp(clock: FrozenClock) -> FakeIdP:
    return FakeIdP(clock)


@pytest.fixture
def sso_settings() -> dict[str, Any]:
    """Extra settings a test may change before the app is built."""
    return {}


@pytest.fixture
def settings(database_url: str, idp: FakeIdP, sso_settings: dict[str, Any]) -> Settings:
    return Settings(database_url=database_url, **idp.settings(**sso_settings))


@pytest.fixture
def app(settings: Settings, db: Database, clock: FrozenClock, idp: FakeIdP) -> FastAPI:
    return idp.attach(create_app(settings, db=db, clock=clock))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def last_entry(db: Database, action: str | None = None) -> audit.AuditEntry:
    return audit.entries(db, action=action, limit=1)[0]


def whoami(client: TestClient) -> str:
    """The account the client is signed in as, from the page header."""
    page = client.get("/account")
    assert page.status_code == 200, page.status_code
    return page.text


# Signing in


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_admin_by_group_is_created_just_in_time_and_signed_in(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    answer = sign_in_with(client, idp, person(groups=["staff", ADMINS]), next="/admin/keys")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/keys"
    assert client.get("/admin/keys").status_code == 200
    account = stored(db, "ada@example.com")
    assert (account.role, account.display_name, account.enabled) == ("admin", "Ada Lovelace", True)
    assert account.sso_subject == "person-1"
    assert not account.has_password
    assert account.signs_in_with == "single sign-on"
    created, signed_in = audit.entries(db, limit=2)[::-1]
    assert (created.action, created.actor) == (audit.ACCOUNT_CREATED, "ada@example.com")
    assert created.details == {
        "account": "ada@example.com",
        "role": "admin",
        "display_name": "Ada Lovelace",
        "by": "single sign-on",
    }
    assert (signed_in.action, signed_in.details) == (
        audit.SIGN_IN,
        {"method": "single sign-on", "role": "admin"},
    )
    assert signed_in.client == "testclient"


def test_a_viewer_by_group_reads_reports_but_not_admin_pages(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    answer = sign_in_with(client, idp, person("v-1", email="Vi@Example.com", groups=["tl-readers"]))
    assert answer.status_code == 303
    assert stored(db, "vi@example.com").role == "viewer"
    assert client.get("/reporting/user-usage").status_code == 200
    assert client.get("/admin/accounts").status_code == 403


@pytest.mark.parametrize("backend", BACKENDS)
def test_groups_are_read_again_at_every_sign_in(app: FastAPI, idp: FakeIdP, db: Database) -> None:
    with TestClient(app, follow_redirects=False) as first:
        sign_in_with(first, idp, person(groups=[VIEWERS]))
        assert stored(db, "ada@example.com").role == "viewer"
        assert first.get("/admin/accounts").status_code == 403
        with TestClient(app, follow_redirects=False) as second:
            assert sign_in_with(second, idp, person(groups=[ADMINS])).status_code == 303
            assert second.get("/admin/accounts").status_code == 200
        # The new role applies to the session opened earlier too.
        assert first.get("/admin/accounts").status_code == 200
    assert stored(db, "ada@example.com").role == "admin"
    change = last_entry(db, audit.ACCOUNT_CHANGED)
    assert change.details == {
        "account": "ada@example.com",
        "role": {"from": "viewer", "to": "admin"},
        "by": "single sign-on",
    }
    assert len(audit.entries(db, action=audit.ACCOUNT_CREATED)) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_account_is_the_providers_subject_and_follows_a_changed_address(
    app: FastAPI, idp: FakeIdP, db: Database
) -> None:
    with TestClient(app, follow_redirects=False) as client:
        sign_in_with(client, idp, person())
    first = stored(db, "ada@example.com")
    with TestClient(app, follow_redirects=False) as client:
        sign_in_with(client, idp, person(email="ada.lovelace@example.com"))
    assert stored(db, "ada.lovelace@example.com").id == first.id
    assert last_entry(db, audit.ACCOUNT_CHANGED).details["email"] == {
        "from": "ada@example.com",
        "to": "ada.lovelace@example.com",
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_local_account_with_the_same_address_is_linked(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    local = make_account(db, "ada@example.com", "viewer")
    assert sign_in_with(client, idp, person(groups=[ADMINS])).status_code == 303
    linked = stored(db, "ada@example.com")
    assert (linked.id, linked.role, linked.sso_subject) == (local.id, "admin", "person-1")
    assert linked.signs_in_with == "single sign-on and password"
    assert {"single_sign_on": "linked"}.items() <= audit.entries(
        db, action=audit.ACCOUNT_CHANGED, limit=2
    )[-1].details.items()


def test_the_session_id_changes_and_the_cookie_is_the_usual_one(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    """An attempt started before signing in with a password (in another tab, say)
    replaces that session when it completes."""
    callback = idp.authorize(client.get("/sign-in/sso").headers["location"], person())
    make_account(db, "ada@example.com", "viewer")
    sign_in(client, "ada@example.com")
    password_session = session_cookie(client)
    answer = client.get(callback)
    assert answer.status_code == 303
    assert session_cookie(client) not in (None, password_session)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert answer.headers["cache-control"] == "no-store"
    with TestClient(client.app, cookies={"tokenledger_session": password_session}) as old:
        assert old.get("/account", follow_redirects=False).status_code == 303


def test_the_sign_in_page_offers_the_provider(client: TestClient) -> None:
    page = client.get("/sign-in?next=/admin/keys")
    assert 'href="/sign-in/sso?next=/admin/keys">Sign in with Acme ID</a>' in page.text
    assert 'name="password"' in page.text  # local sign-in stays on by default


def test_starting_twice_gives_two_independent_attempts(client: TestClient) -> None:
    first = client.get("/sign-in/sso").headers["location"]
    second = client.get("/sign-in/sso").headers["location"]
    assert first.startswith(f"{ISSUER}/auth?")
    assert f"client_id={CLIENT_ID}" in first
    assert "redirect_uri=http%3A%2F%2Ftestserver%2Fsign-in%2Fsso%2Fcallback" in first
    assert first != second


def test_a_signed_in_browser_is_not_sent_to_the_provider(client: TestClient, idp: FakeIdP) -> None:
    sign_in_with(client, idp, person())
    answer = client.get("/sign-in/sso?next=/account")
    assert (answer.status_code, answer.headers["location"]) == (303, "/account")


def test_next_never_leaves_the_site(client: TestClient, idp: FakeIdP) -> None:
    answer = sign_in_with(client, idp, person(), next="https://evil.example/")
    assert answer.headers["location"] == "/"


# Refused: each case has its page, its audit entry, and no session.


def refused(answer: Any, status: int, text: str) -> None:
    assert answer.status_code == status, answer.text
    assert text in answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert "tokenledger_session=" not in answer.headers.get("set-cookie", "")


def refusal_entry(db: Database) -> audit.AuditEntry:
    entry = last_entry(db)
    assert entry.action == audit.SIGN_IN_FAILED
    assert entry.details["method"] == "single sign-on"
    return entry


def test_no_mapped_group_is_refused_and_ends_open_sessions(
    app: FastAPI, idp: FakeIdP, db: Database
) -> None:
    with TestClient(app, follow_redirects=False) as earlier:
        sign_in_with(earlier, idp, person(groups=[VIEWERS]))
        assert earlier.get("/account").status_code == 200
        with TestClient(app, follow_redirects=False) as client:
            answer = sign_in_with(client, idp, person(groups=["staff", "finance"]))
        refused(answer, 403, "none of the groups that give access")
        entry = refusal_entry(db)
        assert (entry.actor, entry.details["reason"]) == ("ada@example.com", "no_mapped_group")
        assert entry.details["groups"] == ["staff", "finance"]
        # The person lost access at the provider: the session opened earlier ends too.
        assert earlier.get("/account").status_code == 303
    assert stored(db, "ada@example.com").role == "viewer"


def test_a_first_sign_in_in_no_mapped_group_creates_no_account(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    refused(sign_in_with(client, idp, person(groups=[])), 403, "none of the groups")
    assert refusal_entry(db).details["groups"] == []
    assert client.get("/account").status_code == 303
    assert accounts.find_account(db, "ada@example.com") is None


def test_a_wrong_state_is_refused(client: TestClient, idp: FakeIdP, db: Database) -> None:
    start = client.get("/sign-in/sso").headers["location"]
    callback = idp.authorize(start, person())
    forged = callback.rsplit("state=", 1)[0] + "state=made-up"
    refused(client.get(forged), 400, "does not belong to a sign-in started in this browser")
    assert refusal_entry(db).details["reason"] == "wrong_state"
    assert refusal_entry(db).actor == "(single sign-on)"


def test_a_missing_state_is_refused(client: TestClient, db: Database) -> None:
    refused(client.get("/sign-in/sso/callback?code=abc"), 400, "does not belong")
    assert refusal_entry(db).details["reason"] == "wrong_state"


def test_an_answer_meant_for_another_browser_is_refused(
    app: FastAPI, client: TestClient, idp: FakeIdP, db: Database
) -> None:
    """Login CSRF: an attacker's own callback URL, opened in the victim's browser."""
    with TestClient(app, follow_redirects=False) as attacker:
        start = attacker.get("/sign-in/sso").headers["location"]
    callback = idp.authorize(start, person("attacker", email="mallory@example.com"))
    refused(client.get(callback), 400, "does not belong")
    assert refusal_entry(db).details["reason"] == "wrong_state"
    assert client.get("/account").status_code == 303


def test_an_answer_older_than_ten_minutes_is_refused(
    client: TestClient, idp: FakeIdP, db: Database, clock: FrozenClock
) -> None:
    callback = idp.authorize(client.get("/sign-in/sso").headers["location"], person())
    clock.advance(seconds=sso_flows.FLOW_TTL_S)
    refused(client.get(callback), 400, "in the last 10 minutes")
    assert refusal_entry(db).details["reason"] == "wrong_state"


def test_a_replayed_answer_is_refused(client: TestClient, idp: FakeIdP, db: Database) -> None:
    callback = idp.authorize(client.get("/sign-in/sso").headers["location"], person())
    assert client.get(callback).status_code == 303
    post_form(client, "/sign-out")
    refused(client.get(callback), 400, "was used already")
    assert refusal_entry(db).details["reason"] == "replayed_code"


def test_a_code_used_again_in_a_new_attempt_is_refused_by_the_provider(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    used = idp.authorize(client.get("/sign-in/sso").headers["location"], person())
    assert client.get(used).status_code == 303
    post_form(client, "/sign-out")
    code = used.split("code=")[1].split("&")[0]
    fresh = client.get("/sign-in/sso").headers["location"]
    state = fresh.split("state=")[1].split("&")[0]
    replay = f"/sign-in/sso/callback?code={code}&state={state}"
    refused(client.get(replay), 400, "did not accept the sign-in code")
    entry = refusal_entry(db)
    assert entry.details["reason"] == "code_rejected"
    assert "invalid_grant" in entry.details["detail"]


def test_an_expired_id_token_is_refused(
    client: TestClient, idp: FakeIdP, db: Database, clock: FrozenClock
) -> None:
    expired = int(clock().timestamp()) - 120
    answer = sign_in_with(client, idp, person(exp=expired, iat=expired - 300))
    refused(answer, 401, "had expired when it arrived")
    assert refusal_entry(db).details["reason"] == "expired_id_token"


def test_an_id_token_for_another_audience_is_refused(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    refused(sign_in_with(client, idp, person(aud="payroll-app")), 401, "for another application")
    entry = refusal_entry(db)
    assert entry.details["reason"] == "wrong_audience"
    assert "payroll-app" in entry.details["detail"]


def test_an_id_token_signed_with_an_unknown_key_is_refused(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    stranger = signing_key("stolen-elsewhere")
    answer = sign_in_with(client, idp, person(), signed_with=stranger)
    refused(answer, 401, "signed with a key that Acme ID does not publish")
    assert refusal_entry(db).details["reason"] == "unknown_signing_key"


def test_an_unverified_address_is_refused(client: TestClient, idp: FakeIdP, db: Database) -> None:
    refused(sign_in_with(client, idp, person(email_verified=False)), 403, "is not verified")
    entry = refusal_entry(db)
    assert (entry.actor, entry.details["reason"]) == ("ada@example.com", "email_not_verified")


@pytest.mark.parametrize("sso_settings", [{"oidc_allowed_domains": "acme.com, Example.org"}])
def test_an_address_outside_the_allowed_domains_is_refused(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    refused(sign_in_with(client, idp, person()), 403, "Addresses at example.com cannot sign in")
    assert refusal_entry(db).details == {
        "method": "single sign-on",
        "reason": "email_domain",
        "detail": "example.com",
    }
    answer = sign_in_with(client, idp, person("p-2", email="bob@example.org"))
    assert answer.status_code == 303


def test_a_missing_address_is_refused(client: TestClient, idp: FakeIdP, db: Database) -> None:
    claims = {k: v for k, v in person().items() if k != "email"}
    refused(sign_in_with(client, idp, claims), 403, "did not send your e-mail address")
    assert refusal_entry(db).details["reason"] == "email_missing"


def test_a_denial_at_the_provider_is_refused_and_audited(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    start = client.get("/sign-in/sso").headers["location"]
    state = start.split("state=")[1].split("&")[0]
    answer = client.get(f"/sign-in/sso/callback?error=access_denied&state={state}")
    refused(answer, 401, "Acme ID did not sign you in (access_denied)")
    assert refusal_entry(db).details["reason"] == "provider_error"


def test_a_disabled_account_is_refused(client: TestClient, idp: FakeIdP, db: Database) -> None:
    sign_in_with(client, idp, person())
    account = stored(db, "ada@example.com")
    make_account(db, "other-admin@example.com", "admin")
    accounts.set_enabled(db, account.id, enabled=False, actor="tests", now_us=0)
    refused(sign_in_with(client, idp, person()), 403, "account is disabled")
    assert refusal_entry(db).details["reason"] == "disabled"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_address_held_by_another_identity_is_refused(
    app: FastAPI, idp: FakeIdP, db: Database
) -> None:
    with TestClient(app, follow_redirects=False) as client:
        sign_in_with(client, idp, person("old-employee"))
    with TestClient(app, follow_redirects=False) as client:
        answer = sign_in_with(client, idp, person("new-employee"))
    refused(answer, 409, "Another TokenLedger account already has your e-mail address")
    assert refusal_entry(db).details["reason"] == "email_taken"
    assert stored(db, "ada@example.com").sso_subject == "old-employee"


def test_an_unreachable_provider_gives_a_clear_page(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    start = client.get("/sign-in/sso").headers["location"]
    callback = idp.authorize(start, person())
    idp.down = True
    refused(client.get(callback), 502, "cannot be reached right now")
    assert refusal_entry(db).details["reason"] == "provider_unavailable"


@pytest.mark.parametrize("sso_settings", [{"sign_in_client_limit": 3}])
def test_refusals_are_throttled_per_client_address(
    client: TestClient, db: Database, clock: FrozenClock
) -> None:
    for _ in range(3):
        refused(client.get("/sign-in/sso/callback?state=x&code=y"), 400, "does not belong")
    answer = client.get("/sign-in/sso/callback?state=x&code=y")
    refused(answer, 429, "Too many failed sign-in attempts")
    assert int(answer.headers["retry-after"]) > 0
    # Refused attempts are counted under one audit entry per pause, not one each.
    assert last_entry(db).action == audit.SIGN_IN_THROTTLED
    entries = len(audit.entries(db, limit=1000))
    refused(client.get("/sign-in/sso/callback?state=x&code=y"), 429, "Too many failed")
    assert len(audit.entries(db, limit=1000)) == entries
    clock.advance(minutes=16)
    refused(client.get("/sign-in/sso/callback?state=x&code=y"), 400, "does not belong")


# Signing out


def test_sign_out_offers_the_providers_sign_out(client: TestClient, idp: FakeIdP) -> None:
    sign_in_with(client, idp, person())
    answer = post_form(client, "/sign-out")
    assert answer.headers["location"] == "/sign-in?done=signed-out&from=sso"
    page = client.get(answer.headers["location"])
    assert "You are signed out." in page.text
    assert 'href="/sign-out/sso">Sign out of Acme ID too</a>' in page.text
    provider = client.get("/sign-out/sso")
    assert provider.status_code == 303
    assert provider.headers["location"] == (
        f"{ISSUER}/logout?client_id={CLIENT_ID}&post_logout_redirect_uri="
        "http%3A%2F%2Ftestserver%2Fsign-in%3Fdone%3Dsigned-out"
    )


def test_without_an_end_session_address_sign_out_just_signs_out(
    client: TestClient, idp: FakeIdP
) -> None:
    idp.end_session = False
    sign_in_with(client, idp, person())
    assert post_form(client, "/sign-out").headers["location"] == "/sign-in?done=signed-out"
    assert client.get("/sign-out/sso").headers["location"] == "/sign-in?done=signed-out"


def test_a_password_account_signing_out_is_not_sent_to_the_provider(
    client: TestClient, db: Database
) -> None:
    make_account(db, "local@example.com", "viewer")
    sign_in(client, "local@example.com")
    assert post_form(client, "/sign-out").headers["location"] == "/sign-in?done=signed-out"


# Local sign-in turned off


@pytest.mark.parametrize(
    "sso_settings", [{"local_sign_in": False, "break_glass_admin": "root@localhost"}]
)
def test_with_local_sign_in_off_only_the_break_glass_admin_uses_a_password(
    client: TestClient, db: Database
) -> None:
    make_account(db, "root@localhost", "admin")
    make_account(db, "viewer@example.com", "viewer")
    page = client.get("/sign-in")
    assert "Sign in with Acme ID" in page.text
    assert 'name="password"' not in page.text
    assert 'name="password"' in client.get("/sign-in?local=1").text
    answer = sign_in(client, "viewer@example.com")
    assert answer.status_code == 403
    assert "Password sign-in is turned off. Sign in with Acme ID." in answer.text
    entry = last_entry(db)
    assert (entry.action, entry.actor, entry.details) == (
        audit.SIGN_IN_FAILED,
        "viewer@example.com",
        {"reason": "password_sign_in_off"},
    )
    assert sign_in(client, "root@localhost", "wrong password!!").status_code == 401
    assert sign_in(client, "ROOT@localhost").status_code == 303
    assert "root@localhost" in whoami(client)


@pytest.mark.parametrize(
    "sso_settings", [{"local_sign_in": False, "break_glass_admin": "root@localhost"}]
)
def test_the_break_glass_address_must_be_an_admin(client: TestClient, db: Database) -> None:
    make_account(db, "root@localhost", "viewer")
    assert sign_in(client, "root@localhost").status_code == 403


def test_an_account_without_a_password_cannot_use_the_password_form(
    client: TestClient, idp: FakeIdP, db: Database
) -> None:
    sign_in_with(client, idp, person())
    page = whoami(client)
    assert "no password to change" in page
    assert 'name="current_password"' not in page
    post_form(client, "/sign-out")
    assert sign_in(client, "ada@example.com", "").status_code == 401
    assert last_entry(db).details == {"reason": "wrong_password"}


def test_the_account_list_shows_how_each_account_signs_in(
    app: FastAPI, client: TestClient, idp: FakeIdP, db: Database
) -> None:
    make_account(db, "local@example.com", "viewer")
    sign_in_with(client, idp, person())
    page = client.get("/admin/accounts").text
    assert '<td data-label="Signs in with" class="nowrap">password</td>' in page
    assert '<td data-label="Signs in with" class="nowrap">single sign-on</td>' in page


@pytest.mark.parametrize(
    ("sso_settings", "problem"),
    [
        ({}, None),
        ({"local_sign_in": False}, "TOKENLEDGER_BREAK_GLASS_ADMIN is not set"),
        ({"local_sign_in": False, "break_glass_admin": "nobody@localhost"}, "not an enabled"),
        ({"local_sign_in": False, "break_glass_admin": "viewer@example.com"}, "not an enabled"),
        ({"local_sign_in": False, "break_glass_admin": "root@localhost"}, None),
    ],
)
def test_serve_warns_when_there_is_no_way_back_in(
    settings: Settings, db: Database, problem: str | None
) -> None:
    make_account(db, "root@localhost", "admin")
    make_account(db, "viewer@example.com", "viewer")
    found = sso.break_glass_problem(db, settings)
    assert found is None if problem is None else problem in (found or "")


def test_without_a_provider_the_routes_say_so(database_url: str, clock: FrozenClock) -> None:
    settings = Settings(database_url=database_url)
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        assert "Sign in with" not in client.get("/sign-in").text
        start = client.get("/sign-in/sso")
        assert (start.status_code, "Single sign-on is off" in start.text) == (404, True)
        assert client.get("/sign-in/sso/callback?state=x&code=y").status_code == 404
        assert client.get("/sign-out/sso").headers["location"] == "/sign-in?done=signed-out"
