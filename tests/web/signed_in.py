"""A test client acting as a signed-in console account (a real account and session)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.console import make_account
from tokenledger.auth import csrf, sessions
from tokenledger.clock import now_us
from tokenledger.web.context import AppContext


@contextmanager
def signed_in_client(app: FastAPI, *, role: str = "viewer") -> Iterator[TestClient]:
    """The account ``<role>@example.com`` ("Test <role>"), signed in; requests carry the
    session's CSRF token in the X-CSRF-Token header, as htmx sends it, and
    ``Sec-Fetch-Site: same-origin``, as a browser does on the console's own pages."""
    ctx: AppContext = app.state.ctx
    account = make_account(ctx.db, f"{role}@example.com", role, display_name=f"Test {role}")
    with ctx.db.write() as conn:
        token = sessions.create_in(conn, account_id=account.id, now_us=now_us(ctx.clock))
    with TestClient(
        app,
        cookies={"tokenledger_session": token},
        # What a browser sends from the console's own pages.
        headers={"X-CSRF-Token": csrf.token_for(token), "Sec-Fetch-Site": "same-origin"},
    ) as client:
        yield client
