"""A right-to-left override in a name is refused wherever a name enters (issue 12, finding
11): the panel's customer and person forms beside the field, the API with a 400 naming the
field, and the CLI (``tests/customers/test_cli.py``) with one line; nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import Customer, Person, StaffRole
from accessd.staff import create_api_token
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import Site, error_beside, operator, post_form, site

__all__ = ["operator", "site"]  # fixtures used by name

RLO_NAME = "Eve \u202egnp.exe"


def _count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_the_panel_refuses_a_person_name_with_a_bidi_control_beside_the_field(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session]) -> None:
    before = _count(sessions, Person)
    response = post_form(operator, f"/customers/{site.customer_public_id}/persons/new",
                         {"name": RLO_NAME, "credential": "none"})
    error = error_beside(response.get_data(as_text=True), "name")
    assert error.startswith("The name holds an invisible control character (U+202E "
                            "RIGHT-TO-LEFT OVERRIDE) at position 5"), error
    assert _count(sessions, Person) == before


def test_the_panel_refuses_a_customer_name_with_a_bidi_control(
        operator: FlaskClient, sessions: sessionmaker[Session]) -> None:
    before = _count(sessions, Customer)
    response = post_form(operator, "/customers/new", {
        "name": "Acme\u2066 Hosting", "contract_start": "2026-01-01", "contract_end": "",
        "grace_days": "", "lawful_basis": "consent", "necessity_reference": ""})
    assert "U+2066 LEFT-TO-RIGHT ISOLATE" in error_beside(response.get_data(as_text=True), "name")
    assert _count(sessions, Customer) == before


@pytest.mark.parametrize("name", [RLO_NAME, "Eve\u200b", "Eve\x1b[31m"])
def test_the_api_refuses_it_with_a_400_naming_the_field(
        client: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock,
        name: str) -> None:
    with session_scope(sessions) as db:
        _row, token = create_api_token(db, "portal", StaffRole.OPERATOR, created_by="test",
                                       now=clock())
    before = _count(sessions, Person)
    refused = client.post(f"/api/v1/customers/{site.customer_public_id}/persons",
                          headers={"Authorization": f"Bearer {token}"}, json={"name": name})
    assert refused.status_code == 400 and refused.json is not None
    assert refused.json["error"]["message"].startswith("name: the name holds an invisible")
    assert _count(sessions, Person) == before
