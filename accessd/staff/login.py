"""Signing in: password and TOTP code in one step, throttled, recorded, and generic on failure.

Every attempt becomes a ``LoginAttempt`` row (the login history, with source address), and
those rows are the lockout counter, so a restart does not reset it. Failures are counted
per typed user name whether or not the account exists, so lockout reveals nothing either.

Lockout: after ``LOCKOUT_THRESHOLD`` (10) failures since the last success (within the last
24 hours) the name is locked for 15 minutes from the last failure; each further failure
after a lock ends doubles the lock (30 min, 1 h, ... at most 24 h). So there are never more
than 10 failures per account per 15 minutes. While locked, attempts are refused without
checking the password (and still cost the same time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd.crypto import KeyProvider
from accessd.models import LoginAttempt, LoginOutcome, StaffUser
from accessd.models.staff import ADDRESS_LENGTH
from accessd.staff.accounts import find_staff_user, normalise_username, rehash_password
from accessd.staff.audit import sanitise
from accessd.staff.passwords import burn_time, needs_rehash, verify_password
from accessd.staff.policy import LOCKOUT_BASE, LOCKOUT_MAX, LOCKOUT_THRESHOLD
from accessd.staff.totp import TotpCheck, check_totp

GENERIC_LOGIN_FAILURE = (
    "Sign-in failed. Check your user name, password and the current code from your "
    "authenticator app. After many failed attempts, sign-in is paused: wait 15 minutes, "
    "or ask an admin."
)
"""The one message every failed sign-in gets, whatever the reason (no user enumeration)."""

_FAILURES = (
    LoginOutcome.BAD_PASSWORD,
    LoginOutcome.BAD_TOTP,
    LoginOutcome.TOTP_REPLAY,
    LoginOutcome.UNKNOWN_USER,
    LoginOutcome.DISABLED,
)
_USERNAME_COLUMN = 64


@dataclass(frozen=True, slots=True)
class LoginResult:
    """How an attempt ended; ``user`` is set only on success."""

    outcome: LoginOutcome
    user: StaffUser | None = None

    @property
    def ok(self) -> bool:
        """Whether the person is now signed in."""
        return self.outcome is LoginOutcome.SUCCESS


def _attempt_name(typed: str) -> str:
    return sanitise(normalise_username(typed), _USERNAME_COLUMN)


def locked_until(db: Session, username: str, *, now: dt.datetime) -> dt.datetime | None:
    """Until when sign-in for this (typed) user name is paused, or ``None`` if it is not."""
    name = _attempt_name(username)
    horizon = now - LOCKOUT_MAX
    # By id, not time: attempts within one clock tick still have an order.
    last_success = db.scalar(
        select(func.max(LoginAttempt.id)).where(
            LoginAttempt.username == name,
            LoginAttempt.outcome == LoginOutcome.SUCCESS,
            LoginAttempt.at >= horizon,
        )
    )
    count, last_failure = db.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            LoginAttempt.username == name,
            LoginAttempt.outcome.in_(_FAILURES),
            LoginAttempt.at >= horizon,
            LoginAttempt.id > (last_success or 0),
        )
    ).one()
    if count < LOCKOUT_THRESHOLD or last_failure is None:
        return None
    # Cap the exponent: 2**7 * 15 min already exceeds the 24 h maximum.
    lock = min(LOCKOUT_BASE * 2 ** min(count - LOCKOUT_THRESHOLD, 7), LOCKOUT_MAX)
    until: dt.datetime = last_failure + lock
    return until if until > now else None


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
    if locked_until(db, username, now=now) is not None:
        burn_time(password)
        outcome = LoginOutcome.LOCKED_OUT
    else:
        user = find_staff_user(db, username)
        outcome = _check(user, password, code, provider, now)
    db.add(
        LoginAttempt(
            username=_attempt_name(username),
            source_address=None if source_address is None else source_address[:ADDRESS_LENGTH],
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
