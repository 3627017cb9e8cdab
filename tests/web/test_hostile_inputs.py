"""The inputs the attack campaign found 500s with (issue 11, 10), each now refused with what was
wrong: beside the field on a panel page, as a 400 naming the parameter in the API.

Unicode digits (``isdigit`` says yes, ``int`` says no), ids and cursors past SQLite's 64 bits,
and the first and last days of Python's calendar (a local midnight then overflows on its way
to UTC). ``test_panel_fuzz`` and ``test_api_fuzz`` search the same ground at random.
"""

from __future__ import annotations

import html

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import StaffRole
from accessd.staff import create_api_token
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import Site, error_beside, site

__all__ = ["site"]  # a fixture

HUGE = "9" * 30
OUT_OF_RANGE = "outside the dates this system handles"
NOT_A_NUMBER = "is not a whole number from 1 to"

# (url, field whose error is shown beside it, or None for a message at the top; words in it)
PANEL = [
    ("/history/?customer=²", "customer", "Not a valid choice"),
    ("/history/?person=²", "person", "Not a valid choice"),
    ("/history/?door=²", "door", "Not a valid choice"),
    (f"/history/?customer={HUGE}", "customer", "Not a valid choice"),
    (f"/history/?person={HUGE}", "person", "Not a valid choice"),
    (f"/history/?before={HUGE}", None, NOT_A_NUMBER),
    ("/history/?before=²", None, NOT_A_NUMBER),
    ("/history/?trail=²", None, "is not a whole number from 0 to"),
    ("/history/?since=0001-01-01", "since", OUT_OF_RANGE),
    ("/history/?until=0001-01-01", "until", OUT_OF_RANGE),
    ("/history/?since=9999-12-31", "since", OUT_OF_RANGE),
    ("/history/?until=9999-12-31", "until", OUT_OF_RANGE),
    ("/history/export.csv?since=0001-01-01", "since", OUT_OF_RANGE),
    ("/history/export.csv?customer=²", "customer", "Not a valid choice"),
    ("/audit/?since=0001-01-01", "since", OUT_OF_RANGE),
    ("/audit/?until=9999-12-31", "until", OUT_OF_RANGE),
    (f"/audit/?before={HUGE}", None, NOT_A_NUMBER),
    ("/audit/logins?since=0001-01-01", "since", OUT_OF_RANGE),
    ("/audit/logins?until=9999-12-31", "until", OUT_OF_RANGE),
    (f"/audit/logins?before={HUGE}", None, NOT_A_NUMBER),
]
API = [
    ("customer=²", "customer"), ("person=²", "person"), (f"cursor={HUGE}", "cursor"),
    ("since=0001-01-01", "since"), ("until=0001-01-01", "until"),
    ("since=9999-12-31", "since"), ("until=9999-12-31", "until"),
    ("since=0001-01-01T00:00:00%2B14:00", "since"), ("until=9999-12-31T23:59:59-14:00", "until"),
    ("limit=٣", "limit"), ("cursor=²", "cursor"), (f"limit={HUGE}", "limit"),
]


@pytest.mark.parametrize(("url", "field", "words"), PANEL, ids=[u for u, _, _ in PANEL])
def test_a_hostile_filter_gets_the_page_with_the_reason(
        signed_in: FlaskClient, site: Site, url: str, field: str | None,
        words: str) -> None:
    response = signed_in.get(url)
    assert response.status_code == 200, response.status_code
    page = html.unescape(response.get_data(as_text=True))
    if field is None:
        assert words in page
    else:
        assert words in html.unescape(error_beside(response.get_data(as_text=True), field))


@pytest.fixture
def token(sessions: sessionmaker[Session], clock: FakeClock) -> str:
    with session_scope(sessions) as db:
        _row, value = create_api_token(db, "hostile", StaffRole.AUDITOR, created_by="t",
                                       now=clock())
    return value


@pytest.mark.parametrize(("query", "parameter"), API, ids=[q for q, _ in API])
def test_a_hostile_api_parameter_gets_a_400_naming_it(
        app: Flask, site: Site, token: str, query: str, parameter: str) -> None:
    response = app.test_client().get(f"/api/v1/events?{query}",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"]["message"].startswith(f"{parameter}: ")


@pytest.mark.parametrize("path", [
    f"/doors/{HUGE}/alarms", f"/doors/{HUGE}/unlock", "/doors/٣/alarms",
    f"/privacy/purges/{HUGE}/certificate", f"/enrolment/commands/{HUGE}",
    f"/enrolment/commands/{HUGE}/state.json", "/doors/0/alarms",
])
def test_an_id_in_a_path_that_is_no_row_id_is_not_found(
        signed_in: FlaskClient, path: str) -> None:
    assert signed_in.get(path).status_code == 404


@pytest.mark.parametrize(("code", "expected"), [("²²²²²²", 200), ("١٢٣٤٥٦", 200)])
def test_a_unicode_digit_code_at_sign_in_is_a_failed_sign_in(
        client: FlaskClient, admin: object, clock: FakeClock, code: str, expected: int) -> None:
    from tests.web.conftest import sign_in

    response = sign_in(client, admin, clock, code=code)  # type: ignore[arg-type]
    assert response.status_code == expected
    assert "Sign-in failed" in response.get_data(as_text=True)
