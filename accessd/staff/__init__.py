"""Staff accounts and how they prove who they are: the services the CLI and the panel share.

- ``accounts``: create, list, change/reset password, disable (no default account anywhere);
- ``login``: password + TOTP sign-in, generic failures;
- ``throttle``: sign-in throttling per address and per account, counted in LoginAttempt rows,
  bounded so a stranger cannot lock the owner out; an admin's unlock;
- ``sessions``: server-side sessions with idle and absolute timeouts;
- ``totp``: second-factor secrets sealed at rest, each code accepted once;
- ``tokens``: API tokens with roles, stored as digests;
- ``audit``: ``record_audit`` with sanitised values; reading the audit log and the login
  history back, a page at a time (``page_audit_log``, ``page_login_history``);
- ``policy``: the numbers (timeouts, lockout, argon2 parameters) and ``role_allows``.

Services add to the caller's SQLAlchemy session; the caller commits.
"""

from accessd.staff.accounts import (
    IssuedCredentials,
    change_password,
    check_username,
    confirm_password,
    create_staff_user,
    disable_staff_user,
    find_staff_user,
    get_staff_user,
    get_staff_user_by_public_id,
    list_staff_users,
    must_change_password,
    normalise_username,
    replace_second_factor,
    reset_password,
)
from accessd.staff.audit import record_audit, sanitise
from accessd.staff.login import GENERIC_LOGIN_FAILURE, LoginResult, authenticate, locked_until
from accessd.staff.passwords import generate_password, hash_password, verify_password
from accessd.staff.policy import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    LOCKOUT_BASE,
    LOCKOUT_THRESHOLD,
    Clock,
    role_allows,
)
from accessd.staff.sessions import (
    ResumedSession,
    SessionState,
    end_all_sessions,
    end_session,
    resume_session,
    start_session,
)
from accessd.staff.throttle import NameLocks, name_locks, unlock_name
from accessd.staff.tokens import (
    TOKEN_PREFIX,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
    verify_api_token,
)
from accessd.staff.totp import (
    TotpCheck,
    check_totp,
    confirm_new_totp,
    has_totp,
    new_totp_secret,
    open_pending_secret,
    provisioning_uri,
    seal_pending_secret,
)

__all__ = [
    "ABSOLUTE_TIMEOUT",
    "GENERIC_LOGIN_FAILURE",
    "IDLE_TIMEOUT",
    "LOCKOUT_BASE",
    "LOCKOUT_THRESHOLD",
    "TOKEN_PREFIX",
    "Clock",
    "IssuedCredentials",
    "LoginResult",
    "NameLocks",
    "ResumedSession",
    "SessionState",
    "TotpCheck",
    "authenticate",
    "change_password",
    "check_totp",
    "check_username",
    "confirm_new_totp",
    "confirm_password",
    "create_api_token",
    "create_staff_user",
    "disable_staff_user",
    "end_all_sessions",
    "end_session",
    "find_staff_user",
    "generate_password",
    "get_staff_user",
    "get_staff_user_by_public_id",
    "has_totp",
    "hash_password",
    "list_api_tokens",
    "list_staff_users",
    "locked_until",
    "must_change_password",
    "name_locks",
    "new_totp_secret",
    "normalise_username",
    "open_pending_secret",
    "provisioning_uri",
    "record_audit",
    "replace_second_factor",
    "reset_password",
    "resume_session",
    "revoke_api_token",
    "role_allows",
    "sanitise",
    "seal_pending_secret",
    "start_session",
    "unlock_name",
    "verify_api_token",
    "verify_password",
]
