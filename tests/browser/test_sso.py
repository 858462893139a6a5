"""Single sign-on, the whole flow in Chromium: TokenLedger (a real server process) and a
real OpenID Connect provider (``oidc-provider-mock``, another process), both on
127.0.0.1. The browser clicks "Sign in with Mock ID", signs in at the provider's page
and comes back signed in, or refused, with the role the groups map to."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.oidc_provider import MockProvider
from tests.support.server import ServerProcess
from tokenledger.auth import accounts, audit
from tokenledger.settings import Settings
from tokenledger.store.database import Database, open_database

pytestmark = pytest.mark.browser

PROVIDER = "Mock ID"
BREAK_GLASS = "root@localhost"
BREAK_GLASS_PASSWORD = "break glass in case of fire"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    with MockProvider(tmp_path_factory.mktemp("oidc-provider")) as running:
        yield running


@dataclass
class Site:
    url: str
    database_url: str

    def db(self) -> Database:
        return open_database(Settings(database_url=self.database_url))

    def audit_entries(self, action: str) -> list[audit.AuditEntry]:
        db = self.db()
        try:
            return audit.entries(db, action=action, limit=20)
        finally:
            db.dispose()

    def account(self, email: str) -> accounts.Account | None:
        db = self.db()
        try:
            return accounts.find_account(db, email)
        finally:
            db.dispose()


def _site(directory: Path, provider: MockProvider, **env: str) -> ServerProcess:
    """A TokenLedger using ``provider``, with the local admin ``root@localhost``."""
    database_url = f"sqlite:///{directory / 'sso.db'}"
    subprocess.run(
        [sys.executable, "-m", "tokenledger", "--database-url", database_url, "migrate"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tokenledger",
            "--database-url",
            database_url,
            "accounts",
            "create",
            "--email",
            BREAK_GLASS,
            "--role",
            "admin",
            "--password-stdin",
        ],
        input=BREAK_GLASS_PASSWORD,
        text=True,
        check=True,
        capture_output=True,
    )
    return ServerProcess(
        database_url,
        directory,
        TOKENLEDGER_OIDC_ISSUER=provider.issuer,
        TOKENLEDGER_OIDC_CLIENT_ID="tokenledger-browser-tests",
        TOKENLEDGER_OIDC_CLIENT_SECRET="any secret will do",
        TOKENLEDGER_OIDC_PROVIDER_NAME=PROVIDER,
        TOKENLEDGER_OIDC_ADMIN_GROUPS="tl-admins",
        TOKENLEDGER_OIDC_VIEWER_GROUPS="tl-viewers",
        NO_PROXY="127.0.0.1,localhost",
        **env,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, provider: MockProvider) -> Iterator[Site]:
    with _site(tmp_path_factory.mktemp("sso-site"), provider) as server:
        yield Site(server.url, server.database_url)


@pytest.fixture(scope="module")
def sso_only_site(
    tmp_path_factory: pytest.TempPathFactory, provider: MockProvider
) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("sso-only-site")
    server = _site(
        directory,
        provider,
        TOKENLEDGER_LOCAL_SIGN_IN="false",
        TOKENLEDGER_BREAK_GLASS_ADMIN=BREAK_GLASS,
    )
    with server:
        yield Site(server.url, server.database_url)


def sign_in_at_provider(page: Page, site: Site, sub: str, *, next_path: str = "/") -> None:
    """From our sign-in page, through the provider's page, back to us."""
    page.goto(f"{site.url}/sign-in?next={next_path}")
    page.get_by_role("link", name=f"Sign in with {PROVIDER}").click()
    page.wait_for_url("**/oauth2/authorize?**")
    page.locator("input[name=sub]").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_load_state("networkidle")


def person(provider: MockProvider, sub: str, email: str, *groups: str) -> None:
    provider.set_person(
        sub, email=email, email_verified=True, name=sub.title(), groups=list(groups)
    )


