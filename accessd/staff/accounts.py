"""Staff accounts: create, list, change and reset passwords, disable. Shared by CLI and panel.

There is no default account: the first admin is made with ``accessd user add``. Every account
gets its second factor at creation, so no account can sign in with a password alone.
A password someone else handed over (generated at creation or reset) must be changed at the
first sign-in; ``must_change_password`` tells the panel.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd.crypto import KeyProvider
from accessd.errors import (
    InvalidUsernameError,
    LastAdminError,
    PasswordRejectedError,
    UnknownStaffUserError,
    UsernameTakenError,
    WrongPasswordError,
)
from accessd.labels import N_
from accessd.models import StaffRole, StaffUser, new_public_id
from accessd.staff.passwords import (
    check_new_password,
    generate_password,
    hash_password,
    verify_password,
)
from accessd.staff.sessions import end_all_sessions
from accessd.staff.totp import (
    confirm_new_totp,
    new_totp_secret,
    provisioning_uri,
    store_totp_secret,
)

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """What to hand to a person once, when an account is created or reset; never stored."""

    user: StaffUser
    password: str | None = field(repr=False)  # None: the password was given, not generated
    totp_secret: str | None = field(default=None, repr=False)  # None: second factor unchanged

    @property
    def provisioning_uri(self) -> str | None:
        """The ``otpauth://`` URI for the new second factor, if one was issued."""
        if self.totp_secret is None:
            return None
        return provisioning_uri(self.user.username, self.totp_secret)


def normalise_username(typed: str) -> str:
    """User names are compared case-insensitively and without surrounding blanks."""
    return typed.strip().lower()


def check_username(username: str) -> str:
    """The normalised user name, or a refusal saying what a valid one looks like.

    :raises InvalidUsernameError: not 1-64 of a-z, 0-9, ".", "_", "-" starting with a letter
        or digit.
    """
    name = normalise_username(username)
    if not _USERNAME.fullmatch(name):
        raise InvalidUsernameError(
            "a user name has 1 to 64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (for example j.devries)"
        )
    return name


def find_staff_user(db: Session, username: str) -> StaffUser | None:
    """The account with this user name (any case), or ``None``."""
    return db.scalars(
        select(StaffUser).where(StaffUser.username == normalise_username(username))
    ).one_or_none()


def get_staff_user(db: Session, username: str) -> StaffUser:
    """The account with this user name.

    :raises UnknownStaffUserError: there is none; the message lists how to see who exists.
    """
    user = find_staff_user(db, username)
    if user is None:
        raise UnknownStaffUserError(
            f"no staff user named {normalise_username(username)!r}; `accessd user list` "
            "shows who exists"
        )
    return user


def get_staff_user_by_public_id(db: Session, public_id: uuid.UUID) -> StaffUser | None:
    """The account with this public id (as the panel's URLs carry it), or ``None``."""
    return db.scalars(select(StaffUser).where(StaffUser.public_id == public_id)).one_or_none()


def list_staff_users(db: Session) -> list[StaffUser]:
    """Every account, active ones first, then by name."""
    return list(db.scalars(select(StaffUser).order_by(StaffUser.disabled, StaffUser.username)))


def must_change_password(user: StaffUser) -> bool:
    """Whether ``user`` still signs in with a password someone else handed over."""
    return user.password_changed_at is None


def create_staff_user(
    db: Session,
    username: str,
    role: StaffRole,
    *,
    provider: KeyProvider,
    now: dt.datetime,
    password: str | None = None,
) -> IssuedCredentials:
    """Create an account with a second factor (caller commits).

    Without ``password`` one is generated and must be changed at first sign-in; a given
    password counts as chosen by its owner (``accessd user add --password-stdin``).

    :raises InvalidUsernameError: the name breaks the rules.
    :raises UsernameTakenError: an account of that name exists (disabled ones included).
    :raises PasswordRejectedError: the given password breaks the rules.
    """
    name = check_username(username)
    if find_staff_user(db, name) is not None:
        raise UsernameTakenError(f"a staff user named {name!r} already exists; choose another name")
    generated = password is None
    chosen = generate_password() if password is None else password
    check_new_password(chosen, username=name)
    user = StaffUser(
        public_id=new_public_id(),  # needed before the flush: it binds the sealed secret
        username=name,
        role=StaffRole(role),
        password_hash=hash_password(chosen),
        created_at=now,
        password_changed_at=None if generated else now,
        session_version=1,
        disabled=False,
    )
    secret = new_totp_secret()
    store_totp_secret(user, secret, provider)
    db.add(user)
    db.flush()
    return IssuedCredentials(user, chosen if generated else None, secret)


