"""Over TLS a form must come with a Referer of this origin, and a malformed one is a refusal
(400), never an error (issue 11, 11): ``https://127.0.0.1:x/`` made Flask-WTF's own check
raise ``ValueError`` (a port that is no number) before anyone had signed in."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import FakeClock, StaffMember
from web.security import same_origin

BASE = "https://localhost"
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _post_login(client: FlaskClient, member: StaffMember, clock: FakeClock,
                referrer: str | None) -> int:
    page = client.get("/login", base_url=BASE).get_data(as_text=True)
    token = _TOKEN.search(page)
    assert token
    clock.advance(seconds=30)
    headers = {} if referrer is None else {"Referer": referrer}
    response = client.post("/login", base_url=BASE, headers=headers, data={
        "csrf_token": token.group(1), "username": member.username,
        "password": member.password, "code": member.code(clock())})
    return response.status_code


@pytest.mark.parametrize("referrer", [
    "https://127.0.0.1:x/", "https://localhost:x/login", "https://localhost:99999/",
    "https://[::1", "https://[localhost]/", "https://localhost:-1/", "not a url", "",
    "https://localhost.evil.example/", "http://localhost/login", "https://evil.example/",
    "https://localhost:8443/login", "//localhost/login", None,
])
def test_a_form_without_a_referrer_of_this_origin_is_refused_with_a_400(
        app: Flask, admin: StaffMember, clock: FakeClock, referrer: str | None) -> None:
    assert _post_login(app.test_client(), admin, clock, referrer) == 400


@pytest.mark.parametrize("referrer", [f"{BASE}/login", f"{BASE}/login?next=/staff/",
                                      "https://LOCALHOST/login", f"{BASE}:443/login"])
def test_a_form_from_a_page_of_this_origin_is_taken(
        app: Flask, admin: StaffMember, clock: FakeClock, referrer: str) -> None:
    assert _post_login(app.test_client(), admin, clock, referrer) == 302


def test_the_refusal_says_to_reload_the_form(
        app: Flask, admin: StaffMember, clock: FakeClock) -> None:
    client = app.test_client()
    page = client.get("/login", base_url=BASE).get_data(as_text=True)
    token = _TOKEN.search(page)
    assert token
    response = client.post("/login", base_url=BASE, headers={"Referer": "https://127.0.0.1:x/"},
                           data={"csrf_token": token.group(1), "username": "ada"})
    assert response.status_code == 400
    assert "did not come from this panel" in response.get_data(as_text=True)


def test_plain_http_does_not_ask_for_a_referrer(
        app: Flask, admin: StaffMember, clock: FakeClock) -> None:
    from tests.web.conftest import sign_in

    assert sign_in(app.test_client(), admin, clock).status_code == 302


@given(referrer=st.text(max_size=60), host=st.sampled_from(["localhost", "127.0.0.1:8443",
                                                            "[::1]:443", "", "a:b"]))
def test_the_origin_check_never_raises(referrer: str, host: str) -> None:
    assert same_origin(referrer, host) in (True, False)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(referrer=st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40),
    st.builds("https://{}:{}/".format, st.sampled_from(["localhost", "127.0.0.1", "[::1]"]),
              st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=8))))
def test_no_referrer_makes_a_sign_in_fail(
        app: Flask, admin: StaffMember, clock: FakeClock, referrer: str) -> None:
    assert _post_login(app.test_client(), admin, clock, referrer) in (302, 400)
