"""The numbers behind staff authentication, in one place, and who may do what.

The figures follow OWASP ASVS 5.0 level 2 as it fits a small panel (see
../shared/notes/storage-scheduler-web.md): lockout after 10 failures, idle timeout 30
minutes, absolute 12 hours, argon2id at OWASP's floor so a Raspberry Pi verifies in ~30 ms.
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

# Login throttling, counted in LoginAttempt rows so a restart does not reset it.
LOCKOUT_THRESHOLD = 10  # failures since the last success before the account locks
LOCKOUT_BASE = dt.timedelta(minutes=15)  # first lock; doubles with each further failure
LOCKOUT_MAX = dt.timedelta(hours=24)  # longest lock, and how far back failures count

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
