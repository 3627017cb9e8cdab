"""Moving one's second factor to a new app: confirmed by password and a code of the new app."""

from __future__ import annotations

import re

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.db import session_scope
from accessd.staff import get_staff_user
from tests.web.conftest import FakeClock, StaffMember, sign_in

_SECRET = re.compile(r'[Ee]nter this key by hand: <code class="secret">([A-Z2-7 ]+)</code>')
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_PENDING = re.compile(r'name="pending" type="hidden" value="([^"]+)"')


def _setup_page(client: FlaskClient) -> tuple[str, str, str]:
    page = client.get("/account/second-factor").get_data(as_text=True)
    secret, token, pending = _SECRET.search(page), _TOKEN.search(page), _PENDING.search(page)
    assert secret and token and pending
    return secret.group(1).replace(" ", ""), token.group(1), pending.group(1)


def _confirm(client: FlaskClient, token: str, pending: str, password: str, code: str) -> str:
    response = client.post(
        "/account/second-factor",
        data={"csrf_token": token, "pending": pending, "current_password": password,
              "code": code},
    )  # fmt: skip
    return response.get_data(as_text=True) if response.status_code == 200 else "redirect"


def test_the_setup_page_shows_a_server_drawn_qr_code_and_no_script(
    signed_in: FlaskClient,
) -> None:
    page = signed_in.get("/account/second-factor").get_data(as_text=True)
    assert '<svg role="img"' in page
    assert "<script" not in page and "style=" not in page


def test_a_new_app_replaces_the_old_one_once_confirmed(
    app: Flask, signed_in: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    secret, token, pending = _setup_page(signed_in)
    assert _confirm(signed_in, token, pending, admin.password,
                    pyotp.TOTP(secret).at(clock())) == "redirect"  # fmt: skip
    assert signed_in.get("/").status_code == 200  # this browser stays signed in
    old = sign_in(app.test_client(), admin, clock)
    assert old.status_code == 200
    new = StaffMember(admin.username, admin.role, admin.password, secret)
    assert sign_in(app.test_client(), new, clock).status_code == 302


@pytest.mark.parametrize(
    ("password_ok", "code_ok", "field", "message"),
    [
        (False, True, "current_password", "current password is not right"),
        (True, False, "code", "does not match the new QR code"),
    ],
)
def test_a_wrong_password_or_code_keeps_the_old_app_and_the_same_qr_code(
    signed_in: FlaskClient, admin: StaffMember, clock: FakeClock,
    password_ok: bool, code_ok: bool, field: str, message: str,
) -> None:  # fmt: skip
    secret, token, pending = _setup_page(signed_in)
    code = pyotp.TOTP(secret).at(clock()) if code_ok else "000000"
    page = _confirm(signed_in, token, pending, admin.password if password_ok else "nope", code)
    assert f'id="{field}-error"' in page and message in page
    shown = _SECRET.search(page)
    assert shown and shown.group(1).replace(" ", "") == secret


def test_a_setup_page_older_than_thirty_minutes_cannot_be_confirmed(
    signed_in: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    secret, token, pending = _setup_page(signed_in)
    clock.advance(minutes=29)
    signed_in.get("/")  # keep the session alive
    clock.advance(minutes=2)
    page = _confirm(signed_in, token, pending, admin.password, pyotp.TOTP(secret).at(clock()))
    assert "has expired" in page


def test_a_pending_secret_of_someone_else_is_refused(
    app: Flask, signed_in: FlaskClient, make_staff: object, admin: StaffMember,
    clock: FakeClock,
) -> None:  # fmt: skip
    bob: StaffMember = make_staff("bob")  # type: ignore[operator]
    bobs = app.test_client()
    sign_in(bobs, bob, clock)
    secret, _token, bobs_pending = _setup_page(bobs)
    _secret, token, _pending = _setup_page(signed_in)
    page = _confirm(signed_in, token, bobs_pending, admin.password,
                    pyotp.TOTP(secret).at(clock()))  # fmt: skip
    assert "has expired or was altered" in page


def test_the_secret_is_stored_encrypted_with_its_key_id(
    admin: StaffMember, sessions: sessionmaker[Session], keys: FileKeyProvider
) -> None:
    with session_scope(sessions) as db:
        user = get_staff_user(db, admin.username)
        assert user.totp_key_id == keys.active_key_id
        assert user.totp_secret_ciphertext is not None
        assert admin.totp_secret.encode() not in user.totp_secret_ciphertext
