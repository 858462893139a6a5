"""Argon2id with at least OWASP's parameters, a length rule, upgrades at sign-in."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError
from argon2.low_level import ARGON2_VERSION
from sqlalchemy import update

from tests.support.console import PASSWORD, make_account
from tokenledger.auth import passwords
from tokenledger.auth.accounts import credentials
from tokenledger.auth.sessions import SessionPolicy
from tokenledger.auth.signin import SignInRefused, sign_in
from tokenledger.auth.throttle import Limits
from tokenledger.store.database import Database
from tokenledger.store.schema import accounts


def _parameters(password_hash: str) -> dict[str, int]:
    # $argon2id$v=19$m=19456,t=2,p=1$salt$hash
    _, variant, version, params, *_ = password_hash.split("$")
    assert variant == "argon2id"
    assert version == f"v={ARGON2_VERSION}"
    return {key: int(value) for key, value in (part.split("=") for part in params.split(","))}


def test_hashes_are_argon2id_with_at_least_owasp_parameters() -> None:
    password_hash = passwords.hash_password(PASSWORD)
    params = _parameters(password_hash)
    assert params["m"] >= 19456
    assert params["t"] >= 2
    assert params["p"] >= 1
    assert PASSWORD not in password_hash
    assert passwords.verify_password(password_hash, PASSWORD)
    assert not passwords.verify_password(password_hash, PASSWORD + "!")


@pytest.mark.parametrize("bad", ["", "short", "eleven char"])
def test_passwords_need_12_characters(bad: str) -> None:
    with pytest.raises(passwords.PasswordRejected, match="at least 12"):
        passwords.hash_password(bad)


def test_twelve_characters_are_enough_and_huge_inputs_are_refused() -> None:
    assert passwords.verify_password(passwords.hash_password("x" * 12), "x" * 12)
    with pytest.raises(passwords.PasswordRejected):
        passwords.hash_password("x" * 5000)
    assert not passwords.verify_password(passwords.hash_password("y" * 12), "y" * 5000)


def test_a_malformed_hash_never_verifies() -> None:
    assert not passwords.verify_password("not a hash", PASSWORD)
    with pytest.raises(InvalidHashError):
        PasswordHasher().verify("not a hash", PASSWORD)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_weaker_hashes_are_upgraded_at_sign_in(db: Database) -> None:
    account = make_account(db, "old@example.com")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    with db.write() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account.id)
            .values(password_hash=weak.hash(PASSWORD))
        )
    assert passwords.needs_rehash(credentials(db, "old@example.com")[1])
    sign_in(
        db,
        email="old@example.com",
        password=PASSWORD,
        client="198.51.100.7",
        now_us=10**15,
        limits=Limits(),
        policy=SessionPolicy(),
    )
    upgraded = credentials(db, "old@example.com")[1]
    assert not passwords.needs_rehash(upgraded)
    assert _parameters(upgraded)["m"] == 19456


def test_hashes_run_on_a_bounded_pool_and_a_caller_waits_only_so_long() -> None:
    pool = passwords.HashPool(2, wait_s=0.5)
    release = threading.Event()
    started = threading.Semaphore(0)
    names: list[str] = []

    def hold() -> str:
        names.append(threading.current_thread().name)
        started.release()
        release.wait(30)
        return "held"

    try:
        with ThreadPoolExecutor(2) as callers:
            held = [callers.submit(pool.run, hold) for _ in range(2)]
            for _ in range(2):
                assert started.acquire(timeout=30)
            # Both threads of the pool are busy: a third caller waits, then is refused.
            with pytest.raises(passwords.PasswordsBusy):
                pool.run(hold)
            release.set()
            assert [future.result(timeout=30) for future in held] == ["held", "held"]
        assert len(names) == 2  # the refused one never ran
        assert all(name.startswith("argon2") for name in names)
    finally:
        release.set()
        pool.shutdown()


def test_sign_in_answers_503_when_password_checks_are_busy(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_account(db, "ada@example.com")

    def busy(*_args: object) -> bool:
        raise passwords.PasswordsBusy("busy")

    monkeypatch.setattr(passwords, "verify_password", busy)
    with pytest.raises(SignInRefused) as refused:
        sign_in(
            db,
            email="ada@example.com",
            password=PASSWORD,
            client="192.0.2.1",
            now_us=1,
            limits=Limits(),
            policy=SessionPolicy(1800, 43200),
        )
    assert (refused.value.status, refused.value.retry_after_s) == (503, 1)
