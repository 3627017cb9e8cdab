"""Once a customer's contract is over, the panel offers no working "Add person" or "Enrol a
finger" and says why; a hand-made POST is refused (and audited as refused); the API answers
409 with the reason."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings
from accessd.customers.contracts import add_customer
from accessd.db import session_scope
from accessd.models import AuditOutcome, AuditRecord, DeviceCommand, Door, Person, StaffRole
from accessd.staff import create_api_token
from tests.web.conftest import START, FakeClock
from tests.web.pages_fixtures import operator, post_form  # noqa: F401 (fixture)


@dataclass(frozen=True)
class Customers:
    ended: str  # last day 2026-02-27, grace 30: ended on the panel's day, purge on 2026-03-30
    ended_person: str
    active: str


@pytest.fixture
def customers(sessions: sessionmaker[Session]) -> Customers:
    earlier = START - dt.timedelta(days=60)
    with session_scope(sessions) as db:
        ended = add_customer(db, "Ended BV", dt.date(2025, 1, 1), dt.date(2026, 2, 27),
                             settings=Settings(), grace_days=30, lawful_basis="necessity",
                             necessity_reference="DPIA-1", now=earlier)
        active = add_customer(db, "Running BV", dt.date(2025, 1, 1), settings=Settings(),
                              lawful_basis="necessity", necessity_reference="DPIA-2",
                              now=earlier)
        ada = Person(customer=ended, name="Ada Lovelace")
        db.add_all([ada, Door(name="main")])
        db.flush()
        return Customers(str(ended.public_id), str(ada.public_id), str(active.public_id))


def _people(sessions: sessionmaker[Session]) -> int:
    with sessions() as db:
        return int(db.scalar(select(func.count()).select_from(Person)) or 0)


def test_the_panel_offers_no_add_person_for_an_ended_customer(
        operator: FlaskClient, customers: Customers,  # noqa: F811
        sessions: sessionmaker[Session]) -> None:
    page = operator.get(f"/customers/{customers.ended}").get_data(as_text=True)
    assert f"/customers/{customers.ended}/persons/new" not in page
    assert "No person can be added and no finger enrolled" in page
    assert "ended on 2026-02-27" in page and "purged on 2026-03-30" in page
    running = operator.get(f"/customers/{customers.active}").get_data(as_text=True)
    assert f"/customers/{customers.active}/persons/new" in running

    form_page = operator.get(f"/customers/{customers.ended}/persons/new").get_data(as_text=True)
    assert 'name="name"' not in form_page and "ended on 2026-02-27" in form_page
    response = post_form(operator, f"/customers/{customers.ended}/persons/new",
                         {"name": "Bob Byte", "email": "", "credential": "none"},
                         form_page=f"/customers/{customers.active}/persons/new")
    assert response.status_code == 200 and "ended on 2026-02-27" in response.get_data(
        as_text=True)
    assert _people(sessions) == 1
    with sessions() as db:
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "person.create")).one()
        assert record.outcome is AuditOutcome.REFUSED


def test_the_panel_offers_no_enrolment_for_a_person_of_an_ended_customer(
        operator: FlaskClient, customers: Customers,  # noqa: F811
        sessions: sessionmaker[Session]) -> None:
    page = operator.get(f"/customers/persons/{customers.ended_person}").get_data(as_text=True)
    assert f"/enrolment/{customers.ended_person}" not in page
    assert "No finger can be enrolled" in page
    start = operator.get(f"/enrolment/{customers.ended_person}").get_data(as_text=True)
    assert 'name="finger"' not in start and "ended on 2026-02-27" in start
    with sessions() as db:
        door_id = db.scalars(select(Door.id)).one()
    post_form(operator, f"/enrolment/{customers.ended_person}",
              {"door": str(door_id), "finger": "right_index"},
              form_page=f"/customers/{customers.active}/persons/new")
    with sessions() as db:
        assert db.scalars(select(DeviceCommand)).all() == []
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "enrolment.start")).one()
        assert record.outcome is AuditOutcome.REFUSED


def test_the_api_refuses_a_person_for_an_ended_customer_with_409(
        client: FlaskClient, customers: Customers, sessions: sessionmaker[Session],
        clock: FakeClock) -> None:
    with session_scope(sessions) as db:
        _row, token = create_api_token(db, "portal", StaffRole.OPERATOR, created_by="test",
                                       now=clock())
    headers: dict[str, Any] = {"Authorization": f"Bearer {token}"}
    refused = client.post(f"/api/v1/customers/{customers.ended}/persons", headers=headers,
                          json={"name": "Bob Byte"})
    assert refused.status_code == 409
    assert refused.json is not None
    assert refused.json["error"]["title"] == "Conflict"
    assert "ended on 2026-02-27" in refused.json["error"]["message"]
    assert _people(sessions) == 1

    made = client.post(f"/api/v1/customers/{customers.active}/persons", headers=headers,
                       json={"name": "Carol Example", "email": "carol@example.com"})
    assert made.status_code == 201 and made.json is not None
    assert (made.json["name"], made.json["customer_id"]) == ("Carol Example", customers.active)
    bad = client.post(f"/api/v1/customers/{customers.active}/persons", headers=headers,
                      json={"name": "", "shoe_size": 44})
    assert bad.status_code == 400 and "shoe_size" in bad.json["error"]["message"]
    with sessions() as db:
        outcomes = db.scalars(select(AuditRecord.outcome).where(
            AuditRecord.action == "api.person.create").order_by(AuditRecord.id)).all()
    assert outcomes == [AuditOutcome.REFUSED, AuditOutcome.SUCCESS, AuditOutcome.REFUSED]


def test_the_api_refuses_a_duplicate_person_with_409_unless_told_it_is_someone_else(
        client: FlaskClient, customers: Customers, sessions: sessionmaker[Session],
        clock: FakeClock) -> None:
    with session_scope(sessions) as db:
        _row, token = create_api_token(db, "portal", StaffRole.OPERATOR, created_by="test",
                                       now=clock())
    headers: dict[str, Any] = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/customers/{customers.active}/persons"
    carol = {"name": "Carol Example", "email": "carol@example.com"}
    assert client.post(url, headers=headers, json=carol).status_code == 201
    again = client.post(url, headers=headers, json={**carol, "name": "carol  example"})
    assert again.status_code == 409 and again.json is not None
    assert "already has a person named Carol Example" in again.json["error"]["message"]
    bad = client.post(url, headers=headers, json={**carol, "same_name_ok": "yes"})
    assert bad.status_code == 400
    assert client.post(url, headers=headers, json={**carol, "same_name_ok": True}
                       ).status_code == 201
    with sessions() as db:
        outcomes = db.scalars(select(AuditRecord.outcome).where(
            AuditRecord.action == "api.person.create").order_by(AuditRecord.id)).all()
    assert outcomes == [AuditOutcome.SUCCESS, AuditOutcome.REFUSED, AuditOutcome.REFUSED,
                        AuditOutcome.SUCCESS]
