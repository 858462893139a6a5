"""``tokenledger accounts`` (console accounts) and ``tokenledger audit``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tokenledger.auth import accounts as console_accounts
from tokenledger.auth import audit as audit_log
from tokenledger.auth import passwords
from tokenledger.cli.common import app, cells, console, database, out
from tokenledger.clock import now_us, system_clock
from tokenledger.store.database import Database

accounts_app = typer.Typer(
    help="Console accounts (the people who read reports): role admin or viewer."
)
app.add_typer(accounts_app, name="accounts")


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt(
        f"Password (at least {passwords.MIN_LENGTH} characters)",
        hide_input=True,
        confirmation_prompt=True,
        err=True,
    )
    return password


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]
EmailArgument = Annotated[str, typer.Argument(help="The account's e-mail address.")]


@contextmanager
def _account_change(email: str) -> Iterator[tuple[Database, console_accounts.Account]]:
    """The database and the account ``email``; exit 2 with the reason on a refusal."""
    try:
        with database() as db:
            account = console_accounts.find_account(db, email)
            if account is None:
                raise LookupError(f"no account with e-mail {email.strip().lower()}")
            yield db, account
    except (LookupError, ValueError) as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc


@accounts_app.command("create")
def accounts_create(
    email: Annotated[str, typer.Option(help="E-mail address: what the person signs in with.")],
    role: Annotated[str, typer.Option(help="admin or viewer.")],
    name: Annotated[str, typer.Option(help="Display name (optional).")] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console account (the password is asked for, or read from stdin)."""
    try:
        console_accounts.check_role(role)
        password = _new_password(password_stdin)
        with database() as db:
            account = console_accounts.create_account(
                db,
                email=email,
                password=password,
                role=role,
                display_name=name,
                actor=audit_log.cli_actor(),
                now_us=now_us(system_clock),
            )
    except ValueError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    console.print(f"Created {account.role} account {account.email}.", markup=False)


@accounts_app.command("list")
def accounts_list() -> None:
    """List console accounts."""
    from tokenledger.localdays import iso, zone

    utc = zone("UTC")
    table = Table("email", "name", "role", "status", "last sign-in (UTC)")
    with database() as db:
        found = console_accounts.list_accounts(db)
    for account in found:
        last = iso(account.last_sign_in_us, utc)
        table.add_row(
            *cells(
                account.email,
                account.display_name,
                account.role,
                "enabled" if account.enabled else "disabled",
                last[:16].replace("T", " ") if last else "never",
            )
        )
    out.print(table)


@accounts_app.command("disable")
def accounts_disable(email: EmailArgument) -> None:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    _set_enabled(email, enabled=False)


@accounts_app.command("enable")
def accounts_enable(email: EmailArgument) -> None:
    """Enable a disabled account again."""
    _set_enabled(email, enabled=True)


def _set_enabled(email: str, *, enabled: bool) -> None:
    with _account_change(email) as (db, account):
        console_accounts.set_enabled(
            db,
            account.id,
            enabled=enabled,
            actor=audit_log.cli_actor(),
            now_us=now_us(system_clock),
        )
    console.print(f"{account.email} is {'enabled' if enabled else 'disabled'}.", markup=False)


@accounts_app.command("set-role")
def accounts_set_role(
    email: EmailArgument, role: Annotated[str, typer.Argument(help="admin or viewer.")]
) -> None:
    """Change an account's role (open sessions get it at their next request)."""
    with _account_change(email) as (db, account):
        changed = console_accounts.set_role(
            db, account.id, role=role, actor=audit_log.cli_actor(), now_us=now_us(system_clock)
        )
    console.print(f"{changed.email} is now {changed.role}.", markup=False)


@accounts_app.command("reset-password")
def accounts_reset_password(email: EmailArgument, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (asked for, or read from stdin); signs the account out."""
    with _account_change(email) as (db, account):
        console_accounts.set_password(
            db,
            account.id,
            password=_new_password(password_stdin),
            actor=audit_log.cli_actor(),
            now_us=now_us(system_clock),
        )
    console.print(f"The password of {account.email} is reset.", markup=False)


@app.command("audit")
def audit_command(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many entries.")] = 50,
    action: Annotated[
        str | None, typer.Option(help=f"Only this action: {', '.join(audit_log.ACTIONS)}.")
    ] = None,
) -> None:
    """Show the audit log, newest first, one entry per line."""
    import json

    from tokenledger.localdays import iso, zone

    utc = zone("UTC")
    with database() as db:
        found = audit_log.entries(db, action=action, limit=limit)
    for entry in found:
        client = f"  from {entry.client}" if entry.client else ""
        details = json.dumps(entry.details, ensure_ascii=False) if entry.details else ""
        out.print(
            f"#{entry.id}  {iso(entry.at_us, utc)}  {entry.action}  {entry.actor}{client}  "
            f"{details}".rstrip(),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command("audit-archive")
def audit_archive(
    before: Annotated[
        str, typer.Option(help="Archive the entries before this date (YYYY-MM-DD, UTC).")
    ],
    output: Annotated[
        Path, typer.Option(help="The file to write them to (JSON Lines); must not exist.")
    ],
) -> None:
    """Move old audit log entries into a file, then delete them from the database.

    The file is written and synced first; the deletion and an entry recording the
    archive (how many entries, and the file's SHA-256) are one transaction."""
    from datetime import UTC, datetime

    try:
        cutoff = datetime.strptime(before, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        console.print("error: --before must be a date, YYYY-MM-DD", markup=False)
        raise typer.Exit(2) from exc
    now = now_us(system_clock)
    before_us = int(cutoff.timestamp()) * 1_000_000
    if before_us > now:
        console.print("error: --before must not be in the future", markup=False)
        raise typer.Exit(2)
    try:
        file = output.open("xb")
    except FileExistsError as exc:
        console.print(f"error: {output} exists already; choose a new file", markup=False)
        raise typer.Exit(2) from exc
    with file, database() as db:
        archived = audit_log.archive(
            db,
            before_us=before_us,
            output=file,
            file_name=output.name,
            actor=audit_log.cli_actor(),
            now_us=now,
        )
    console.print(
        f"Archived {archived.entries} entries before {before} to {output} "
        f"(SHA-256 {archived.sha256}).",
        markup=False,
        highlight=False,
    )
