"""The JSON API: bearer tokens with roles, JSON errors, no cookies, no CSRF."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import StaffRole
from accessd.staff import create_api_token, revoke_api_token
from tests.web.conftest import FakeClock


@pytest.fixture
def make_token(sessions: sessionmaker[Session], clock: FakeClock) -> Any:
    def make(name: str = "ticketing", role: StaffRole = StaffRole.AUDITOR,
             expires_at: dt.datetime | None = None) -> str:  # fmt: skip
        with session_scope(sessions) as db:
            _row, token = create_api_token(
                db, name, role, created_by="test", now=clock(), expires_at=expires_at
            )
        return token

    return make


def _whoami(client: FlaskClient, authorization: str | None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.get("/api/v1/whoami", headers=headers)


def test_a_valid_token_says_who_it_is(client: FlaskClient, make_token: Any) -> None:
    response = _whoami(client, f"Bearer {make_token()}")
    assert response.status_code == 200
    assert response.json == {"name": "ticketing", "role": "auditor", "expires_at": None}
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic YWRhOnB3", "Bearer accessd_not-a-real-token",
     "Bearer " + "accessd_" + "x" * 500, "Token accessd_whatever"],
)  # fmt: skip
def test_a_missing_or_bad_token_gets_a_json_401(
    client: FlaskClient, authorization: str | None
) -> None:
    response = _whoami(client, authorization)
    assert response.status_code == 401
    assert response.json["error"]["status"] == 401
    assert "Authorization: Bearer" in response.json["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_stops_working_at_once(
    client: FlaskClient, make_token: Any, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    token = make_token()
    assert _whoami(client, f"Bearer {token}").status_code == 200
    with session_scope(sessions) as db:
        revoke_api_token(db, "ticketing", now=clock())
    assert _whoami(client, f"Bearer {token}").status_code == 401


def test_an_expired_token_is_refused(
    client: FlaskClient, make_token: Any, clock: FakeClock
) -> None:
    token = make_token(expires_at=clock() + dt.timedelta(days=1))
    assert _whoami(client, f"Bearer {token}").status_code == 200
    clock.advance(days=1)
    assert _whoami(client, f"Bearer {token}").status_code == 401


def test_a_signed_in_browser_gets_nothing_from_the_api_without_a_token(
    signed_in: FlaskClient,
) -> None:
    assert _whoami(signed_in, None).status_code == 401


def test_a_token_of_the_wrong_role_gets_a_json_403(
    make_app: Any, make_token: Any
) -> None:
    from web.pages.api import token_required

    app: Flask = make_app()
    # A route of a later page, declared the way its module will.
    @token_required(StaffRole.OPERATOR)
    def customers() -> dict[str, list[str]]:
        return {"customers": []}

    app.add_url_rule("/api/v1/customers-probe", "api_probe", customers)
    client = app.test_client()
    auditor = client.get("/api/v1/customers-probe",
                         headers={"Authorization": f"Bearer {make_token()}"})  # fmt: skip
    assert auditor.status_code == 403 and auditor.json["error"]["status"] == 403
    operator_token = make_token("portal", StaffRole.OPERATOR)
    operator = client.get("/api/v1/customers-probe",
                          headers={"Authorization": f"Bearer {operator_token}"})  # fmt: skip
    assert operator.status_code == 200
    admin_token = make_token("ops", StaffRole.ADMIN)
    admin = client.get("/api/v1/customers-probe",
                       headers={"Authorization": f"Bearer {admin_token}"})  # fmt: skip
    assert admin.status_code == 200


def test_unknown_api_paths_answer_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json["error"]["status"] == 404


def test_the_api_stores_only_token_digests(
    make_token: Any, sessions: sessionmaker[Session]
) -> None:
    from sqlalchemy import select

    from accessd.models import ApiToken

    token = make_token()
    with session_scope(sessions) as db:
        row = db.scalars(select(ApiToken)).one()
        assert token.encode() not in row.token_digest and len(row.token_digest) == 32
