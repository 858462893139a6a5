"""Console passwords: Argon2id hashes, a length rule, nothing in plaintext anywhere.

The parameters are OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane): about
50 ms per hash. Hashes made with other parameters are upgraded at the next sign-in.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
# Argon2 is fine with long inputs, but a megabyte "password" is a denial of service.
MAX_LENGTH = 1024

HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)


class PasswordRejected(ValueError):
    """A new password does not meet the rules (the message never contains it)."""


def check_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password must be at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string) of a password that meets the rules."""
    check_rules(password)
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
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
        _DUMMY.append(HASHER.hash(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def generate_password() -> str:
    """A random password for the first admin: 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)
