"""The first admin, created by `serve` when no enabled admin exists."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.console import make_account, stored
from tokenledger.auth import accounts, passwords
from tokenledger.auth.bootstrap import FirstAdmin, ensure_first_admin
from tokenledger.store.database import Database


@pytest.fixture
def backend() -> str:
    return "sqlite"


def first(
    db: Database, *, password: str = "", may_generate: bool = True, email: str = "admin@localhost"
) -> FirstAdmin | None:
    return ensure_first_admin(
        db, email=email, password=password, may_generate=may_generate, actor="serve", now_us=1
    )


def test_with_a_configured_password(db: Database) -> None:
    result = first(db, password="from the environment")
    assert result is not None
    assert (result.created, result.generated_password, result.problem) == (True, None, None)
    found = accounts.credentials(db, "admin@localhost")
    assert found is not None
    assert found[0].role == "admin"
    assert passwords.verify_password(found[1], "from the environment")
    assert first(db) is None  # an admin exists: nothing to do


def test_a_generated_password_only_when_it_can_be_shown(db: Database) -> None:
    refused = first(db, may_generate=False)
    assert refused is not None
    assert not refused.created
    assert "TOKENLEDGER_ADMIN_PASSWORD" in (refused.problem or "")
    assert accounts.list_accounts(db) == []
    created = first(db, may_generate=True)
    assert created is not None
    assert created.generated_password is not None
    assert len(created.generated_password) >= 20
    found = accounts.credentials(db, "admin@localhost")
    assert passwords.verify_password(found[1], created.generated_password)  # type: ignore[index]


def test_an_existing_viewer_with_that_email_is_not_promoted(db: Database) -> None:
    make_account(db, "admin@localhost", "viewer")
    result = first(db, password="from the environment")
    assert result is not None
    assert not result.created
    assert "set-role" in (result.problem or "")
    assert stored(db, "admin@localhost").role == "viewer"


def test_a_disabled_admin_does_not_count(db: Database) -> None:
    old = make_account(db, "old@example.com", "admin")
    with db.write() as conn:  # the CLI and the pages refuse this; a database edit does not
        conn.execute(text("UPDATE accounts SET enabled = false"))
    result = first(db, password="from the environment")
    assert result is not None
    assert result.created
    assert accounts.enabled_admin_count(db) == 1
    assert not stored(db, old.id).enabled


def test_a_bad_configured_password_or_email_is_an_error(db: Database) -> None:
    with pytest.raises(passwords.PasswordRejected):
        first(db, password="short")
    with pytest.raises(accounts.AccountError):
        first(db, password="long enough password", email="not an email")
