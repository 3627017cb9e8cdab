"""Signing in: password and code together, one generic failure, codes once, lockout."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import LoginAttempt, LoginOutcome, StaffRole
from accessd.staff import GENERIC_LOGIN_FAILURE, disable_staff_user, get_staff_user
from accessd.staff import passwords as password_module
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in


def test_sign_in_with_password_and_code_opens_the_dashboard(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    response = sign_in(client, admin, clock)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Signed in as <strong>ada</strong>" in page
    assert "admin" in page


def test_user_name_is_not_case_sensitive(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    clock.advance(seconds=30)
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client),
            "username": "  ADA ",
            "password": admin.password,
            "code": admin.code(clock()),
        },
    )
    assert response.status_code == 302


def _failure_page(client: FlaskClient, member: StaffMember, clock: FakeClock, case: str) -> str:
    if case == "unknown user":
        ghost = StaffMember("nobody", StaffRole.ADMIN, member.password, member.totp_secret)
        response = sign_in(client, ghost, clock)
    elif case == "wrong password":
        response = sign_in(client, member, clock, password="not the password at all")
    elif case == "wrong code":
        response = sign_in(client, member, clock, code="000000" if member.code(clock()) !=
                           "000000" else "111111")  # fmt: skip
    else:
        raise AssertionError(case)
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("case", ["unknown user", "wrong password", "wrong code"])
def test_every_failure_shows_the_same_generic_message(
    client: FlaskClient, admin: StaffMember, clock: FakeClock, case: str
) -> None:
    page = _failure_page(client, admin, clock, case)
    assert GENERIC_LOGIN_FAILURE in page.replace("&#39;", "'")
    for revealing in ("unknown", "no such", "does not exist", "wrong password", "locked"):
        assert revealing not in page.lower().replace(GENERIC_LOGIN_FAILURE.lower(), "")


def test_unknown_user_and_wrong_password_pages_are_identical(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    def strip_token(page: str) -> str:
        # The CSRF token and the typed user name are the only parts allowed to differ.
        import re

        page = re.sub(r'value="[^"]*"', 'value=""', page)
        return page

    unknown = strip_token(_failure_page(client, admin, clock, "unknown user"))
    wrong = strip_token(_failure_page(client, admin, clock, "wrong password"))
    assert unknown == wrong


def test_unknown_user_costs_a_password_hash_like_a_known_one(
    client: FlaskClient, admin: StaffMember, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = password_module._HASHER

    class CountingHasher:
        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return real.verify(stored, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(password_module, "_HASHER", CountingHasher())
    _failure_page(client, admin, clock, "unknown user")
    _failure_page(client, admin, clock, "wrong password")
    assert len(calls) == 2  # one argon2 verification each: the same cost


def test_a_code_used_once_is_refused_the_second_time(
    app: Flask, admin: StaffMember, clock: FakeClock
) -> None:
    first, second = app.test_client(), app.test_client()
    assert sign_in(first, admin, clock).status_code == 302
    replay = sign_in(second, admin, clock, next_step=False)  # same step, same code
    assert replay.status_code == 200
    assert "Sign-in failed" in replay.get_data(as_text=True)


def test_a_code_of_an_earlier_step_is_refused_after_a_later_one(
    app: Flask, admin: StaffMember, clock: FakeClock
) -> None:
    clock.advance(seconds=30)
    earlier = admin.code(clock())
    clock.advance(seconds=30)  # both steps are inside the accepted window now
    assert sign_in(app.test_client(), admin, clock, next_step=False).status_code == 302
    late = sign_in(app.test_client(), admin, clock, code=earlier, next_step=False)
    assert late.status_code == 200


def test_replayed_code_is_recorded_as_such(
    app: Flask, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    sign_in(app.test_client(), admin, clock)
    sign_in(app.test_client(), admin, clock, next_step=False)
    with session_scope(sessions) as db:
        outcomes = list(db.scalars(select(LoginAttempt.outcome).order_by(LoginAttempt.id)))
    assert outcomes == [LoginOutcome.SUCCESS, LoginOutcome.TOTP_REPLAY]


def _fail(client: FlaskClient, member: StaffMember, clock: FakeClock, times: int) -> None:
    for _ in range(times):
        clock.advance(seconds=5)
        response = sign_in(client, member, clock, password="wrong wrong wrong", next_step=False)
        assert response.status_code == 200


def test_ten_failures_lock_the_account_even_for_the_right_password(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    _fail(client, admin, clock, 9)
    assert sign_in(client, admin, clock).status_code == 302  # nine: still allowed
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    _fail(client, admin, clock, 10)
    locked = sign_in(client, admin, clock)
    assert locked.status_code == 200
    assert "Sign-in failed" in locked.get_data(as_text=True)


def test_lockout_survives_a_restart(
    make_app: Any, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    before = make_app()
    _fail(before.test_client(), admin, clock, 10)
    after = make_app()  # a new process on the same database
    assert sign_in(after.test_client(), admin, clock).status_code == 200
    with session_scope(sessions) as db:
        last = db.scalars(select(LoginAttempt).order_by(LoginAttempt.id.desc())).first()
        assert last is not None and last.outcome is LoginOutcome.LOCKED_OUT


def test_lock_ends_after_fifteen_minutes_and_then_backs_off(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    _fail(client, admin, clock, 10)
    clock.advance(minutes=14)
    assert sign_in(client, admin, clock).status_code == 200  # still locked
    clock.advance(minutes=15)
    _fail(client, admin, clock, 1)  # the eleventh failure: locked for 30 minutes now
    clock.advance(minutes=20)
    assert sign_in(client, admin, clock).status_code == 200
    clock.advance(minutes=15)
    assert sign_in(client, admin, clock).status_code == 302


def test_unknown_names_lock_like_real_ones(
    client: FlaskClient, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    ghost = StaffMember("ghost", StaffRole.ADMIN, "x" * 12, admin.totp_secret)
    _fail(client, ghost, clock, 11)
    with session_scope(sessions) as db:
        last = db.scalars(select(LoginAttempt).order_by(LoginAttempt.id.desc())).first()
        assert last is not None and last.outcome is LoginOutcome.LOCKED_OUT


def test_login_history_records_name_source_address_and_outcome(
    app: Flask, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.17"
    sign_in(client, admin, clock, password="wrong wrong wrong")
    sign_in(client, admin, clock)
    with session_scope(sessions) as db:
        rows = list(db.scalars(select(LoginAttempt).order_by(LoginAttempt.id)))
    assert [(r.username, r.source_address, r.outcome) for r in rows] == [
        ("ada", "192.0.2.17", LoginOutcome.BAD_PASSWORD),
        ("ada", "192.0.2.17", LoginOutcome.SUCCESS),
    ]
    assert all(r.at.tzinfo is not None for r in rows)


def test_a_disabled_account_cannot_sign_in(
    client: FlaskClient,
    admin: StaffMember,
    make_staff: Any,
    clock: FakeClock,
    sessions: sessionmaker[Session],
) -> None:
    make_staff("bob", StaffRole.OPERATOR)
    with session_scope(sessions) as db:
        disable_staff_user(db, get_staff_user(db, "bob"), now=clock())
    bob = StaffMember("bob", StaffRole.OPERATOR, admin.password, "")
    response = sign_in(client, bob, clock, code="123456")
    assert GENERIC_LOGIN_FAILURE.split(".")[0] in response.get_data(as_text=True)


def test_sign_in_starts_a_new_session_cookie(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    client.get("/login")
    before = client.get_cookie("__Host-accessd")
    sign_in(client, admin, clock)
    after = client.get_cookie("__Host-accessd")
    assert before is not None and after is not None
    assert before.value != after.value


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("/staff/", "/staff/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_after_sign_in_only_paths_on_this_site_are_followed(
    client: FlaskClient, admin: StaffMember, clock: FakeClock, next_value: str, expected: str
) -> None:
    clock.advance(seconds=30)
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client),
            "username": admin.username,
            "password": admin.password,
            "code": admin.code(clock()),
            "next": next_value,
        },
    )
    assert response.headers["Location"] == expected


def test_anonymous_visitor_is_sent_to_sign_in_and_back(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    first = client.get("/staff/")
    assert first.status_code == 302
    assert first.headers["Location"] == "/login?next=/staff/"
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/staff/"' in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("username", "", "Enter your user name."),
        ("password", "", "Enter your password."),
        ("code", "", "Enter the 6-digit code"),
    ],
)
def test_missing_fields_are_named_beside_the_field(
    client: FlaskClient, admin: StaffMember, field: str, value: str, message: str
) -> None:
    data = {"csrf_token": csrf_token(client), "username": "ada", "password": "p", "code": "1"}
    data[field] = value
    page = client.post("/login", data=data).get_data(as_text=True)
    assert f'id="{field}-error"' in page
    assert message in page