def test_an_admin_by_group_signs_in_and_manages_accounts(
    page: Page, site: Site, provider: MockProvider
) -> None:
    person(provider, "alice", "alice@example.com", "staff", "tl-admins")
    sign_in_at_provider(page, site, "alice", next_path="/admin/accounts")
    expect(page).to_have_url(f"{site.url}/admin/accounts")
    expect(page.locator(".role-badge")).to_have_text("admin")
    row = page.get_by_role("row").filter(has_text="alice@example.com")
    expect(row.locator('td[data-label="Signs in with"]')).to_have_text("single sign-on")
    expect(row.locator('td[data-label="Role"]')).to_have_text("admin")
    local = page.get_by_role("row").filter(has_text=BREAK_GLASS)
    expect(local.locator('td[data-label="Signs in with"]')).to_have_text("password")
    created = site.audit_entries(audit.ACCOUNT_CREATED)[0]
    assert created.details["by"] == "single sign-on"
    assert created.actor == "alice@example.com"


def test_a_viewer_by_group_reads_reports_only(
    page: Page, site: Site, provider: MockProvider
) -> None:
    person(provider, "bob", "bob@example.com", "tl-viewers")
    sign_in_at_provider(page, site, "bob")
    expect(page.get_by_role("heading", name="User Usage")).to_be_visible()
    expect(page.locator(".role-badge")).to_have_text("viewer")
    expect(page.get_by_role("link", name="Accounts")).to_have_count(0)
    page.goto(f"{site.url}/admin/accounts")
    expect(page.get_by_role("heading", name="Admins only")).to_be_visible()


def test_a_person_in_no_mapped_group_is_refused(
    page: Page, site: Site, provider: MockProvider
) -> None:
    person(provider, "carol", "carol@example.com", "staff", "finance")
    sign_in_at_provider(page, site, "carol")
    expect(page.get_by_role("heading", name="Access refused")).to_be_visible()
    expect(page.get_by_text("none of the groups that give access")).to_be_visible()
    page.goto(f"{site.url}/account")
    expect(page).to_have_url(f"{site.url}/sign-in?next=%2Faccount")
    refusal = site.audit_entries(audit.SIGN_IN_FAILED)[0]
    assert (refusal.actor, refusal.details["reason"]) == ("carol@example.com", "no_mapped_group")
    assert refusal.details["groups"] == ["staff", "finance"]
    assert site.account("carol@example.com") is None


def test_a_group_change_applies_at_the_next_sign_in(
    page: Page, site: Site, provider: MockProvider
) -> None:
    person(provider, "dave", "dave@example.com", "tl-viewers")
    sign_in_at_provider(page, site, "dave")
    expect(page.locator(".role-badge")).to_have_text("viewer")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    # Our session is over; the provider's sign-out is offered, and comes back here.
    page.get_by_role("link", name=f"Sign out of {PROVIDER} too").click()
    page.get_by_role("button", name="End session").click()
    expect(page).to_have_url(f"{site.url}/sign-in?done=signed-out")

    person(provider, "dave", "dave@example.com", "tl-admins")
    sign_in_at_provider(page, site, "dave")
    expect(page.locator(".role-badge")).to_have_text("admin")
    expect(page.get_by_role("link", name="Accounts")).to_be_visible()
    change = site.audit_entries(audit.ACCOUNT_CHANGED)[0]
    assert change.details["role"] == {"from": "viewer", "to": "admin"}

    page.get_by_role("button", name="Sign out").click()
    person(provider, "dave", "dave@example.com")  # left every group
    sign_in_at_provider(page, site, "dave")
    expect(page.get_by_role("heading", name="Access refused")).to_be_visible()


def test_with_local_sign_in_off_only_the_provider_and_the_break_glass_admin_remain(
    page: Page, sso_only_site: Site, provider: MockProvider
) -> None:
    site = sso_only_site
    page.goto(f"{site.url}/sign-in")
    expect(page.get_by_role("link", name=f"Sign in with {PROVIDER}")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)

    person(provider, "erin", "erin@example.com", "tl-admins")
    sign_in_at_provider(page, site, "erin")
    expect(page.locator(".role-badge")).to_have_text("admin")
    page.goto(f"{site.url}/account")
    expect(page.get_by_text("no password to change")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    # The break-glass admin, at the address the documentation gives.
    page.goto(f"{site.url}/sign-in?local=1")
    page.get_by_label("E-mail").fill("erin@example.com")
    page.get_by_label("Password").fill("whatever she tries")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(
        f"Password sign-in is turned off. Sign in with {PROVIDER}."
    )
    page.get_by_label("E-mail").fill(BREAK_GLASS)
    page.get_by_label("Password").fill(BREAK_GLASS_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".role-badge")).to_have_text("admin")
    expect(page.locator(".nav-who")).to_contain_text(BREAK_GLASS)
