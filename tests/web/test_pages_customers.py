"""The customers pages: who may see and change what, forms that say what is wrong beside the
field, the end-contract confirmation, persons, restriction and a PIN shown only once."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.customers.pins import verify_pin
from accessd.models import AuditRecord, Customer, Person
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import (
    Site,
    auditor,
    error_beside,
    operator,
    post_form,
    site,
)

__all__ = ["auditor", "operator", "site"]  # fixtures used by name

GOOD_CUSTOMER = {"name": "Nimbus B.V.", "contract_start": "2026-01-01", "contract_end": "",
                 "grace_days": "", "lawful_basis": "consent", "necessity_reference": ""}


def test_the_list_shows_contracts_states_purge_days_and_counts(
    signed_in: FlaskClient, site: Site
) -> None:
    html = signed_in.get("/customers/").get_data(as_text=True)
    assert "Acme Hosting B.V." in html and "Vault Co" in html
    # Acme's last day is 200 days after 2026-03-02: purge on the day after, 201 days left.
    assert "2026-09-19" in html and "201 days left" in html
    row = html.split("Acme Hosting B.V.")[1].split("</tr>")[0]
    assert "<td>2</td>" in row  # persons
    assert "<td>0</td>" in row  # fingers
    assert "active" in row


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient, site: Site) -> None:
    for path in ("/customers/", f"/customers/{site.customer_public_id}",
                 f"/customers/persons/{site.alice_public_id}"):
        response = client.get(path)
        assert response.status_code == 302 and response.location.startswith("/login")


def test_an_auditor_reads_but_cannot_change(auditor: FlaskClient, site: Site) -> None:
    assert auditor.get("/customers/").status_code == 200
    detail = auditor.get(f"/customers/{site.customer_public_id}").get_data(as_text=True)
    assert "Alice Jansen" in detail and "End contract" not in detail
    person = auditor.get(f"/customers/persons/{site.alice_public_id}").get_data(as_text=True)
    assert "alice@example.com" in person and "Restrict" not in person
    assert auditor.get("/customers/new").status_code == 403
    assert auditor.get(f"/customers/{site.customer_public_id}/end").status_code == 403
    refused = post_form(auditor, f"/customers/persons/{site.alice_public_id}/pin", {},
                        form_page="/customers/")
    assert refused.status_code == 403


def test_an_operator_adds_a_customer_with_its_lawful_basis(
    operator: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    response = post_form(operator, "/customers/new", GOOD_CUSTOMER)
    assert response.status_code == 302
    with sessions() as db:
        customer = db.scalars(select(Customer).where(Customer.name == "Nimbus B.V.")).one()
        assert customer.lawful_basis == "consent" and customer.contract_end is None
    page = operator.get(response.location).get_data(as_text=True)
    assert "Customer Nimbus B.V. added." in page
    # The reference the customer confirms its purge certificate with, to hand over.
    assert customer.reference is not None and customer.reference in page


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"name": ""}, "name", "Enter the customer"),
    ({"name": "Acme Hosting B.V."}, "name", "already exists"),
    ({"contract_start": ""}, "contract_start", "Enter the first day"),
    ({"contract_start": "01-02-2026"}, "contract_start", "is not a date; use YYYY-MM-DD"),
    ({"contract_end": "2025-12-31"}, "contract_end", "before the contract start"),
    ({"contract_end": "2026-01-31"}, "contract_end", "which has passed"),
    ({"grace_days": "91"}, "grace_days", "use 0 to 90 days"),
    ({"grace_days": "soon"}, "grace_days",
     "Enter a whole number of days from 0 to 90, or leave it empty."),
    ({"lawful_basis": "vibes"}, "lawful_basis", "Not a valid choice"),
    ({"lawful_basis": "necessity"}, "necessity_reference", "needs the reference"),
    ({"necessity_reference": "DPIA 1"}, "necessity_reference", "only applies to"),
])
def test_a_bad_customer_form_says_what_is_wrong_beside_the_field(
    operator: FlaskClient, site: Site, changes: dict[str, str], field: str, message: str
) -> None:
    response = post_form(operator, "/customers/new", {**GOOD_CUSTOMER, **changes})
    assert response.status_code == 200
    assert message in error_beside(response.get_data(as_text=True), field)


def test_ending_a_contract_shows_what_is_purged_and_when_before_anything_changes(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    base = f"/customers/{site.customer_public_id}/end"
    form = operator.get(base).get_data(as_text=True)
    assert 'value="2026-03-02"' in form  # today, site time, as the default
    preview = operator.get(f"{base}?last_day=2026-03-31").get_data(as_text=True)
    assert '<strong class="purge-on">2026-04-01</strong>' in preview
    assert "<strong>2</strong> persons" in preview
    assert "<strong>0</strong> enrolled fingers" in preview
    assert "<strong>1</strong> consent record" in preview
    with sessions() as db:
        assert db.get_one(Customer, site.customer_id).contract_end == dt.date(2026, 9, 18)
    response = post_form(operator, base, {"last_day": "2026-03-31"},
                         form_page=f"{base}?last_day=2026-03-31")
    assert response.status_code == 302
    with sessions() as db:
        assert db.get_one(Customer, site.customer_id).contract_end == dt.date(2026, 3, 31)
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "customer.end_contract")).one()
        assert record.details and record.details["purge_on"] == "2026-04-01"
    detail = operator.get(response.location).get_data(as_text=True)
    assert "purged on 2026-04-01" in detail


def test_a_last_day_in_the_past_says_when_the_purge_really_runs(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    base = f"/customers/{site.customer_public_id}/end"
    preview = operator.get(f"{base}?last_day=2026-02-26").get_data(as_text=True)
    # The purge moment (2026-02-27 00:00) has passed: the next hourly check runs it; the
    # clock says 09:00 UTC, 10:00 in Amsterdam, so by 11:00 site time at the latest.
    assert "already over" in preview
    assert re.search(r'<strong class="purge-by"><time[^>]*>2026-03-02 11:00 CET</time></strong>',
                     preview)
    assert "every 60 minutes" in preview
    assert "at 00:00" not in preview and "can still be moved" not in preview
    response = post_form(operator, base, {"last_day": "2026-02-26"},
                         form_page=f"{base}?last_day=2026-02-26")
    detail = operator.get(response.location).get_data(as_text=True)
    assert "purged at the next purge check, by 2026-03-02 11:00 CET at the latest" in detail


def test_a_future_last_day_names_the_midnight_and_the_check_after_it(
    operator: FlaskClient, site: Site
) -> None:
    preview = operator.get(f"/customers/{site.customer_public_id}/end?last_day=2026-03-31"
                           ).get_data(as_text=True)
    assert "at 00:00 site time (at the first purge check from then, by 2026-04-01 01:00 " \
        "CEST)" in re.sub(r"<[^>]+>", "", preview)
    assert "can still be moved" in preview and "already over" not in preview


@pytest.mark.parametrize(("last_day", "message"), [
    ("", "Enter the last day"),
    ("tomorrow", "is not a date"),
    ("2025-01-01", "is before the contract start"),
])
def test_a_bad_last_day_is_refused_beside_the_field(
    operator: FlaskClient, site: Site, last_day: str, message: str
) -> None:
    html = operator.get(f"/customers/{site.customer_public_id}/end?last_day={last_day}"
                        ).get_data(as_text=True)
    assert message in error_beside(html, "last_day")
    assert "purge-preview" not in html


def test_an_operator_adds_and_corrects_a_person(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    created = post_form(operator, f"/customers/{site.customer_public_id}/persons/new",
                        {"name": "Carla  Smit", "email": "", "credential": "pin"})
    assert created.status_code == 302
    with sessions() as db:
        carla = db.scalars(select(Person).where(Person.name == "Carla Smit")).one()
        assert carla.keypad_code is not None
        path = f"/customers/persons/{carla.public_id}/edit"
    edited = post_form(operator, path, {"name": "Carla Smit-de Boer",
                                        "email": "carla@example.com", "notes": ""},
                       form_page=path)
    assert edited.status_code == 302
    with sessions() as db:
        carla = db.scalars(select(Person).where(Person.email == "carla@example.com")).one()
        assert carla.name == "Carla Smit-de Boer"
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "person.rectify")).one()
        assert record.details and sorted(record.details["fields"]) == ["email", "name"]


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": ""}, "name", "Enter the person"),
    ({"name": "  "}, "name", "must not be empty"),
    ({"name": "Dirk", "email": "dirk-at-example"}, "email", "is not an e-mail address"),
    ({"name": "Dirk", "credential": "iris"}, "credential", "Not a valid choice"),
])
def test_a_bad_person_form_says_what_is_wrong_beside_the_field(
    operator: FlaskClient, site: Site, data: dict[str, str], field: str, message: str
) -> None:
    response = post_form(operator, f"/customers/{site.customer_public_id}/persons/new",
                         {"credential": "none", **data})
    assert message in error_beside(response.get_data(as_text=True), field)


def test_restricting_needs_a_reason_and_can_be_lifted(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    base = f"/customers/persons/{site.alice_public_id}"
    empty = post_form(operator, f"{base}/restrict", {"reason": " "}, form_page=base)
    assert "say why" in error_beside(empty.get_data(as_text=True), "reason")
    done = post_form(operator, f"{base}/restrict", {"reason": "request 2026-014"},
                     form_page=base)
    assert done.status_code == 302
    with sessions() as db:
        assert db.get_one(Person, site.alice_id).restricted_reason == "request 2026-014"
    assert "restricted since" in operator.get(base).get_data(as_text=True)
    lifted = post_form(operator, f"{base}/unrestrict", {}, form_page=base)
    assert lifted.status_code == 302
    with sessions() as db:
        assert not db.get_one(Person, site.alice_id).restricted


def test_a_pin_is_shown_once_and_never_logged(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    base = f"/customers/persons/{site.bob_public_id}"
    response = post_form(operator, f"{base}/pin", {"pin": "730519"}, form_page=base)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Shown only this once" in html
    assert response.headers["Cache-Control"] == "no-store"
    with sessions() as db:
        bob = db.get_one(Person, site.bob_id)
        assert bob.pin_hash and verify_pin(bob.pin_hash, "730519")
        assert f"{bob.keypad_code}*730519#" in html
        logged = " ".join(f"{r.action} {r.target} {r.details}"
                          for r in db.scalars(select(AuditRecord)))
    assert "person.set_pin" in logged and "730519" not in logged
    later = operator.get(base).get_data(as_text=True)
    assert "730519" not in later and "Set a new PIN" in later


def test_a_generated_pin_is_shown_once(operator: FlaskClient, site: Site) -> None:
    base = f"/customers/persons/{site.bob_public_id}"
    html = post_form(operator, f"{base}/pin", {"pin": ""}, form_page=base).get_data(as_text=True)
    assert 'class="secret keypad-entry"' in html


@pytest.mark.parametrize(("pin", "message"), [
    ("12ab56", "digits only"),
    ("12", "digits"),
    ("123456", "among the first anyone would try"),
])
def test_a_bad_pin_is_refused_beside_the_field(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session], pin: str, message: str
) -> None:
    base = f"/customers/persons/{site.bob_public_id}"
    html = post_form(operator, f"{base}/pin", {"pin": pin}, form_page=base).get_data(as_text=True)
    assert message in error_beside(html, "pin")
    with sessions() as db:
        assert db.get_one(Person, site.bob_id).pin_hash is None


def test_an_unknown_customer_or_person_is_a_friendly_404(signed_in: FlaskClient) -> None:
    response: Any = signed_in.get("/customers/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)


def test_the_purge_date_counts_the_grace_days(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    post_form(operator, "/customers/new", {**GOOD_CUSTOMER, "grace_days": "14"})
    with sessions() as db:
        nimbus = db.scalars(select(Customer).where(Customer.name == "Nimbus B.V.")).one()
    html = operator.get(f"/customers/{nimbus.public_id}/end?last_day=2026-03-31"
                        ).get_data(as_text=True)
    assert '<strong class="purge-on">2026-04-15</strong>' in html
    assert "After 14 grace days" in html and "<strong>0</strong> persons" in html


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": ""}, "name", "Enter the person"),
    ({"name": "Alice", "email": "not an address"}, "email", "is not an e-mail address"),
    ({"name": "A" * 201}, "name", "at most 200"),
])
def test_a_bad_correction_says_what_is_wrong_beside_the_field(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session],
    data: dict[str, str], field: str, message: str,
) -> None:
    path = f"/customers/persons/{site.alice_public_id}/edit"
    html = post_form(operator, path, {"email": "", "notes": "", **data},
                     form_page=path).get_data(as_text=True)
    assert message in error_beside(html, field)
    with sessions() as db:
        assert db.get_one(Person, site.alice_id).name == "Alice Jansen"


def test_a_too_long_restriction_reason_is_refused_beside_the_field(
    operator: FlaskClient, site: Site
) -> None:
    base = f"/customers/persons/{site.alice_public_id}"
    html = post_form(operator, f"{base}/restrict", {"reason": "x" * 501},
                     form_page=base).get_data(as_text=True)
    assert "at most 500" in error_beside(html, "reason")
