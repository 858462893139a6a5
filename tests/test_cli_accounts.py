"""`tokenledger accounts ...` and `tokenledger audit`, in-process on both backends."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.support.console import stored
from tokenledger.auth import accounts, audit, passwords
from tokenledger.cli import app
from tokenledger.store.database import Database

runner = CliRunner()
PASSWORD = "a long enough password"


def run(database_url: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--database-url", database_url, *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def create(database_url: str, email: str, role: str = "viewer", *extra: str) -> int:
    args = ("accounts", "create", "--email", email, "--role", role, "--password-stdin", *extra)
    return run(database_url, *args, input=PASSWORD + "\n")[0]


def test_create_from_stdin_and_list(database_url: str, db: Database) -> None:
    assert create(database_url, "Ada@Example.com", "admin", "--name", "[b]Ada[/]") == 0
    account = accounts.find_account(db, "ada@example.com")
    assert account is not None
    assert (account.role, account.display_name) == ("admin", "[b]Ada[/]")
    code, out, _ = run(database_url, "accounts", "list")
    assert code == 0
    assert "ada@example.com" in out
    assert "[b]Ada[/]" in out  # shown as typed, not as Rich markup
    assert PASSWORD not in out


def test_create_with_a_prompt(database_url: str, db: Database) -> None:
    code, _, err = run(
        database_url,
        "accounts",
        "create",
        "--email",
        "grace@example.com",
        "--role",
        "viewer",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert code == 0, err
    assert PASSWORD not in err
    found = accounts.credentials(db, "grace@example.com")
    assert found is not None
    assert passwords.verify_password(found[1], PASSWORD)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--email", "x@example.com", "--role", "owner"), PASSWORD, "role must be"),
        (("--email", "nope", "--role", "viewer"), PASSWORD, "valid e-mail"),
        (("--email", "x@example.com", "--role", "viewer"), "short", "at least 12"),
    ],
)
def test_create_refusals_exit_2_with_the_reason(
    database_url: str, args: tuple[str, ...], stdin: str, message: str
) -> None:
    code, _, err = run(database_url, "accounts", "create", *args, "--password-stdin", input=stdin)
    assert code == 2
    assert message in err
    assert stdin not in err


def test_disable_enable_set_role_reset_password(database_url: str, db: Database) -> None:
    create(database_url, "admin@example.com", "admin")
    create(database_url, "v@example.com")
    assert run(database_url, "accounts", "disable", "V@example.com")[0] == 0
    assert not stored(db, "v@example.com").enabled
    assert run(database_url, "accounts", "enable", "v@example.com")[0] == 0
    assert run(database_url, "accounts", "set-role", "v@example.com", "admin")[0] == 0
    assert stored(db, "v@example.com").role == "admin"
    new = "another long password"
    code, _, _ = run(
        database_url, "accounts", "reset-password", "v@example.com", "--password-stdin", input=new
    )
    assert code == 0
    assert passwords.verify_password(accounts.credentials(db, "v@example.com")[1], new)  # type: ignore[index]
    actions = [entry.action for entry in reversed(audit.entries(db))]
    assert actions == [
        "account_created",
        "account_created",
        "account_disabled",
        "account_enabled",
        "account_changed",
        "account_changed",
    ]
    assert all(entry.actor.startswith("cli") for entry in audit.entries(db))


def test_unknown_accounts_and_the_last_admin_exit_2(database_url: str) -> None:
    create(database_url, "admin@example.com", "admin")
    code, _, err = run(database_url, "accounts", "disable", "ghost@example.com")
    assert (code, "no account" in err) == (2, True)
    code, _, err = run(database_url, "accounts", "set-role", "admin@example.com", "viewer")
    assert (code, "last enabled admin" in err) == (2, True)
    code, _, err = run(database_url, "accounts", "set-role", "admin@example.com", "owner")
    assert (code, "role must be" in err) == (2, True)


def test_audit_lists_newest_first_and_filters(database_url: str, db: Database) -> None:
    create(database_url, "admin@example.com", "admin")
    assert run(database_url, "keys", "create", "--name", "gw [x]", "--scope", "ingest")[0] == 0
    audit.record(db, actor="reader@example.com", action=audit.EXPORT, details={"rows": 3}, now_us=1)
    code, out, _ = run(database_url, "audit")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[2] for line in lines] == ["export", "key_created", "account_created"]
    assert lines[0].endswith('reader@example.com  {"rows": 3}')
    assert '"name": "gw [x]"' in lines[1]
    code, out, _ = run(database_url, "audit", "--action", "export", "--limit", "5")
    assert "reader@example.com" in out
    assert "key_created" not in out
