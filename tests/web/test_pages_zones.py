"""Grants and schedules edited per customer and per person, and doors listed with their zone
and mode (settings for admins): who may change what, refusals beside the field, CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.models import AuditRecord, AuthMode, Door, Grant, StaffRole
from accessd.zones.places import add_zone
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import (
    Site,
    auditor,
    client_as,
    error_beside,
    operator,
    post_form,
    site,
)

__all__ = ["auditor", "operator", "site"]  # fixtures used by name


@pytest.fixture
def zones(sessions: sessionmaker[Session], site: Site) -> None:
    """site > hall-a > cage-7 (the "site" zone is migration 0015's)."""
    with sessions.begin() as db:
        add_zone(db, "hall-a", "hall", parent="site")
        add_zone(db, "cage-7", "cage", parent="hall-a")


@pytest.fixture
def admin(app: Flask, make_staff: Any, clock: FakeClock) -> FlaskClient:
    return client_as(app, make_staff, clock, StaffRole.ADMIN)


def _grants(sessions: sessionmaker[Session], customer_id: int) -> list[tuple[Any, ...]]:
    with sessions() as db:
        return [(g.person_id, g.zone_id, g.schedule, g.closed_on_holidays) for g in db.scalars(
            select(Grant).where(Grant.customer_id == customer_id).order_by(Grant.id))]


def test_an_operator_grants_a_customer_a_zone_on_a_schedule(
        operator: FlaskClient, site: Site, zones: None, sessions: sessionmaker[Session]) -> None:
    path = f"/customers/{site.customer_public_id}/grants"
    page = operator.get(path).get_data(as_text=True)
    assert "site" in page and "24/7" in page  # every new customer holds the site zone
    assert "site &gt; hall-a &gt; cage-7" in page  # the zone choice names its place
    response = post_form(operator, path, {"zone": "cage-7", "schedule": "mon-fri 7:00-19:00",
                                          "closed_on_holidays": "y", "valid_from": "",
                                          "valid_until": "2026-12-31"}, form_page=path)
    assert response.status_code == 302
    shown = operator.get(response.location).get_data(as_text=True)
    assert "Zone cage-7 granted: mon-fri 07:00-19:00, closed on holidays, until 2026-12-31." in (
        shown)
    assert _grants(sessions, site.customer_id)[-1][2:] == ("mon-fri 07:00-19:00", True)
    with sessions() as db:
        actions = db.scalars(select(AuditRecord.action).where(
            AuditRecord.action.like("grant.%"))).all()
    assert "grant.set" in actions and "grant.list" in actions


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"schedule": "weekdays 9 to 5"}, "schedule", "is not a window"),
    ({"valid_from": "2026-05-01", "valid_until": "2026-04-01"}, "valid_until",
     "before the first valid day"),
    ({"zone": "nowhere"}, "zone", "Not a valid choice"),
])
def test_a_bad_grant_says_what_is_wrong_beside_the_field(
        operator: FlaskClient, site: Site, zones: None, changes: dict[str, str], field: str,
        message: str) -> None:
    path = f"/customers/{site.customer_public_id}/grants"
    data = {"zone": "cage-7", "schedule": "", "valid_from": "", "valid_until": "", **changes}
    response = post_form(operator, path, data, form_page=path)
    assert response.status_code == 200
    assert message in error_beside(response.get_data(as_text=True), field)


def test_a_person_gets_a_part_of_the_customers_zones_and_no_more(
        operator: FlaskClient, site: Site, zones: None, sessions: sessionmaker[Session]) -> None:
    path = f"/customers/persons/{site.alice_public_id}/grants"
    page = operator.get(path).get_data(as_text=True)
    assert "No grants of their own" in page and "site: 24/7" in page
    response = post_form(operator, path, {"zone": "cage-7", "schedule": "sat 09:00-13:00"},
                         form_page=path)
    assert response.status_code == 302
    assert (site.alice_id, "sat 09:00-13:00") in [
        (g[0], g[2]) for g in _grants(sessions, site.customer_id)]
    # Vault Co's zone is not Acme's: take "site" away, then a person cannot get "hall-a".
    revoke = post_form(operator, f"/customers/{site.customer_public_id}/grants/revoke",
                       {"zone": "site"}, form_page=path)
    assert "Zone site revoked (and 1 grant(s) of its people inside it)." in operator.get(
        revoke.location).get_data(as_text=True)
    refused = post_form(operator, path, {"zone": "hall-a"}, form_page=path)
    assert "grant the customer first" in error_beside(refused.get_data(as_text=True), "zone")


def test_an_auditor_reads_grants_but_cannot_change_them(
        auditor: FlaskClient, site: Site, zones: None) -> None:
    path = f"/customers/{site.customer_public_id}/grants"
    page = auditor.get(path).get_data(as_text=True)
    assert "24/7" in page and "Grant a zone" not in page and "Revoke" not in page
    assert post_form(auditor, path, {"zone": "cage-7"}, form_page=path).status_code == 403
    assert post_form(auditor, f"{path}/revoke", {"zone": "site"},
                     form_page=path).status_code == 403


def test_a_grant_posted_without_its_csrf_token_is_refused(
        operator: FlaskClient, site: Site, zones: None, sessions: sessionmaker[Session]) -> None:
    before = _grants(sessions, site.customer_id)
    response = operator.post(f"/customers/{site.customer_public_id}/grants",
                             data={"zone": "cage-7"})
    assert response.status_code == 400
    assert _grants(sessions, site.customer_id) == before


def test_doors_are_listed_with_their_zone_and_admins_change_the_settings(
        admin: FlaskClient, operator: FlaskClient, site: Site, zones: None,
        sessions: sessionmaker[Session]) -> None:
    listed = operator.get("/doors/").get_data(as_text=True)
    assert "Hall A" in listed and "no zone: lets nobody in" in listed
    assert "Settings" not in listed  # operators see, admins change
    assert operator.get(f"/doors/{site.door_id}/settings").status_code == 403
    path = f"/doors/{site.door_id}/settings"
    response = post_form(admin, path, {"zone": "cage-7", "auth_mode": "finger_and_pin"},
                         form_page=path)
    assert response.status_code == 302
    with sessions() as db:
        door = db.get_one(Door, site.door_id)
        assert door.auth_mode is AuthMode.FINGER_AND_PIN and door.zone_id is not None
    listed = admin.get("/doors/").get_data(as_text=True)
    assert "site &gt; hall-a &gt; cage-7" in listed and "two factors" in listed
