"""Error pages are friendly, say what to do, and leak nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in
from web.security import login_required

LEAKS = ("Traceback", "werkzeug", "sqlalchemy", "File \"", "secret-internal")


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/no-such-page", 404, "Page not found"),
        ("GET", "/logout", 405, "Not possible this way"),
        ("DELETE", "/login", 405, "Not possible this way"),
        ("POST", "/login", 400, "This form has expired"),
    ],
)
def test_error_pages_are_friendly(
    client: FlaskClient, method: str, path: str, status: int, words: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert words in page and "<html" in page
    assert not any(leak in page for leak in LEAKS)


def test_an_unexpected_error_shows_a_friendly_500_without_details(
    make_app: Any, admin: StaffMember, clock: FakeClock
) -> None:
    app: Flask = make_app(PROPAGATE_EXCEPTIONS=False)

    @login_required
    def broken() -> str:
        raise RuntimeError("secret-internal detail: password=hunter2")

    app.add_url_rule("/broken", "broken", broken)
    client = app.test_client()
    sign_in(client, admin, clock)
    response = client.get("/broken")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page
    assert "hunter2" not in page and not any(leak in page for leak in LEAKS)
    assert "Content-Security-Policy" in response.headers


def test_an_abort_description_is_not_shown(
    make_app: Any, admin: StaffMember, clock: FakeClock
) -> None:
    app: Flask = make_app()

    @login_required
    def refuses() -> str:
        abort(400, "secret-internal reason")

    app.add_url_rule("/refuses", "refuses", refuses, methods=["POST"])
    client = app.test_client()
    sign_in(client, admin, clock)
    response = client.post("/refuses", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 400
    assert "secret-internal" not in response.get_data(as_text=True)


def test_the_forbidden_page_says_whom_to_ask(
    app: Flask, make_staff: Any, clock: FakeClock
) -> None:
    member: StaffMember = make_staff("otto", "operator")
    client = app.test_client()
    sign_in(client, member, clock)
    page = client.get("/staff/").get_data(as_text=True)
    assert "ask an admin" in page
