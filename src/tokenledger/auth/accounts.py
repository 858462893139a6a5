"""Console accounts: the people who read reports (not the AI users in the events).

Roles: ``admin`` (everything, including accounts and keys) and ``viewer`` (reports and
exports). Every change is written together with its audit entry, in one transaction,
and at least one enabled admin always remains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from tokenledger.auth import audit, names, sessions
from tokenledger.auth.passwords import hash_password
from tokenledger.store.database import Database
from tokenledger.store.schema import accounts

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class AccountError(ValueError):
    """A change that cannot be made; the message is safe to show to an admin."""


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    display_name: str
    role: str
    enabled: bool
    created_us: int
    updated_us: int
    last_sign_in_us: int | None
    has_password: bool = True
    sso_subject: str | None = None  # set when the account signs in with single sign-on

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def signs_in_with(self) -> str:
        """How the account signs in, as the account list shows it."""
        if self.sso_subject is None:
            return "password"
        return "single sign-on and password" if self.has_password else "single sign-on"

    @property
    def label(self) -> str:
        return self.display_name or self.email


_COLUMNS = (
    accounts.c.id,
    accounts.c.email,
    accounts.c.display_name,
    accounts.c.role,
    accounts.c.enabled,
    accounts.c.created_us,
    accounts.c.updated_us,
    accounts.c.last_sign_in_us,
    (accounts.c.password_hash != "").label("has_password"),
    accounts.c.sso_subject,
)


def _account(row: Any) -> Account:
    return Account(
        row.id,
        row.email,
        row.display_name,
        row.role,
        bool(row.enabled),
        row.created_us,
        row.updated_us,
        row.last_sign_in_us,
        bool(row.has_password),
        row.sso_subject,
    )


def normalize_email(value: str) -> str:
    """``value`` trimmed and lower-cased; AccountError unless it looks like an address
    (``admin@localhost`` is fine). The message never repeats the value."""
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email) or names.has_hidden_characters(email):
        raise AccountError("enter a valid e-mail address, like name@example.com")
    return email


def clean_display_name(value: str) -> str:
    try:
        return names.clean_name(value, what="display name")
    except ValueError as exc:
        raise AccountError(str(exc)) from exc


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise AccountError(f"the role must be one of {', '.join(ROLES)}")


def create_account(
    db: Database,
    *,
    email: str,
    password: str,
    role: str,
    display_name: str = "",
    actor: str,
    now_us: int,
    client: str | None = None,
) -> Account:
    """Create an enabled account; AccountError (or PasswordRejected) if it cannot be."""
    email = normalize_email(email)
    role = check_role(role)
    display_name = clean_display_name(display_name)
    password_hash = hash_password(password)
    try:
        with db.write() as conn:
            account_id = conn.execute(
                accounts.insert().returning(accounts.c.id),
                {
                    "email": email,
                    "display_name": display_name,
                    "role": role,
                    "enabled": True,
                    "password_hash": password_hash,
                    "created_us": now_us,
                    "updated_us": now_us,
                },
            ).scalar_one()
            details = {"account": email, "role": role, "display_name": display_name}
            audit.record_in(
                conn,
                actor=actor,
                action=audit.ACCOUNT_CREATED,
                details=details,
                now_us=now_us,
                client=client,
            )
    except IntegrityError as exc:
        raise AccountError("an account with this e-mail address exists already") from exc
    return Account(account_id, email, display_name, role, True, now_us, now_us, None)


def list_accounts(db: Database) -> list[Account]:
    with db.read() as conn:
        return [_account(row) for row in conn.execute(select(*_COLUMNS).order_by(accounts.c.id))]


def get_account(db: Database, account_id: int) -> Account | None:
    with db.read() as conn:
        row = conn.execute(select(*_COLUMNS).where(accounts.c.id == account_id)).first()
    return _account(row) if row else None


def find_account(db: Database, email: str) -> Account | None:
    try:
        email = normalize_email(email)
    except AccountError:
        return None
    with db.read() as conn:
        row = conn.execute(select(*_COLUMNS).where(accounts.c.email == email)).first()
    return _account(row) if row else None


def credentials(db: Database, email: str) -> tuple[Account, str] | None:
    """The account with ``email`` and its password hash (for signing in)."""
    try:
        email = normalize_email(email)
    except AccountError:
        return None
    with db.read() as conn:
        row = conn.execute(
            select(*_COLUMNS, accounts.c.password_hash).where(accounts.c.email == email)
        ).first()
    return (_account(row), row.password_hash) if row else None


def enabled_admin_count(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).where(accounts.c.role == "admin", accounts.c.enabled.is_(True))
            ).scalar_one()
        )


def find_for_update(conn: Connection, condition: ColumnElement[bool]) -> Account | None:
    """The account matching ``condition``, locked until the transaction ends."""
    row = conn.execute(select(*_COLUMNS).where(condition).with_for_update()).first()
    return _account(row) if row else None


def _locked(conn: Connection, account_id: int) -> Account:
    account = find_for_update(conn, accounts.c.id == account_id)
    if account is None:
        raise LookupError(f"no account with id {account_id}")
    return account


def _keep_an_admin(conn: Connection, account: Account) -> None:
    """Refuse to leave no enabled admin (nobody could manage accounts any more)."""
    if not (account.is_admin and account.enabled):
        return
    other_admins = conn.execute(
        select(accounts.c.id)
        .where(
            accounts.c.role == "admin",
            accounts.c.enabled.is_(True),
            accounts.c.id != account.id,
        )
        .with_for_update()
    ).first()
    if other_admins is None:
        raise AccountError(f"{account.email} is the last enabled admin; make another admin first")


def _change(
    db: Database,
    account_id: int,
    *,
    values: dict[str, Any],
    action: str,
    details: dict[str, Any],
    actor: str,
    now_us: int,
    client: str | None,
    guard_last_admin: bool = False,
    end_sessions: bool = False,
    keep_session: str | None = None,
) -> Account:
    with db.write() as conn:
        account = _locked(conn, account_id)
        if guard_last_admin:
            _keep_an_admin(conn, account)
        conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(**values, updated_us=now_us)
        )
        if end_sessions:
            sessions.revoke_account_in(conn, account_id, keep=keep_session)
        audit.record_in(
            conn,
            actor=actor,
            action=action,
            details={"account": account.email, **details},
            now_us=now_us,
            client=client,
        )
    changed = get_account(db, account_id)
    assert changed is not None
    return changed


def update_profile(
    db: Database,
    account_id: int,
    *,
    display_name: str,
    actor: str,
    now_us: int,
    client: str | None = None,
) -> Account:
    """Change what can be changed about oneself. There is deliberately no role here:
    roles change only through ``set_role``."""
    display_name = clean_display_name(display_name)
    return _change(
        db,
        account_id,
        values={"display_name": display_name},
        action=audit.ACCOUNT_CHANGED,
        details={"display_name": display_name},
        actor=actor,
        now_us=now_us,
        client=client,
    )


def set_role(
    db: Database,
    account_id: int,
    *,
    role: str,
    actor: str,
    now_us: int,
    client: str | None = None,
) -> Account:
    """Give the account ``role``; it applies to open sessions at their next request."""
    role = check_role(role)
    current = get_account(db, account_id)
    if current is None:
        raise LookupError(f"no account with id {account_id}")
    return _change(
        db,
        account_id,
        values={"role": role},
        action=audit.ACCOUNT_CHANGED,
        details={"role": {"from": current.role, "to": role}},
        actor=actor,
        now_us=now_us,
        client=client,
        guard_last_admin=role != "admin",
    )


def set_enabled(
    db: Database,
    account_id: int,
    *,
    enabled: bool,
    actor: str,
    now_us: int,
    client: str | None = None,
) -> Account:
    """Enable or disable; disabling also ends the account's sessions."""
    return _change(
        db,
        account_id,
        values={"enabled": enabled},
        action=audit.ACCOUNT_ENABLED if enabled else audit.ACCOUNT_DISABLED,
        details={},
        actor=actor,
        now_us=now_us,
        client=client,
        guard_last_admin=not enabled,
        end_sessions=not enabled,
    )


def set_password(
    db: Database,
    account_id: int,
    *,
    password: str,
    actor: str,
    now_us: int,
    client: str | None = None,
    keep_session: str | None = None,
) -> Account:
    """Replace the password and end the account's sessions (except ``keep_session``,
    the cookie value of the session making the change, if any)."""
    password_hash = hash_password(password)
    return _change(
        db,
        account_id,
        values={"password_hash": password_hash},
        action=audit.ACCOUNT_CHANGED,
        details={"password": "changed" if keep_session else "reset"},
        actor=actor,
        now_us=now_us,
        client=client,
        end_sessions=True,
        keep_session=keep_session,
    )


def end_sessions(
    db: Database,
    account_id: int,
    *,
    actor: str,
    now_us: int,
    client: str | None = None,
) -> Account:
    """Sign the account out everywhere."""
    return _change(
        db,
        account_id,
        values={},
        action=audit.ACCOUNT_CHANGED,
        details={"sessions": "ended"},
        actor=actor,
        now_us=now_us,
        client=client,
        end_sessions=True,
    )
