"""Password hashing (argon2id), the password rules, and generated passwords.

Login failures must cost the same whether the account exists or not, so ``burn_time``
verifies against a dummy hash with the same parameters.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
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
    PASSWORD_MIN_SCORE,
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


@dataclass(frozen=True, slots=True)
class PasswordVerdict:
    """What the rules say of a new password: whether it may be used, and if not, why.

    ``score`` is zxcvbn's estimate (0: guessed at once .. 4: very hard to guess); ``problem``
    is the sentence shown beside the field when the password is refused (None when it is
    accepted), ``suggestion`` a hint towards a better one.
    """

    acceptable: bool
    score: int
    problem: str | None = None
    suggestion: str | None = None
    rule: str | None = None  # too_long, too_short, user_name, listed, guessable


def judge_password(password: str, *, username: str) -> PasswordVerdict:
    """The rules for a new password (ASVS 5.0 V6.2), checked offline, in this order.

    Length first (at least ``PASSWORD_MIN_LENGTH``, at most ``PASSWORD_MAX_LENGTH``; no
    composition rules, as ASVS and NIST advise), not the user name, not on the list of common
    and breached passwords that ships with the product (zxcvbn's 30,000 most used passwords,
    compared without case), and not easy to guess (zxcvbn's estimate at least
    ``PASSWORD_MIN_SCORE``: variations of listed passwords, words, names, dates, keyboard rows
    and repeats). The panel's hint while typing and the refusal beside the field both come
    from here.
    """
    from zxcvbn import zxcvbn  # the lists take ~10 MB: loaded only where a password is set

    if len(password) > PASSWORD_MAX_LENGTH:
        return PasswordVerdict(
            False, 0, f"the password must have at most {PASSWORD_MAX_LENGTH} characters",
            rule="too_long",
        )
    result = zxcvbn(password, user_inputs=[username])
    score = int(result["score"])
    warning = str(result["feedback"]["warning"] or "").rstrip(".")
    suggestions = [str(s) for s in result["feedback"]["suggestions"]]
    suggestion = suggestions[0] if suggestions else None
    if len(password) < PASSWORD_MIN_LENGTH:
        return PasswordVerdict(
            False, min(score, 1),
            f"the password must have at least {PASSWORD_MIN_LENGTH} characters; "
            "a few unrelated words make a good one",
            "a few unrelated words make a good one", "too_short",
        )  # fmt: skip
    if password.strip().lower() == username.strip().lower():
        return PasswordVerdict(False, 0, "the password must not be the user name",
                               rule="user_name")
    if password.lower() in _common_passwords():
        return PasswordVerdict(
            False, 0,
            "this password is on the list of common and breached passwords; choose another",
            "a few unrelated words make a good one", "listed",
        )  # fmt: skip
    if score < PASSWORD_MIN_SCORE:
        because = f" ({warning[:1].lower() + warning[1:]})" if warning else ""
        return PasswordVerdict(
            False, score,
            f"this password is easy to guess{because}; choose another",
            suggestion or "a few unrelated words make a good one", "guessable",
        )  # fmt: skip
    return PasswordVerdict(True, score)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(entry.lower() for entry in FREQUENCY_LISTS["passwords"])


def check_new_password(password: str, *, username: str) -> None:
    """Refuse a password that breaks the rules of ``judge_password``; the message says which.

    :raises PasswordRejectedError: too short, too long, the user name, on the list of common
        and breached passwords, or easy to guess.
    """
    verdict = judge_password(password, username=username)
    if not verdict.acceptable:
        raise PasswordRejectedError(verdict.problem or "this password cannot be used",
                                    rule=verdict.rule)
