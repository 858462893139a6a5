"""The first admin: created by ``tokenledger serve`` when no enabled admin exists."""

from __future__ import annotations

from dataclasses import dataclass

from tokenledger.auth import accounts, passwords
from tokenledger.store.database import Database


@dataclass(frozen=True, slots=True)
class FirstAdmin:
    """What happened: an account was created (with a generated password to show once,
    or None when it came from the settings), or why none could be."""

    email: str
    created: bool
    generated_password: str | None = None
    problem: str | None = None


def ensure_first_admin(
    db: Database,
    *,
    email: str,
    password: str,
    may_generate: bool,
    actor: str,
    now_us: int,
) -> FirstAdmin | None:
    """Create the admin ``email`` when no enabled admin exists (None when one does).

    Without ``password`` one is generated, but only if ``may_generate`` (the caller can
    show it on a terminal); a generated password must never go to a log file. A bad
    ``email`` or ``password`` raises AccountError or PasswordRejected (configuration
    errors; the messages never contain the password).
    """
    if accounts.enabled_admin_count(db) > 0:
        return None
    email = accounts.normalize_email(email)
    if password:
        passwords.check_rules(password)
    if accounts.find_account(db, email) is not None:
        return FirstAdmin(
            email,
            created=False,
            problem=(
                f"no enabled admin, and the account {email} exists already: run "
                f"`tokenledger accounts set-role {email} admin` (and `accounts enable`)"
            ),
        )
    generated = None
    if not password:
        if not may_generate:
            return FirstAdmin(
                email,
                created=False,
                problem=(
                    "no admin account yet, and no terminal to show a generated password on: "
                    "set TOKENLEDGER_ADMIN_PASSWORD, or run "
                    "`tokenledger accounts create --email E --role admin`"
                ),
            )
        generated = password = passwords.generate_password()
    accounts.create_account(
        db, email=email, password=password, role="admin", actor=actor, now_us=now_us
    )
    return FirstAdmin(email, created=True, generated_password=generated)
