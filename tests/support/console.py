"""Console helpers for tests: accounts, signing in, forms with their CSRF token."""

from __future__ import annotations

import re
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

from tokenledger.auth import accounts
from tokenledger.store.database import Database

PASSWORD = "correct horse battery staple"
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_account(
    db: Database,
    email: str,
    role: str = "viewer",
    *,
    password: str = PASSWORD,
    display_name: str = "",
) -> accounts.Account:
    return accounts.create_account(
        db,
        email=email,
        password=password,
        role=role,
        display_name=display_name,
        actor="tests",
        now_us=0,
    )


def csrf_token(client: TestClient) -> str:
    """The CSRF token the console's pages carry for this client (signed in or not)."""
    page = client.get("/account", follow_redirects=False)
    if page.status_code != 200:
        page = client.get("/sign-in", follow_redirects=False)
    found = _META.search(page.text) or _FIELD.search(page.text)
    assert found, f"no CSRF token ({page.status_code})"
    return found.group(1)


def sign_in(
    client: TestClient, email: str, password: str = PASSWORD, *, next: str = "/"
) -> httpx.Response:
    token = csrf_token(client)
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "next": next, "csrf_token": token},
        follow_redirects=False,
    )


def post_form(client: TestClient, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
    """POST a form the way the console does: with the page's CSRF token."""
    token = csrf_token(client)
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=False)


def session_cookie(client: TestClient) -> str | None:
    return client.cookies.get("tokenledger_session")


def stored(db: Database, account: str | int) -> accounts.Account:
    """The account as stored now, by e-mail or id."""
    found = (
        accounts.find_account(db, account)
        if isinstance(account, str)
        else accounts.get_account(db, account)
    )
    assert found is not None, account
    return found
