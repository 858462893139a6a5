"""Signing in and out: throttling, password check, a fresh session, the audit entry.

Every refusal for bad credentials has the same message and takes about as long,
whether the e-mail is unknown, the password wrong or the account disabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import update

from tokenledger.auth import accounts, audit, passwords, sessions, throttle
from tokenledger.store.database import Database
from tokenledger.store.schema import accounts as accounts_table

BAD_CREDENTIALS = "The e-mail address or password is not correct."
_THROTTLED = "Too many failed sign-in attempts. Sign-in is paused; try again in {wait}."
_BUSY = "Too many sign-ins at this moment. Try again in a few seconds."


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: accounts.Account
    token: str  # the new session's cookie value


class SignInRefused(Exception):
    def __init__(self, message: str, *, status: int, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s


def wait_text(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def sign_in(
    db: Database,
    *,
    email: str,
    password: str,
    client: str,
    now_us: int,
    limits: throttle.Limits,
    policy: sessions.SessionPolicy,
    previous_token: str | None = None,
) -> SignedIn:
    """Check the credentials and start a new session (ending ``previous_token``'s, so the
    session id always changes at sign-in). SignInRefused with status 401, 429 (paused:
    no password is checked) or 503 (too many checks waiting already)."""
    # Written as a failure now, before the hash; a right password clears it below.
    _reserve(db, email=email, client=client, now_us=now_us, limits=limits)
    with _busy_is_a_refusal():
        found = accounts.credentials(db, email)
        if found is None:
            passwords.burn_time(password)
            reason = "unknown_account"
        elif not passwords.verify_password(found[1], password):
            reason = "wrong_password"
        elif not found[0].enabled:
            reason = "disabled"
        else:  # the session's transaction also clears the e-mail's failures, this one too
            return _start_session(
                db,
                found[0],
                password_hash=found[1],
                password=password,
                client=client,
                now_us=now_us,
                policy=policy,
                previous_token=previous_token,
            )
    _failed(db, email=email, reason=reason, client=client, now_us=now_us)
    raise SignInRefused(BAD_CREDENTIALS, status=401)


def _reserve(db: Database, *, email: str, client: str, now_us: int, limits: throttle.Limits) -> int:
    """Reserve the attempt (see ``throttle``); SignInRefused 429 while paused."""
    attempt = throttle.reserve(
        db, email=email, client=client, actor=_actor(email), now_us=now_us, limits=limits
    )
    if isinstance(attempt, throttle.Pause):
        wait = attempt.retry_after_s
        raise SignInRefused(_THROTTLED.format(wait=wait_text(wait)), status=429, retry_after_s=wait)
    return attempt


@contextmanager
def _busy_is_a_refusal() -> Iterator[None]:
    """Too many password checks waiting: the attempt stays counted (as every attempt
    that got past the throttle), and the person is asked to try again in a moment."""
    try:
        yield
    except passwords.PasswordsBusy as exc:
        raise SignInRefused(_BUSY, status=503, retry_after_s=1) from exc


def _actor(email: str) -> str:
    """Only something shaped like an address is written (never a mistyped password)."""
    try:
        return accounts.normalize_email(email)
    except accounts.AccountError:
        return "(not an e-mail address)"


def _failed(db: Database, *, email: str, reason: str, client: str, now_us: int) -> None:
    audit.record(
        db,
        actor=_actor(email),
        action=audit.SIGN_IN_FAILED,
        details={"reason": reason},
        now_us=now_us,
        client=client,
    )


def _start_session(
    db: Database,
    account: accounts.Account,
    *,
    password_hash: str,
    password: str,
    client: str,
    now_us: int,
    policy: sessions.SessionPolicy,
    previous_token: str | None,
) -> SignedIn:
    values: dict[str, object] = {"last_sign_in_us": now_us}
    if passwords.needs_rehash(password_hash):
        values["password_hash"] = passwords.rehash(password)
    with db.write() as conn:
        if previous_token:
            sessions.revoke_in(conn, previous_token)
        sessions.prune_in(conn, now_us=now_us, policy=policy)
        token = sessions.create_in(conn, account_id=account.id, now_us=now_us)
        conn.execute(
            update(accounts_table).where(accounts_table.c.id == account.id).values(**values)
        )
        throttle.clear_in(conn, email=account.email)
        audit.record_in(
            conn, actor=account.email, action=audit.SIGN_IN, now_us=now_us, client=client
        )
    return SignedIn(account, token)


def sign_out(db: Database, *, token: str, email: str, client: str, now_us: int) -> None:
    with db.write() as conn:
        sessions.revoke_in(conn, token)
        audit.record_in(conn, actor=email, action=audit.SIGN_OUT, now_us=now_us, client=client)


def check_password(
    db: Database,
    *,
    email: str,
    password: str,
    client: str,
    now_us: int,
    limits: throttle.Limits,
) -> None:
    """Confirm a signed-in person's current password (before changing it), throttled
    like signing in. SignInRefused with status 401, 429 or 503."""
    attempt = _reserve(db, email=email, client=client, now_us=now_us, limits=limits)
    with _busy_is_a_refusal():
        found = accounts.credentials(db, email)
        if found is None or not passwords.verify_password(found[1], password):
            raise SignInRefused(BAD_CREDENTIALS, status=401)
    throttle.release(db, attempt)
