"""Admins manage staff accounts through the panel, with the services the CLI uses."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import StaffRole
from accessd.staff import get_staff_user
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in


def _create(client: FlaskClient, username: str, role: str = "operator") -> Any:
    return client.post(
        "/staff/new",
        data={"csrf_token": csrf_token(client, "/staff/new"), "username": username, "role": role},
    )


def _issued(page: str) -> tuple[str, str]:
    password = re.search(r"<h2>Password</h2>\s*<p><code class=\"secret\">([^<]+)</code>", page)
    secret = re.search(r"enter this key by hand: <code class=\"secret\">([A-Z2-7]+)</code>", page)
    assert password and secret, page
    return password.group(1), secret.group(1)


def test_admin_adds_a_staff_member_and_sees_credentials_once(
    signed_in: FlaskClient,
) -> None:
    response = _create(signed_in, "Jan.Devries", "auditor")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Account created: jan.devries" in page
    assert '<svg role="img"' in page and "<title>QR code for jan.devries</title>" in page
    assert response.headers["Cache-Control"] == "no-store"
    password, secret = _issued(page)
    listing = signed_in.get("/staff/").get_data(as_text=True)
    assert "jan.devries" in listing and "has not chosen a password yet" in listing
    assert password not in listing and secret not in listing


def test_a_new_member_signs_in_with_the_handed_over_credentials_then_must_choose_a_password(
    app: Flask, signed_in: FlaskClient, clock: FakeClock
) -> None:
    password, secret = _issued(_create(signed_in, "kim").get_data(as_text=True))
    kim = StaffMember("kim", StaffRole.OPERATOR, password, secret)
    client = app.test_client()
    assert sign_in(client, kim, clock).status_code == 302
    forced = client.get("/")
    assert forced.status_code == 302 and forced.headers["Location"] == "/account/password"
    client.post(
        "/account/password",
        data={"csrf_token": csrf_token(client, "/account/password"),
              "current_password": password, "new_password": "kim chose this one",
              "confirm": "kim chose this one"},
    )  # fmt: skip
    assert client.get("/").status_code == 200
    assert pyotp.TOTP(secret).now()  # the secret is a valid base32 TOTP secret


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("", "Enter a user name."),
        ("has space", "a user name has 1 to 64 characters"),
        ("-dash", "a user name has 1 to 64 characters"),
        ("x" * 65, "a user name has 1 to 64 characters"),
        ("ada", "already exists"),
    ],
)
def test_invalid_user_names_are_explained_beside_the_field(
    signed_in: FlaskClient, username: str, message: str
) -> None:
    page = _create(signed_in, username).get_data(as_text=True)
    assert 'id="username-error"' in page
    assert message.lower() in page.lower().replace("&#39;", "'")


def test_an_unknown_role_is_refused(signed_in: FlaskClient) -> None:
    page = _create(signed_in, "eve", "superuser").get_data(as_text=True)
    assert 'id="role-error"' in page


def test_the_last_admin_cannot_be_disabled(
    signed_in: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as db:
        public_id = get_staff_user(db, "ada").public_id
    response = signed_in.post(
        f"/staff/{public_id}/disable", data={"csrf_token": csrf_token(signed_in, "/staff/")}
    )
    assert response.status_code == 302
    page = signed_in.get("/staff/").get_data(as_text=True)
    assert "last active admin" in page


def test_reset_password_with_a_new_second_factor_locks_out_the_old_phone(
    app: Flask, signed_in: FlaskClient, make_staff: Any, clock: FakeClock,
    sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    bob: StaffMember = make_staff("bob", StaffRole.OPERATOR)
    with session_scope(sessions) as db:
        public_id = get_staff_user(db, "bob").public_id
    response = signed_in.post(
        f"/staff/{public_id}/reset-password",
        data={"csrf_token": csrf_token(signed_in, "/staff/"), "new_second_factor": "y"},
    )
    password, secret = _issued(response.get_data(as_text=True))
    assert secret != bob.totp_secret
    old_phone = StaffMember("bob", StaffRole.OPERATOR, password, bob.totp_secret)
    assert sign_in(app.test_client(), old_phone, clock).status_code == 200
    new_phone = StaffMember("bob", StaffRole.OPERATOR, password, secret)
    assert sign_in(app.test_client(), new_phone, clock).status_code == 302


def test_an_unknown_account_is_404(signed_in: FlaskClient) -> None:
    response = signed_in.post(
        "/staff/00000000-0000-4000-8000-000000000000/disable",
        data={"csrf_token": csrf_token(signed_in, "/staff/")},
    )
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_the_menu_shows_staff_only_to_admins(
    app: Flask, signed_in: FlaskClient, make_staff: Any, clock: FakeClock
) -> None:
    assert 'href="/staff/"' in signed_in.get("/").get_data(as_text=True)
    auditor: StaffMember = make_staff("audrey", StaffRole.AUDITOR)
    client = app.test_client()
    sign_in(client, auditor, clock)
    page = client.get("/").get_data(as_text=True)
    assert 'href="/staff/"' not in page
    assert 'href="/" aria-current="page"' in page


def test_states_and_last_sign_in_are_shown_in_site_time_with_the_zone(
    signed_in: FlaskClient, clock: FakeClock, make_staff: Any
) -> None:
    make_staff("olga", StaffRole.OPERATOR)
    page = signed_in.get("/staff/").get_data(as_text=True)
    ada = re.search(r'<th scope="row">ada.*?</tr>', page, re.S)
    olga = re.search(r'<th scope="row">olga.*?</tr>', page, re.S)
    assert ada and olga
    local = clock().astimezone(ZoneInfo("Europe/Amsterdam"))
    assert f"{local:%Y-%m-%d %H:%M} {local:%Z}" in ada.group(0), "ada signed in: site time"
    assert "UTC" not in page
    assert "never" in olga.group(0) and ">active<" in olga.group(0)
