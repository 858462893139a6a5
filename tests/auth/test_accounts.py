"""Accounts: e-mails, roles, the last admin, and an audit entry for every change."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.support.console import make_account
from tokenledger.auth import accounts, audit, sessions
from tokenledger.store.database import Database


def _audit(db: Database) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.actor, e.action, e.details) for e in reversed(audit.entries(db, limit=1000))]


def test_create_normalises_the_email_and_audits(db: Database) -> None:
    account = make_account(db, "  Ada.Lovelace@Example.COM ", "admin", display_name=" Ada  L ")
    assert (account.email, account.display_name, account.role, account.enabled) == (
        "ada.lovelace@example.com",
        "Ada L",
        "admin",
        True,
    )
    assert accounts.find_account(db, "ADA.LOVELACE@example.com") == account
    assert _audit(db) == [
        (
            "tests",
            "account_created",
            {"account": "ada.lovelace@example.com", "role": "admin", "display_name": "Ada L"},
        )
    ]


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b@c", "two words@example.com", "x@"])
def test_invalid_emails_are_refused_without_echoing_them(db: Database, email: str) -> None:
    with pytest.raises(accounts.AccountError, match="valid e-mail") as caught:
        make_account(db, email)
    assert email not in str(caught.value) or email == ""


def test_admin_at_localhost_is_a_valid_email(db: Database) -> None:
    assert make_account(db, "admin@localhost", "admin").email == "admin@localhost"


def test_duplicates_unknown_roles_and_short_passwords_are_refused(db: Database) -> None:
    make_account(db, "ada@example.com")
    with pytest.raises(accounts.AccountError, match="exists already"):
        make_account(db, "ADA@example.com")
    with pytest.raises(accounts.AccountError, match="role"):
        make_account(db, "bob@example.com", "owner")
    with pytest.raises(ValueError, match="12 characters"):
        make_account(db, "bob@example.com", password="too short")
    assert [a.email for a in accounts.list_accounts(db)] == ["ada@example.com"]


def test_role_enabled_password_changes_are_audited_with_their_actor(db: Database) -> None:
    admin = make_account(db, "admin@example.com", "admin")
    viewer = make_account(db, "viewer@example.com")
    common: dict[str, Any] = {"actor": admin.email, "now_us": 5, "client": "203.0.113.9"}
    accounts.set_role(db, viewer.id, role="admin", **common)
    accounts.update_profile(db, viewer.id, display_name="Vee", **common)
    accounts.set_enabled(db, viewer.id, enabled=False, **common)
    accounts.set_enabled(db, viewer.id, enabled=True, **common)
    accounts.set_password(db, viewer.id, password="a new long password", **common)
    accounts.end_sessions(db, viewer.id, **common)
    entries = _audit(db)[2:]
    assert [(actor, action) for actor, action, _ in entries] == [
        ("admin@example.com", "account_changed"),
        ("admin@example.com", "account_changed"),
        ("admin@example.com", "account_disabled"),
        ("admin@example.com", "account_enabled"),
        ("admin@example.com", "account_changed"),
        ("admin@example.com", "account_changed"),
    ]
    assert [details for _, _, details in entries] == [
        {"account": "viewer@example.com", "role": {"from": "viewer", "to": "admin"}},
        {"account": "viewer@example.com", "display_name": "Vee"},
        {"account": "viewer@example.com"},
        {"account": "viewer@example.com"},
        {"account": "viewer@example.com", "password": "reset"},
        {"account": "viewer@example.com", "sessions": "ended"},
    ]
    assert {entry.client for entry in audit.entries(db, limit=6)} == {"203.0.113.9"}


def test_the_profile_update_has_no_way_to_change_the_role(db: Database) -> None:
    viewer = make_account(db, "viewer@example.com")
    with pytest.raises(TypeError):
        accounts.update_profile(db, viewer.id, display_name="V", role="admin", actor="x", now_us=1)
    assert accounts.get_account(db, viewer.id).role == "viewer"


def test_the_last_enabled_admin_can_be_neither_demoted_nor_disabled(db: Database) -> None:
    first = make_account(db, "first@example.com", "admin")
    with pytest.raises(accounts.AccountError, match="last enabled admin"):
        accounts.set_role(db, first.id, role="viewer", actor="t", now_us=1)
    with pytest.raises(accounts.AccountError, match="last enabled admin"):
        accounts.set_enabled(db, first.id, enabled=False, actor="t", now_us=1)
    second = make_account(db, "second@example.com", "admin")
    accounts.set_role(db, first.id, role="viewer", actor="t", now_us=1)
    with pytest.raises(accounts.AccountError, match="last enabled admin"):
        accounts.set_enabled(db, second.id, enabled=False, actor="t", now_us=1)
    assert accounts.enabled_admin_count(db) == 1
    assert len(audit.entries(db, action="account_disabled")) == 0  # refusals change nothing


def test_disabling_and_resetting_the_password_end_sessions(db: Database) -> None:
    admin = make_account(db, "admin@example.com", "admin")
    viewer = make_account(db, "viewer@example.com")
    policy = sessions.SessionPolicy()

    def start() -> str:
        with db.write() as conn:
            return sessions.create_in(conn, account_id=viewer.id, now_us=100)

    def alive(token: str) -> bool:
        return sessions.resolve(db, token, now_us=200, policy=policy) is not None

    keep, other = start(), start()
    accounts.set_password(
        db,
        viewer.id,
        password="brand new password",
        actor=viewer.email,
        now_us=150,
        keep_session=keep,
    )
    assert alive(keep)
    assert not alive(other)
    accounts.set_enabled(db, viewer.id, enabled=False, actor=admin.email, now_us=160)
    assert not alive(keep)
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 0
