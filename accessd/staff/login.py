"""Signing in: password and TOTP code in one step, throttled, recorded, and generic on failure.

Every attempt becomes a ``LoginAttempt`` row (the login history, with source address), and
those rows are the throttling counters (``accessd.staff.throttle``: per address, per name from
an address, per name everywhere, with the bound a stranger cannot push the owner past), so a
restart does not reset them. Failures are counted per typed user name whether or not the
account exists, so throttling reveals nothing either. A paused attempt is refused without
checking the password (and still costs the same time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from accessd.crypto import KeyProvider
from accessd.labels import N_
from accessd.models import LoginAttempt, LoginOutcome, StaffUser
from accessd.staff.accounts import find_staff_user, rehash_password
from accessd.staff.passwords import burn_time, needs_rehash, verify_password
from accessd.staff.throttle import attempt_address, attempt_name, locked_until, sign_in_pause
from accessd.staff.totp import TotpCheck, check_totp

__all__ = ["GENERIC_LOGIN_FAILURE", "LoginResult", "authenticate", "locked_until"]

GENERIC_LOGIN_FAILURE = N_(
    "Sign-in failed. Check your user name, password and the current code from your "
    "authenticator app. After many failed attempts, sign-in is paused: wait 15 minutes, "
    "or ask an admin to unlock your account."
)
"""The one message every failed sign-in gets, whatever the reason (no user enumeration)."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    """How an attempt ended; ``user`` is set only on success."""

    outcome: LoginOutcome
    user: StaffUser | None = None

    @property
    def ok(self) -> bool:
        """Whether the person is now signed in."""
        return self.outcome is LoginOutcome.SUCCESS


def authenticate(
    db: Session,
    username: str,
    password: str,
    code: str,
    *,
    provider: KeyProvider,
    source_address: str | None,
    now: dt.datetime,
) -> LoginResult:
    """Check a sign-in and record it (caller commits, also on failure: the row is the counter).

    Every path verifies one argon2 hash, so a failure takes as long for an unknown name as
    for a wrong password. The TOTP code is checked only after the password is right, so a
    wrong password never uses up a code.
    """
    user: StaffUser | None = None
    pause = sign_in_pause(db, username, source_address, now=now)
    if pause is not None:
        burn_time(password)
        outcome = pause.outcome
    else:
        user = find_staff_user(db, username)
        outcome = _check(user, password, code, provider, now)
    db.add(
        LoginAttempt(
            username=attempt_name(username),
            source_address=attempt_address(source_address),
            outcome=outcome,
            at=now,
        )
    )
    if outcome is not LoginOutcome.SUCCESS or user is None:
        return LoginResult(outcome)
    if needs_rehash(user.password_hash):
        rehash_password(user, password)
    user.last_login_at = now
    return LoginResult(outcome, user)


def _check(
    user: StaffUser | None, password: str, code: str, provider: KeyProvider, now: dt.datetime
) -> LoginOutcome:
    if user is None:
        burn_time(password)
        return LoginOutcome.UNKNOWN_USER
    if not verify_password(user.password_hash, password):
        return LoginOutcome.BAD_PASSWORD
    if user.disabled:
        return LoginOutcome.DISABLED
    check = check_totp(user, code, provider, now)
    if check is TotpCheck.REPLAYED:
        return LoginOutcome.TOTP_REPLAY
    if check is TotpCheck.WRONG:
        return LoginOutcome.BAD_TOTP
    return LoginOutcome.SUCCESS
