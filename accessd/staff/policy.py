"""The numbers behind staff authentication, in one place, and who may do what.

The figures follow OWASP ASVS 5.0 level 2 as it fits a small panel (see
../shared/notes/storage-scheduler-web.md): sign-in throttled per address and per account (at most
80 checked failures per account per hour, where 4.0.3 allowed 100), idle timeout 30 minutes,
absolute 12 hours, argon2id at OWASP's floor so a Raspberry Pi verifies in ~30 ms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from accessd.models import StaffRole

Clock = Callable[[], dt.datetime]
"""Returns the current time, timezone-aware in UTC; injected so tests move time instead of
sleeping (``accessd.models.utcnow`` in production)."""

# Passwords (argon2id; OWASP's minimum: 19 MiB, 2 passes, 1 lane).
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
PASSWORD_MIN_LENGTH = 12
# Long enough for any passphrase, short enough that hashing it is no denial of service.
PASSWORD_MAX_LENGTH = 256
# zxcvbn's estimate a new password must reach: 3 is "safely unguessable" (about 10^8 guesses
# and more), so a variation of a listed password (password1234) or a date is refused.
PASSWORD_MIN_SCORE = 3

# Sign-in throttling (accessd.staff.throttle), counted in LoginAttempt rows so a restart does
# not reset it. Three counters, so that a stranger cannot turn it into a denial of service:
# - one name from one address: LOCKOUT_THRESHOLD failures (since that address's last success
#   for the name) lock that pair for LOCKOUT_BASE, doubling with each further failure up to
#   LOCKOUT_MAX. Only that address is kept out; the owner elsewhere is not.
LOCKOUT_THRESHOLD = 10
LOCKOUT_BASE = dt.timedelta(minutes=15)
LOCKOUT_MAX = dt.timedelta(hours=24)  # longest pair lock, and how far back failures count
# - one name from all addresses: ACCOUNT_THRESHOLD checked failures (the password was actually
#   tried) within ACCOUNT_WINDOW pause the name everywhere until the oldest of them leaves the
#   window: at most ACCOUNT_WINDOW after the latest, never escalating, and attempts refused
#   meanwhile are not counted. One address gives at most LOCKOUT_THRESHOLD (+1) of them per
#   window, so it can never cause this pause alone.
ACCOUNT_THRESHOLD = 20
ACCOUNT_WINDOW = dt.timedelta(minutes=15)
# - one address, all names (password spraying): ADDRESS_THRESHOLD failed or refused attempts
#   within ADDRESS_WINDOW pause that address until it has been quiet long enough.
ADDRESS_THRESHOLD = 30
ADDRESS_WINDOW = dt.timedelta(minutes=15)

# Sessions.
IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)
# last_seen_at is written at most this often: one write per minute, not per page view.
TOUCH_INTERVAL = dt.timedelta(seconds=60)

# TOTP (RFC 6238 as authenticator apps implement it).
TOTP_DIGITS = 6
TOTP_INTERVAL_SECONDS = 30
TOTP_VALID_WINDOW = 1  # steps either side accepted, for phone clocks a little off
TOTP_ISSUER = "accessd"
TOTP_SETUP_LIFETIME = IDLE_TIMEOUT  # an unconfirmed new secret expires with the page


def role_allows(role: StaffRole, allowed: Iterable[StaffRole]) -> bool:
    """Whether a staff member (or API token) with ``role`` may use something open to
    ``allowed``. Admins may use everything (issue 5: "admin: everything")."""
    return role is StaffRole.ADMIN or role in set(allowed)
