"""Property tests over every filter of the panel (issue 11, 10): whatever a signed-in user puts
in a query string, a path id or a date field, the answer is a page, a redirect or a 4xx, never
a 500. Values mix junk text, Unicode digits, numbers far past 64 bits and dates at and beyond
both ends of the calendar, with real ids and days among them so that the happy paths are
searched too.

In testing an exception propagates to the test client, so a crash fails the example with its
traceback; outside testing it would be the 500 page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from accessd.models import RequestKind
from accessd.rights.requests import record_request
from tests.web.conftest import FakeClock, csrf_token
from tests.web.pages_fixtures import Site, site

__all__ = ["site"]  # a fixture

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
UNICODE_DIGITS = st.text(st.characters(whitelist_categories=("Nd", "No")), min_size=1,
                         max_size=8)
NUMBERS = st.one_of(st.integers(-(2**80), 2**80).map(str), UNICODE_DIGITS, st.sampled_from(
    ["0", "1", "2", "-1", " 1", "1 ", "1e3", "0x10", "1_0", "²", "٣", "\uff11", str(2**63 - 1),
     str(2**63), "9" * 30, "0.0", "1.2.3", "."]))
DAYS = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "1899-12-31", "1900-01-01", "2999-12-31",
                     "3000-01-01", "2026-03-02", "2026-02-30", "20260302", "2026-3-2",
                     "٢٠٢٦-٠٣-٠٢", "0000-00-00", "2026-03-02T00:00Z"]),
    st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat))
VALUES = st.one_of(TEXT, NUMBERS, DAYS)
# What the attack campaign found 500s with, drawn often.
HOSTILE = st.sampled_from(["²", "٣", "١٢", "①", "9" * 30, str(2**63), "-1", "0001-01-01",
                           "9999-12-31", "0001-01-02", "9999-12-30", "0001-01-01T00:00:00+14:00",
                           "9999-12-31T23:59:59-14:00", "2026-02-30", "\x00", "%", "'", ""])

HISTORY = ["customer", "person", "door", "result", "since", "until", "before", "trail"]
# (path, the query parameters its filters read)
PAGES: list[tuple[str, list[str]]] = [
    ("/history/", HISTORY),
    ("/history/export.csv", HISTORY),
    ("/audit/", ["who", "action", "outcome", "since", "until", "before"]),
    ("/audit/logins", ["who", "outcome", "since", "until", "before"]),
    ("/customers/{customer}/end", ["last_day"]),
    ("/customers/", []),
    ("/privacy/register", ["lang"]),
    ("/privacy/register.csv", ["lang"]),
    ("/privacy/requests/new", ["person"]),
    ("/privacy/requests", []),
    ("/", []),
    ("/login", ["next"]),
]
# Paths naming a row by id or public id: the segment is fuzzed.
PATHS = ["/doors/{x}/alarms", "/doors/{x}/unlock", "/privacy/purges/{x}/certificate",
         "/enrolment/commands/{x}", "/enrolment/commands/{x}/state.json", "/customers/{x}",
         "/customers/persons/{x}", "/privacy/persons/{x}", "/privacy/requests/{x}",
         "/enrolment/{x}"]

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _real_values(site: Site) -> st.SearchStrategy[str]:
    return st.sampled_from([str(site.customer_id), str(site.alice_id), str(site.door_id),
                            site.customer_public_id, site.alice_public_id, "granted", "refused",
                            "2026-03-01", "2026-03-03", "1", "0", "1.0", "ada", "person.",
                            "denied", "nl", "both"])


@pytest.fixture
def fuzz_client(signed_in: FlaskClient, site: Site) -> tuple[FlaskClient, Site]:
    return signed_in, site


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_filter_value_makes_a_page_fail(
        fuzz_client: tuple[FlaskClient, Site], data: st.DataObject) -> None:
    client, site = fuzz_client
    values = st.one_of(HOSTILE, VALUES, _real_values(site))
    for path, names in PAGES:
        # Each of the page's filters present or not, with any value; and one it does not read.
        query = data.draw(st.fixed_dictionaries({}, optional=dict.fromkeys([*names, "x"],
                                                                          values)),
                          label=path)
        url = path.format(customer=site.customer_public_id)
        response = client.get(url, query_string=query)
        assert response.status_code < 500, (url, query, response.status_code)


@FUZZ
@given(segment=st.one_of(NUMBERS, TEXT.filter(lambda t: "/" not in t and t not in (".", ".."))))
def test_no_id_in_a_path_makes_a_page_fail(
        fuzz_client: tuple[FlaskClient, Site], segment: str) -> None:
    client, _site = fuzz_client
    for path in PATHS:
        url = path.format(x=segment)
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)


@pytest.fixture
def request_id(sessions: sessionmaker[Session], clock: FakeClock) -> str:
    with sessions.begin() as db:
        made = record_request(db, RequestKind.ACCESS, clock().date(), requester_name="Ada")
        return str(made.public_id)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_date_or_number_in_a_form_makes_a_post_fail(
        fuzz_client: tuple[FlaskClient, Site], request_id: str, app: Flask,
        data: st.DataObject) -> None:
    client, site = fuzz_client
    value = st.one_of(DAYS, NUMBERS, TEXT)
    forms: list[tuple[str, str, dict[str, Any]]] = [
        ("/customers/new", "/customers/new", {
            "name": "Fuzz B.V.", "contract_start": data.draw(value),
            "contract_end": data.draw(value), "grace_days": data.draw(value)}),
        (f"/customers/{site.customer_public_id}/end", f"/customers/{site.customer_public_id}",
         {"last_day": data.draw(value)}),
        ("/privacy/requests/new", "/privacy/requests/new", {
            "kind": "access", "received_on": data.draw(value), "requester_name": "Ada",
            "person": data.draw(value)}),
        (f"/privacy/requests/{request_id}/extend", f"/privacy/requests/{request_id}", {
            "until": data.draw(value), "reason": "large export"}),
    ]
    for path, form_page, fields in forms:
        response = client.post(path, data={"csrf_token": csrf_token(client, form_page),
                                           **fields})
        assert response.status_code < 500, (path, fields, response.status_code)
