"""Password hashing (argon2id), the password rules, and generated passwords.

Login failures must cost the same whether the account exists or not, so ``burn_time``
verifies against a dummy hash with the same parameters.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from accessd.errors import PasswordRejectedError
from accessd.staff.policy import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
)

_HASHER = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)
# No look-alikes (0/O, 1/l/I): generated passwords are read off a screen and typed.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_GROUPS, _GROUP_LENGTH = 4, 5  # 20 characters, ~116 bits


def hash_password(password: str) -> str:
    """The argon2id PHC string to store for ``password``."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; a malformed hash never matches."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with other parameters than today's (rehash at login)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    """Spend what verifying a real password costs, for logins that fail before that point."""
    verify_password(_dummy_hash(), password)


def generate_password() -> str:
    """A random password such as ``k7Hqm-Tz3Pa-...``: easy to type, ~116 bits."""
    groups = (
        "".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LENGTH)) for _ in range(_GROUPS)
    )
    return "-".join(groups)


def check_new_password(password: str, *, username: str) -> None:
    """Refuse a password that breaks the rules; the message says which one.

    Length is the rule (no composition rules, as ASVS and NIST advise).

    :raises PasswordRejectedError: too short, too long, or the user name itself.
    """
    if len(password) < PASSWORD_MIN_LENGTH:
        raise PasswordRejectedError(
            f"the password must have at least {PASSWORD_MIN_LENGTH} characters; "
            "a few unrelated words make a good one"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise PasswordRejectedError(
            f"the password must have at most {PASSWORD_MAX_LENGTH} characters"
        )
    if password.strip().lower() == username.lower():
        raise PasswordRejectedError("the password must not be the user name")
