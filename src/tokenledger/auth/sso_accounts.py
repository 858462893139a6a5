"""Accounts of people who sign in with the identity provider, made just in time.

An account is tied to the provider's identity (issuer and ``sub``), not to its e-mail
address, which can change or pass to someone else. The first sign-in creates the
account, or links the local account that has the same (verified) address; every
sign-in then gives it the role its groups map to. Each change is audited in the
transaction that makes it, with ``"by": "single sign-on"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, Connection, and_, select, update

from tokenledger.auth import accounts, audit, sessions
from tokenledger.store.schema import accounts as accounts_table

BY = "single sign-on"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in (from a checked ID token)."""

    issuer: str
    subject: str
    email: str
    name: str


class AccountRefused(Exception):
    """``reason``: ``disabled`` (an admin disabled the account) or ``email_taken``
    (another identity of this provider already has an account with the address)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _of(identity: Identity) -> ColumnElement[bool]:
    column = accounts_table.c
    return and_(column.sso_issuer == identity.issuer, column.sso_subject == identity.subject)


def account_for_in(
    conn: Connection, identity: Identity, *, role: str, now_us: int, client: str
) -> accounts.Account:
    """The enabled account of ``identity``, with ``role``: created, linked or updated as
    needed. AccountRefused when it is disabled or its address belongs to another."""
    account = accounts.find_for_update(conn, _of(identity))
    if account is None:
        account = _link_or_create(conn, identity, role=role, now_us=now_us, client=client)
    elif account.email != identity.email:
        account = _follow_email(conn, account, identity.email, now_us=now_us, client=client)
    if not account.enabled:
        raise AccountRefused("disabled")
    if account.role != role:
        _change(
            conn,
            account,
            {"role": role},
            {"role": {"from": account.role, "to": role}},
            now_us=now_us,
            client=client,
        )
        account = replace(account, role=role)
    return account


def _link_or_create(
    conn: Connection, identity: Identity, *, role: str, now_us: int, client: str
) -> accounts.Account:
    column = accounts_table.c
    local = accounts.find_for_update(conn, column.email == identity.email)
    if local is not None:
        same_provider = conn.execute(
            select(column.sso_issuer).where(column.id == local.id)
        ).scalar_one()
        if local.sso_subject is not None and same_provider == identity.issuer:
            raise AccountRefused("email_taken")
        link = {"sso_issuer": identity.issuer, "sso_subject": identity.subject}
        _change(conn, local, link, {"single_sign_on": "linked"}, now_us=now_us, client=client)
        return replace(local, sso_subject=identity.subject)
    name = _display_name(identity.name)
    account_id = conn.execute(
        accounts_table.insert().returning(column.id),
        {
            "email": identity.email,
            "display_name": name,
            "role": role,
            "enabled": True,
            "password_hash": "",  # no password: this account signs in with the provider
            "created_us": now_us,
            "updated_us": now_us,
            "sso_issuer": identity.issuer,
            "sso_subject": identity.subject,
        },
    ).scalar_one()
    audit.record_in(
        conn,
        actor=identity.email,
        action=audit.ACCOUNT_CREATED,
        details={"account": identity.email, "role": role, "display_name": name, "by": BY},
        now_us=now_us,
        client=client,
    )
    return accounts.Account(
        account_id, identity.email, name, role, True, now_us, now_us, None, False, identity.subject
    )


def _follow_email(
    conn: Connection, account: accounts.Account, email: str, *, now_us: int, client: str
) -> accounts.Account:
    """The provider changed the person's address: follow it, unless another account
    has it already (then the old one stays)."""
    taken = conn.execute(select(accounts_table.c.id).where(accounts_table.c.email == email)).first()
    if taken is not None:
        return account
    change = {"email": {"from": account.email, "to": email}}
    _change(conn, account, {"email": email}, change, now_us=now_us, client=client)
    return replace(account, email=email)


def _change(
    conn: Connection,
    account: accounts.Account,
    values: Mapping[str, object],
    details: Mapping[str, object],
    *,
    now_us: int,
    client: str,
) -> None:
    conn.execute(
        update(accounts_table)
        .where(accounts_table.c.id == account.id)
        .values(**values, updated_us=now_us)
    )
    audit.record_in(
        conn,
        actor=account.email,
        action=audit.ACCOUNT_CHANGED,
        details={"account": account.email, **details, "by": BY},
        now_us=now_us,
        client=client,
    )


def _display_name(name: str) -> str:
    try:
        return accounts.clean_display_name(name)
    except accounts.AccountError:
        return ""


def end_sessions_in(conn: Connection, identity: Identity) -> None:
    """Sign out the account of ``identity``, if it has one (it lost its access)."""
    account = accounts.find_for_update(conn, _of(identity))
    if account is not None:
        sessions.revoke_account_in(conn, account.id)