def change_password(
    db: Session, user: StaffUser, current: str, new: str, *, now: dt.datetime
) -> None:
    """The owner changes their password; every session of theirs ends (caller commits).

    :raises WrongPasswordError: ``current`` is not right.
    :raises PasswordRejectedError: ``new`` breaks the rules or is the current one.
    """
    confirm_password(user, current)
    check_new_password(new, username=user.username)
    if new == current:
        raise PasswordRejectedError("the new password must differ from the current one")
    user.password_hash = hash_password(new)
    user.password_changed_at = now
    end_all_sessions(db, user, now=now)


def reset_password(
    db: Session,
    user: StaffUser,
    *,
    now: dt.datetime,
    provider: KeyProvider | None = None,
    new_second_factor: bool = False,
    password: str | None = None,
) -> IssuedCredentials:
    """An admin resets someone's password (and, if asked, their second factor, for a lost
    phone); every session of theirs ends (caller commits).

    :raises PasswordRejectedError: the given password breaks the rules.
    :raises ValueError: a new second factor was asked for without a key provider.
    """
    generated = password is None
    chosen = generate_password() if password is None else password
    check_new_password(chosen, username=user.username)
    user.password_hash = hash_password(chosen)
    user.password_changed_at = None if generated else now
    secret = None
    if new_second_factor:
        if provider is None:
            raise ValueError("a new second factor needs the key provider")
        secret = new_totp_secret()
        store_totp_secret(user, secret, provider)
    end_all_sessions(db, user, now=now)
    return IssuedCredentials(user, chosen if generated else None, secret)


def confirm_password(user: StaffUser, password: str) -> None:
    """Re-authentication before a sensitive change (password, second factor).

    :raises WrongPasswordError: ``password`` is not ``user``'s.
    """
    if not verify_password(user.password_hash, password):
        raise WrongPasswordError(N_("the current password is not right; type it again"))


def replace_second_factor(
    db: Session,
    user: StaffUser,
    *,
    password: str,
    pending: str,
    code: str,
    provider: KeyProvider,
    now: dt.datetime,
) -> None:
    """The owner moves their second factor to a new authenticator app; every session of
    theirs ends, as after a password change (caller commits).

    :param pending: the token from ``seal_pending_secret`` the setup page carried.
    :raises WrongPasswordError: ``password`` is not right.
    :raises TotpSetupError: ``code`` does not match the new secret, or the page expired.
    """
    confirm_password(user, password)
    confirm_new_totp(user, pending, code, provider, now)
    end_all_sessions(db, user, now=now)


def rehash_password(user: StaffUser, password: str) -> None:
    """Store a fresh hash made with today's parameters (after a successful sign-in)."""
    user.password_hash = hash_password(password)


def _active_admins(db: Session) -> int:
    return db.scalar(
        select(func.count())
        .select_from(StaffUser)
        .where(StaffUser.role == StaffRole.ADMIN, StaffUser.disabled.is_(False))
    ) or 0


def disable_staff_user(db: Session, user: StaffUser, *, now: dt.datetime) -> None:
    """Disable an account and end its sessions; its history stays (caller commits).

    :raises LastAdminError: it is the last active admin.
    """
    if user.disabled:
        return
    if user.role is StaffRole.ADMIN and _active_admins(db) <= 1:
        raise LastAdminError(
            f"{user.username} is the last active admin; create another admin first, or nobody "
            "could manage staff accounts any more"
        )
    user.disabled = True
    end_all_sessions(db, user, now=now)
