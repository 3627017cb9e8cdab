"""Fuzzing the JSON API with hypothesis: random query parameters, path ids and bodies against
every endpoint find no 500, and every answer (success or refusal) is JSON."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import StaffRole
from accessd.staff import create_api_token
from tests.web.conftest import FakeClock
from tests.web.test_api_v1 import Site, seed_site

# Printable text without surrogates (a URL cannot carry them), with the characters that
# break naive parsers: quotes, percent signs, slashes, control characters, non-ASCII digits.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
EVENT_FILTERS = ["customer", "person", "door", "kind", "since", "until", "limit", "cursor"]
PARAMETERS = ["customer", "person", "door", "kind", "since", "until", "limit", "cursor", "x"]
NUMBERISH = st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(
    ["0", "1", "1000", "1001", "-1", "1e3", "٣", " 5", "5 ", "2026-03-01", "2026-03-01T00:00Z",
     "granted,denied", "refused", ""]))
# What the attack campaign found 500s with (issue 11, 10): digits int() refuses, cursors past
# 64 bits, days at the ends of the calendar (their local midnight overflows on the way to UTC).
HOSTILE = st.one_of(
    st.text(st.characters(whitelist_categories=("Nd", "No")), min_size=1, max_size=6),
    st.sampled_from(["²", "9" * 30, str(2**63), str(2**63 - 1), "0001-01-01", "9999-12-31",
                     "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                     "0001-01-01T00:00:00Z", "2026-03-01T08:00:00+25:00", "2026-02-30"]),
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()))
BODIES = st.one_of(st.none(), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["reason", "x"]) | TEXT, inner, max_size=3), max_leaves=8))

ROUTES = ["/api/v1/customers", "/api/v1/customers/{id}", "/api/v1/customers/{id}/persons",
          "/api/v1/persons/{id}", "/api/v1/events", "/api/v1/doors", "/api/v1/whoami",
          "/api/v1/doors/{name}/unlock"]


@pytest.fixture
def fuzz_env(app: Flask, sessions: sessionmaker[Session], clock: FakeClock) -> tuple[
        FlaskClient, Site, dict[str, str]]:
    """A seeded site and an admin token (every endpoint reachable)."""
    site = seed_site(sessions)
    with session_scope(sessions) as db:
        _row, token = create_api_token(db, "fuzz", StaffRole.ADMIN, created_by="t", now=clock())
    return app.test_client(), site, {"Authorization": f"Bearer {token}"}


def _assert_json_answer(response: Any, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.data[:300])
    assert response.is_json, (where, response.status_code, response.data[:200])
    if response.status_code >= 400:
        assert set(response.json["error"]) == {"status", "title", "message"}, where


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(st.sampled_from(PARAMETERS),
                                         st.one_of(TEXT, NUMBERISH, HOSTILE)),
                       max_size=5),
       route=st.sampled_from(ROUTES), ident=st.one_of(TEXT, st.sampled_from(["main"])),
       use_real_id=st.booleans())
def test_query_parameters_and_ids_never_cause_a_500(
    fuzz_env: tuple[FlaskClient, Site, dict[str, str]], params: list[tuple[str, str]],
    route: str, ident: str, use_real_id: bool,
) -> None:
    client, site, headers = fuzz_env
    if use_real_id:
        ident = site.acme if "persons/" not in route else site.alice
    path = route.format(id=quote(ident, safe=""), name=quote(ident, safe=""))
    url = f"{path}?{urlencode(params)}" if params else path
    method = "POST" if route.endswith("unlock") else "GET"
    _assert_json_answer(client.open(url, method=method, headers=headers,
                                    json={"reason": "fuzz"}), url)


@settings(max_examples=100, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_event_filter_refuses_what_it_cannot_use_with_a_400(
    fuzz_env: tuple[FlaskClient, Site, dict[str, str]], data: st.DataObject,
) -> None:
    client, site, headers = fuzz_env
    values = st.one_of(HOSTILE, NUMBERISH, TEXT, st.sampled_from([site.acme, site.alice, "main"]))
    query = data.draw(st.fixed_dictionaries({}, optional=dict.fromkeys(EVENT_FILTERS, values)))
    response = client.get(f"/api/v1/events?{urlencode(query)}", headers=headers)
    _assert_json_answer(response, repr(query))
    assert response.status_code in (200, 400), (query, response.status_code)
    if response.status_code == 400:  # the message names the parameter that was wrong
        assert response.json["error"]["message"].split(":", 1)[0] in EVENT_FILTERS, query


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(body=BODIES, raw=st.one_of(st.none(), st.binary(max_size=60)),
       content_type=st.sampled_from(["application/json", "text/plain",
                                     "application/x-www-form-urlencoded", "application/json; "
                                     "charset=latin-1"]))
def test_unlock_bodies_never_cause_a_500(
    fuzz_env: tuple[FlaskClient, Site, dict[str, str]], body: Any, raw: bytes | None,
    content_type: str,
) -> None:
    client, _site, headers = fuzz_env
    if raw is None:
        response = client.post("/api/v1/doors/main/unlock", headers=headers, json=body)
    else:
        response = client.post("/api/v1/doors/main/unlock", headers=headers, data=raw,
                               content_type=content_type)
    _assert_json_answer(response, repr(body if raw is None else raw))


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(authorization=st.one_of(TEXT, TEXT.map(lambda t: "Bearer " + t)),
       route=st.sampled_from(ROUTES))
def test_any_authorization_header_is_answered_in_json(
    fuzz_env: tuple[FlaskClient, Site, dict[str, str]], authorization: str, route: str
) -> None:
    client, _site, _headers = fuzz_env
    path = route.format(id="x", name="main")
    try:
        headers = {"Authorization": authorization.encode("latin-1").decode("latin-1")}
    except UnicodeEncodeError:
        return  # HTTP headers are Latin-1: such a header cannot be sent at all
    if "\r" in authorization or "\n" in authorization:
        return  # nor one with a line break: it would end the header
    response = client.get(path, headers=headers)
    _assert_json_answer(response, path)
