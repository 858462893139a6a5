"""Console passwords: Argon2id hashes, a length rule, nothing in plaintext anywhere.

The parameters are OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane): about
50 ms per hash. Hashes made with other parameters are upgraded at the next sign-in.

Every hash and check of the process runs on a few threads of its own (``HashPool``,
``TOKENLEDGER_MAX_PASSWORD_HASHES``): a burst of sign-ins waits its turn instead of
taking 19 MiB per request in flight, and only those threads ever hold that memory
(the C allocator keeps what a thread freed for that thread's next use).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

MIN_LENGTH = 12
# Argon2 is fine with long inputs, but a megabyte "password" is a denial of service.
MAX_LENGTH = 1024

HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)


class PasswordRejected(ValueError):
    """A new password does not meet the rules (the message never contains it)."""


class PasswordsBusy(Exception):
    """Too many password checks are waiting already (HTTP 503: try again shortly)."""


class HashPool:
    """Argon2 work on ``size`` threads of its own; a caller waits at most ``wait_s``
    for a free thread (PasswordsBusy after), then for its work to finish."""

    def __init__(self, size: int, *, wait_s: float = 10.0) -> None:
        self.size = size
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(size)
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="argon2")

    def run(self, work: Callable[..., T], *args: object) -> T:
        if not self._free.acquire(timeout=self.wait_s):
            raise PasswordsBusy("too many password checks at once; try again shortly")
        try:
            return self._executor.submit(work, *args).result()
        finally:
            self._free.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


_pool: list[HashPool] = []
_pool_lock = threading.Lock()


def use_hash_threads(size: int) -> None:
    """Run this process's password hashing on ``size`` threads (the app factory sets
    it from ``TOKENLEDGER_MAX_PASSWORD_HASHES``; the default is 2)."""
    with _pool_lock:
        if _pool and _pool[0].size == size:
            return
        if _pool:
            _pool.pop().shutdown()
        _pool.append(HashPool(size))


def _hashing() -> HashPool:
    if not _pool:
        use_hash_threads(2)
    return _pool[0]


def check_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password must be at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string) of a password that meets the rules."""
    check_rules(password)
    return rehash(password)


def rehash(password: str) -> str:
    """A fresh hash of a password already accepted (to upgrade its parameters)."""
    return _hashing().run(HASHER.hash, password)


def verify_password(password_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    return _hashing().run(_verify, password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


def burn_time(password: str) -> None:
    """Take as long as a verification, so an unknown e-mail answers as slowly as a
    known one with a wrong password."""
    verify_password(_dummy_hash(), password)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(rehash(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def generate_password() -> str:
    """A random password for the first admin: 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)
