"""Signing in: one message for every bad credential, throttling, fresh sessions."""

from __future__ import annotations

import pytest

from tests.support.console import PASSWORD, make_account, stored
from tokenledger.auth import accounts, audit, sessions, signin
from tokenledger.auth.throttle import Limits
from tokenledger.store.database import Database, DatabaseUnavailable

START = 1_800_000_000 * 1_000_000
MINUTE = 60 * 1_000_000
LIMITS = Limits(per_account=10, per_client=50, window_s=900)
POLICY = sessions.SessionPolicy(idle_timeout_s=1800, lifetime_s=43200)


@pytest.fixture
def backend() -> str:
    """Sign-in logic is the same on both backends; the store is tested on both elsewhere."""
    return "sqlite"


def attempt(
    db: Database,
    email: str,
    password: str = PASSWORD,
    *,
    client: str = "198.51.100.1",
    at: int = START,
    previous: str | None = None,
) -> signin.SignedIn:
    return signin.sign_in(
        db,
        email=email,
        password=password,
        client=client,
        now_us=at,
        limits=LIMITS,
        policy=POLICY,
        previous_token=previous,
    )


def refusal(
    db: Database, email: str, password: str = PASSWORD, **kw: object
) -> signin.SignInRefused:
    with pytest.raises(signin.SignInRefused) as caught:
        attempt(db, email, password, **kw)  # type: ignore[arg-type]
    return caught.value


def test_unknown_email_wrong_password_and_disabled_account_look_the_same(db: Database) -> None:
    make_account(db, "ada@example.com", "admin")
    off = make_account(db, "off@example.com")
    accounts.set_enabled(db, off.id, enabled=False, actor="t", now_us=1)
    answers = [
        refusal(db, "nobody@example.com"),
        refusal(db, "ada@example.com", "not the password"),
        refusal(db, "off@example.com"),
    ]
    assert {(a.status, a.message) for a in answers} == {(401, signin.BAD_CREDENTIALS)}
    failures = audit.entries(db, action=audit.SIGN_IN_FAILED)
    assert [(e.actor, e.details["reason"]) for e in reversed(failures)] == [
        ("nobody@example.com", "unknown_account"),
        ("ada@example.com", "wrong_password"),
        ("off@example.com", "disabled"),
    ]


def test_success_starts_a_new_session_and_ends_the_previous_one(db: Database) -> None:
    make_account(db, "ada@example.com", "admin")
    first = attempt(db, "ADA@example.com")
    second = attempt(db, "ada@example.com", previous=first.token, at=START + MINUTE)
    assert first.token != second.token
    assert sessions.resolve(db, first.token, now_us=START + MINUTE, policy=POLICY) is None
    alive = sessions.resolve(db, second.token, now_us=START + MINUTE, policy=POLICY)
    assert alive is not None
    assert (alive.email, alive.role) == ("ada@example.com", "admin")
    assert stored(db, "ada@example.com").last_sign_in_us == START + MINUTE
    assert [e.action for e in audit.entries(db, action=audit.SIGN_IN)] == ["sign_in"] * 2


def test_ten_failures_for_one_email_pause_it_even_with_the_right_password(db: Database) -> None:
    make_account(db, "ada@example.com")
    for n in range(10):
        assert refusal(db, "ada@example.com", "wrong password!", at=START + n).status == 401
    locked = refusal(db, "ada@example.com", client="203.0.113.50", at=START + 10)
    assert locked.status == 429
    assert "Too many failed sign-in attempts" in locked.message
    assert locked.retry_after_s == 900
    assert "15 minutes" in locked.message
    # Another e-mail from the same address is not affected.
    make_account(db, "bob@example.com")
    attempt(db, "bob@example.com", at=START + 20)
    # Once the oldest failure is 15 minutes old, one more attempt is allowed.
    assert refusal(db, "ada@example.com", at=START + 900 * 10**6 - 1).status == 429
    attempt(db, "ada@example.com", at=START + 900 * 10**6 + 1)


def test_unknown_emails_are_throttled_the_same_way(db: Database) -> None:
    for n in range(10):
        refusal(db, "ghost@example.com", at=START + n)
    assert refusal(db, "ghost@example.com", at=START + 11).status == 429


