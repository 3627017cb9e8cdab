"""Server-side sessions: logout, password change and disabling end them; timeouts; cookies."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import StaffRole, StaffSession
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in

COOKIE = "__Host-accessd"


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _sign_out(client: FlaskClient) -> Any:
    return client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


def test_signing_out_ends_the_session_on_the_server(
    app: Flask, signed_in: FlaskClient
) -> None:
    stolen = _cookie(signed_in)
    response = _sign_out(signed_in)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    replay = app.test_client()
    replay.set_cookie(COOKIE, stolen)
    refused = replay.get("/")
    assert refused.status_code == 302
    assert refused.headers["Location"].startswith("/login")


def test_signing_out_by_get_is_not_possible(signed_in: FlaskClient) -> None:
    response = signed_in.get("/logout")
    assert response.status_code == 405
    assert response.headers["Allow"]
    assert signed_in.get("/").status_code == 200


def test_a_session_ends_after_thirty_idle_minutes(
    signed_in: FlaskClient, clock: FakeClock
) -> None:
    clock.advance(minutes=29)
    assert signed_in.get("/").status_code == 200  # activity keeps it alive
    clock.advance(minutes=29)
    assert signed_in.get("/").status_code == 200
    clock.advance(minutes=30)
    expired = signed_in.get("/")
    assert expired.status_code == 302
    page = signed_in.get(expired.headers["Location"]).get_data(as_text=True)
    assert "after 30 minutes without activity" in page


def test_a_session_ends_after_twelve_hours_however_active(
    signed_in: FlaskClient, clock: FakeClock
) -> None:
    for _ in range(12 * 4 - 1):
        clock.advance(minutes=15)
        assert signed_in.get("/").status_code == 200
    clock.advance(minutes=15)
    expired = signed_in.get("/")
    assert expired.status_code == 302
    page = signed_in.get(expired.headers["Location"]).get_data(as_text=True)
    assert "at most 12 hours" in page


def test_an_expired_session_stays_dead_when_the_clock_goes_back(
    signed_in: FlaskClient, clock: FakeClock
) -> None:
    cookie = _cookie(signed_in)
    clock.advance(minutes=31)
    assert signed_in.get("/").status_code == 302
    clock.advance(minutes=-31)
    signed_in.set_cookie(COOKIE, cookie)
    assert signed_in.get("/").status_code == 302


def test_changing_the_password_ends_other_sessions_but_keeps_this_one(
    app: Flask, admin: StaffMember, clock: FakeClock
) -> None:
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, admin, clock)
    sign_in(phone, admin, clock)
    response = laptop.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(laptop, "/account/password"),
            "current_password": admin.password,
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 302
    assert laptop.get("/").status_code == 200
    assert phone.get("/").status_code == 302


def test_disabling_an_account_ends_its_sessions(
    app: Flask, signed_in: FlaskClient, make_staff: Any, clock: FakeClock,
    sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    bob: StaffMember = make_staff("bob", StaffRole.OPERATOR)
    bobs = app.test_client()
    sign_in(bobs, bob, clock)
    assert bobs.get("/").status_code == 200
    with session_scope(sessions) as db:
        from accessd.staff import get_staff_user

        public_id = get_staff_user(db, "bob").public_id
    response = signed_in.post(
        f"/staff/{public_id}/disable", data={"csrf_token": csrf_token(signed_in, "/staff/")}
    )
    assert response.status_code == 302
    assert bobs.get("/").status_code == 302


def test_the_cookie_is_host_prefixed_secure_httponly_and_strict(
    client: FlaskClient, admin: StaffMember, clock: FakeClock
) -> None:
    response = sign_in(client, admin, clock)
    header = response.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in header
    assert "Domain" not in header and "Expires" not in header


def test_the_plain_http_demo_drops_secure_and_says_so_loudly(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="web.security"):
        app = make_app(ACCESSD_INSECURE_HTTP=True)
    assert any("INSECURE" in record.getMessage() for record in caplog.records)
    response = app.test_client().get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" not in cookie and not cookie.startswith("__Host-")
    assert "Demo mode over plain HTTP" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("scheme", "hsts"), [("https", True), ("http", False)]
)
def test_hsts_is_sent_only_over_tls(client: FlaskClient, scheme: str, hsts: bool) -> None:
    response = client.get("/login", base_url=f"{scheme}://localhost")
    assert ("Strict-Transport-Security" in response.headers) is hsts


def test_forms_over_https_work_with_the_referrer_the_browser_sends(
    app: Flask, admin: StaffMember, clock: FakeClock
) -> None:
    client = app.test_client()
    base = "https://localhost"  # one of [web] trusted_hosts
    page = client.get("/login", base_url=base).get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    clock.advance(seconds=30)
    response = client.post(
        "/login",
        base_url=base,
        headers={"Referer": f"{base}/login"},
        data={"csrf_token": token.group(1), "username": admin.username,
              "password": admin.password, "code": admin.code(clock())},
    )  # fmt: skip
    assert response.status_code == 302


def test_the_table_holds_only_a_digest_of_the_token(
    app: Flask, signed_in: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    token = serializer.loads(_cookie(signed_in))["staff_session"]
    with session_scope(sessions) as db:
        rows = list(db.scalars(select(StaffSession)))
    assert len(rows) == 1
    assert rows[0].token_digest == hashlib.sha256(token.encode()).digest()
    assert token.encode() not in rows[0].token_digest
