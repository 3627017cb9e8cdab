"""The staff services the CLI and the panel share, tested directly."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.db import session_scope
from accessd.errors import ApiTokenError, LastAdminError, PasswordRejectedError, UsernameTakenError
from accessd.models import LoginOutcome, StaffRole, StaffSession
from accessd.staff import (
    SessionState,
    TotpCheck,
    authenticate,
    change_password,
    check_totp,
    create_api_token,
    create_staff_user,
    disable_staff_user,
    generate_password,
    get_staff_user,
    hash_password,
    locked_until,
    must_change_password,
    reset_password,
    resume_session,
    start_session,
    verify_api_token,
)
from tests.web.conftest import PASSWORD, FakeClock, StaffMember


def test_passwords_are_hashed_with_argon2id_at_the_owasp_floor() -> None:
    stored = hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_generated_passwords_are_long_random_and_easy_to_type() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 23 and password.count("-") == 3
        assert not set(password) & set("0O1lI")


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 12"),
        ("x" * 257, "at most 256"),
        ("ada-lovelace", "must not be the user name"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock,
    password: str, problem: str,
) -> None:  # fmt: skip
    with session_scope(sessions) as db, pytest.raises(PasswordRejectedError, match=problem):
        create_staff_user(db, "ada-lovelace", StaffRole.ADMIN, provider=keys, now=clock(),
                          password=password)  # fmt: skip


def test_there_is_no_default_account(sessions: sessionmaker[Session]) -> None:
    from accessd.staff import list_staff_users

    with session_scope(sessions) as db:
        assert list_staff_users(db) == []


def test_user_names_are_unique_whatever_the_case(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock, admin: StaffMember
) -> None:
    with session_scope(sessions) as db, pytest.raises(UsernameTakenError):
        create_staff_user(db, "ADA", StaffRole.AUDITOR, provider=keys, now=clock())


def test_a_generated_password_must_be_changed_a_chosen_one_need_not(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock
) -> None:
    with session_scope(sessions) as db:
        generated = create_staff_user(db, "gen", StaffRole.AUDITOR, provider=keys, now=clock())
        chosen = create_staff_user(db, "own", StaffRole.AUDITOR, provider=keys, now=clock(),
                                   password=PASSWORD)  # fmt: skip
        assert generated.password is not None and must_change_password(generated.user)
        assert chosen.password is None and not must_change_password(chosen.user)


def test_an_outdated_hash_is_upgraded_at_sign_in(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock, admin: StaffMember
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with session_scope(sessions) as db:
        get_staff_user(db, "ada").password_hash = weak.hash(admin.password)
    with session_scope(sessions) as db:
        result = authenticate(db, "ada", admin.password, admin.code(clock()), provider=keys,
                              source_address=None, now=clock())  # fmt: skip
        assert result.ok
    with session_scope(sessions) as db:
        assert "$m=19456,t=2,p=1$" in get_staff_user(db, "ada").password_hash


def test_a_totp_code_is_accepted_once(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock, admin: StaffMember
) -> None:
    code = admin.code(clock())
    with session_scope(sessions) as db:
        user = get_staff_user(db, "ada")
        assert check_totp(user, code, keys, clock()) is TotpCheck.ACCEPTED
        assert check_totp(user, code, keys, clock()) is TotpCheck.REPLAYED
        assert check_totp(user, "12345", keys, clock()) is TotpCheck.WRONG
        assert check_totp(user, "abcdef", keys, clock()) is TotpCheck.WRONG


@pytest.mark.parametrize(("offset", "accepted"), [(-60, False), (-30, True), (0, True),
                                                  (30, True), (60, False)])  # fmt: skip
def test_codes_one_step_either_side_are_accepted_for_phone_clock_drift(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock,
    admin: StaffMember, offset: int, accepted: bool,
) -> None:  # fmt: skip
    code = pyotp.TOTP(admin.totp_secret).at(clock() + dt.timedelta(seconds=offset))
    with session_scope(sessions) as db:
        check = check_totp(get_staff_user(db, "ada"), code, keys, clock())
    assert (check is TotpCheck.ACCEPTED) is accepted


def test_lockout_counts_rows_and_ends_with_a_success(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock, admin: StaffMember
) -> None:
    with session_scope(sessions) as db:
        for _ in range(9):
            clock.advance(seconds=1)
            authenticate(db, "ada", "wrong", "000000", provider=keys, source_address=None,
                         now=clock())  # fmt: skip
        assert locked_until(db, "ada", now=clock()) is None
        clock.advance(seconds=30)
        ok = authenticate(db, "ada", admin.password, admin.code(clock()), provider=keys,
                          source_address=None, now=clock())  # fmt: skip
        assert ok.ok
        for _ in range(9):
            authenticate(db, "ada", "wrong", "000000", provider=keys, source_address=None,
                         now=clock())  # fmt: skip
        assert locked_until(db, "ada", now=clock()) is None  # the success reset the count
        authenticate(db, "ada", "wrong", "000000", provider=keys, source_address=None,
                     now=clock())  # fmt: skip
        assert locked_until(db, "ada", now=clock()) == clock() + dt.timedelta(minutes=15)
        locked = authenticate(db, "ada", admin.password, admin.code(clock()), provider=keys,
                              source_address=None, now=clock())  # fmt: skip
        assert locked.outcome is LoginOutcome.LOCKED_OUT


def test_failures_older_than_a_day_are_forgotten(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock, admin: StaffMember
) -> None:
    with session_scope(sessions) as db:
        for _ in range(10):
            authenticate(db, "ada", "wrong", "000000", provider=keys, source_address=None,
                         now=clock())  # fmt: skip
        clock.advance(hours=24, seconds=1)
        assert locked_until(db, "ada", now=clock()) is None


def test_sessions_are_checked_against_idle_absolute_version_and_disabling(
    sessions: sessionmaker[Session], clock: FakeClock, admin: StaffMember, make_staff: Any
) -> None:
    make_staff("second-admin")
    with session_scope(sessions) as db:
        user = get_staff_user(db, "ada")
        token = start_session(db, user, source_address="::1", now=clock())
        assert resume_session(db, token, now=clock()).state is SessionState.ACTIVE
        assert resume_session(db, "made-up", now=clock()).state is SessionState.ENDED
        change_password(db, user, PASSWORD, "another long passphrase", now=clock())
        assert resume_session(db, token, now=clock()).state is SessionState.ENDED
        token = start_session(db, user, source_address=None, now=clock())
        disable_staff_user(db, user, now=clock())
        assert resume_session(db, token, now=clock()).state is SessionState.ENDED
        assert db.scalars(select(StaffSession.revoked_at)).all() == [clock(), clock()]


def test_resetting_a_password_ends_sessions_and_asks_for_a_new_one(
    sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock, admin: StaffMember
) -> None:
    with session_scope(sessions) as db:
        user = get_staff_user(db, "ada")
        token = start_session(db, user, source_address=None, now=clock())
        issued = reset_password(db, user, now=clock())
        assert issued.password is not None and issued.totp_secret is None
        assert must_change_password(user)
        assert resume_session(db, token, now=clock()).state is SessionState.ENDED


def test_the_last_admin_cannot_be_disabled_but_others_can(
    sessions: sessionmaker[Session], clock: FakeClock, admin: StaffMember, make_staff: Any
) -> None:
    make_staff("otto", StaffRole.OPERATOR)
    with session_scope(sessions) as db:
        disable_staff_user(db, get_staff_user(db, "otto"), now=clock())
        with pytest.raises(LastAdminError, match="create another admin first"):
            disable_staff_user(db, get_staff_user(db, "ada"), now=clock())


@pytest.mark.parametrize("name", ["", " ", "-x", "a" * 101, "bad\nname"])
def test_api_token_names_are_checked(
    sessions: sessionmaker[Session], clock: FakeClock, name: str
) -> None:
    with session_scope(sessions) as db, pytest.raises(ApiTokenError):
        create_api_token(db, name, StaffRole.AUDITOR, created_by="t", now=clock())


def test_api_tokens_verify_until_revoked_or_expired(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with session_scope(sessions) as db:
        row, token = create_api_token(db, "portal", StaffRole.OPERATOR, created_by="t",
                                      now=clock(), expires_at=clock() + dt.timedelta(hours=1))
        assert token.startswith("accessd_")
        assert verify_api_token(db, token, now=clock()) is row
        assert row.last_used_at == clock()
        assert verify_api_token(db, token + "x", now=clock()) is None
        assert verify_api_token(db, token, now=clock() + dt.timedelta(hours=1)) is None
        with pytest.raises(ApiTokenError, match="exists"):
            create_api_token(db, "portal", StaffRole.OPERATOR, created_by="t", now=clock())