def test_fifty_failures_from_one_address_pause_that_address(db: Database) -> None:
    make_account(db, "ada@example.com")
    for n in range(50):
        refusal(db, f"user{n}@example.com", client="192.0.2.66", at=START + n)
    blocked = refusal(db, "ada@example.com", client="192.0.2.66", at=START + 60)
    assert blocked.status == 429
    attempt(db, "ada@example.com", client="192.0.2.67", at=START + 61)


def test_refused_attempts_are_audited_but_not_counted(db: Database) -> None:
    for n in range(12):
        refusal(db, "ghost@example.com", at=START + n)
    reasons = [e.details["reason"] for e in audit.entries(db, action=audit.SIGN_IN_FAILED)]
    assert reasons == ["unknown_account"] * 10
    (paused,) = audit.entries(db, action=audit.SIGN_IN_THROTTLED)
    assert (paused.actor, paused.details["refused_attempts"]) == ("ghost@example.com", 2)
    assert refusal(db, "ghost@example.com", at=START + 900 * 10**6 - 1).status == 429


def test_a_pause_writes_one_audit_entry_however_many_attempts_it_refuses(db: Database) -> None:
    # Issue 11 (6): 200 posts from a throttled address added 200 audit rows.
    for n in range(50):
        refusal(db, f"user{n}@example.com", client="192.0.2.66", at=START + n)
    for n in range(200):
        assert (
            refusal(db, f"x{n}@example.com", client="192.0.2.66", at=START + 100 + n).status == 429
        )
    (paused,) = audit.entries(db, action=audit.SIGN_IN_THROTTLED)
    assert paused.details == {
        "paused_for": "this client address",
        "paused_seconds": 900,
        "refused_attempts": 200,
    }
    assert paused.client == "192.0.2.66"
    assert len(audit.entries(db, limit=1000)) == 50 + 1
    # The next pause (after this one ended) gets its own entry.
    later = START + 900 * 10**6 + 1000
    for n in range(50):
        refusal(db, f"again{n}@example.com", client="192.0.2.66", at=later + n)
    refusal(db, "ada@example.com", client="192.0.2.66", at=later + 100)
    counts = [e.details["refused_attempts"] for e in audit.entries(db, action="sign_in_throttled")]
    assert counts == [1, 200]


def test_a_right_current_password_is_no_failure(db: Database) -> None:
    make_account(db, "ada@example.com")
    for n in range(12):  # more than the limit: each right one releases its attempt
        signin.check_password(
            db,
            email="ada@example.com",
            password=PASSWORD,
            client="198.51.100.1",
            now_us=START + n,
            limits=LIMITS,
        )
    attempt(db, "ada@example.com", at=START + 20)


def test_a_mistyped_password_in_the_email_field_is_not_stored(db: Database) -> None:
    refusal(db, "my secret passphrase", "x" * 12)
    (entry,) = audit.entries(db, action=audit.SIGN_IN_FAILED)
    assert entry.actor == "(not an e-mail address)"


def test_sessions_end_after_idle_timeout_and_lifetime(db: Database) -> None:
    make_account(db, "ada@example.com")
    token = attempt(db, "ada@example.com").token

    def alive(at: int) -> bool:
        return sessions.resolve(db, token, now_us=at, policy=POLICY) is not None

    # Used every 20 minutes, it lives until its 12 hours are over.
    at = START
    while at + 20 * MINUTE < START + 43200 * 10**6:
        at += 20 * MINUTE
        assert alive(at)
    assert not alive(START + 43200 * 10**6)
    other = attempt(db, "ada@example.com", at=START).token
    assert sessions.resolve(db, other, now_us=START + 29 * MINUTE, policy=POLICY)
    assert not sessions.resolve(db, other, now_us=START + 29 * MINUTE + 31 * MINUTE, policy=POLICY)


def test_a_session_still_reads_when_its_last_seen_cannot_be_written(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_account(db, "ada@example.com")
    token = attempt(db, "ada@example.com").token

    def unavailable() -> None:
        raise DatabaseUnavailable("attempt to write a readonly database")

    monkeypatch.setattr(db, "write", unavailable)
    found = sessions.resolve(db, token, now_us=START + 5 * MINUTE, policy=POLICY)
    assert found is not None
    assert found.email == "ada@example.com"
