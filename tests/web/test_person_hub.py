"""The person's page is the hub for everything about a person: details, fingers (remove one,
enrol one again), way in, PIN, consent, restriction, export and erasure, open requests.
Whatever destroys data asks first and says what will be lost; refusals are audited as such."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.door.alarms import raise_alarm
from accessd.models import (
    AlarmKind,
    AuditOutcome,
    AuditRecord,
    CommandKind,
    Consent,
    Credential,
    Customer,
    DeviceCommand,
    Finger,
    FingerLabel,
    Person,
    RequestKind,
)
from accessd.rights.requests import record_request
from tests.privacy.seed import enrol
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import Site, auditor, error_beside, operator, post_form, site

__all__ = ["auditor", "operator", "site"]  # fixtures used by name


@pytest.fixture
def fingers(sessions: sessionmaker[Session], keys: FileKeyProvider, site: Site) -> Site:
    """Alice (consented) with her right index and left thumb enrolled, and a request about her."""
    with sessions.begin() as db:
        acme = db.get_one(Customer, site.customer_id)
        alice = db.get_one(Person, site.alice_id)
        for label in (FingerLabel.RIGHT_INDEX, FingerLabel.LEFT_THUMB):
            enrol(db, keys, acme, alice.name, label=label, person=alice)
        record_request(db, RequestKind.ACCESS, dt.date(2026, 3, 1), requester_name="Alice",
                       person=alice)
    return site


def _hub(site: Site, person: str = "alice") -> str:
    return f"/customers/persons/{getattr(site, f'{person}_public_id')}"


def _audits(sessions: sessionmaker[Session], action: str) -> list[AuditRecord]:
    with sessions() as db:
        rows = list(db.scalars(select(AuditRecord).where(AuditRecord.action == action)
                               .order_by(AuditRecord.id)))
        db.expunge_all()
        return rows


def _labels(sessions: sessionmaker[Session], site: Site) -> set[FingerLabel]:
    with sessions() as db:
        return set(db.scalars(select(Finger.label).where(Finger.person_id == site.alice_id)))


def test_the_hub_shows_everything_about_the_person_and_every_action(
        operator: FlaskClient, fingers: Site) -> None:
    html = operator.get(_hub(fingers)).get_data(as_text=True)
    for text in ("Alice Jansen", "Acme Hosting B.V.", "alice@example.com", "Way in", "Finger",
                 "Right index", "Left thumb", "Remove…", "Enrol again…", "Enrol a finger",
                 "Set a PIN", "Way in from now on", "Restrict", "Withdraw consent…",
                 "Download the export", "Erase Alice Jansen…", "Correct details or way in",
                 "Record a request about Alice Jansen", "Open requests about Alice Jansen",
                 "Access</a>"):
        assert text in html, text


def test_an_auditor_sees_the_person_but_no_action(auditor: FlaskClient, fingers: Site) -> None:
    html = auditor.get(_hub(fingers)).get_data(as_text=True)
    assert "Right index" in html and "Open requests about Alice Jansen" in html
    for text in ("Remove…", "Withdraw consent", "Erase", "Set a PIN", "Download the export"):
        assert text not in html, text


def test_the_old_privacy_addresses_lead_to_the_hub(operator: FlaskClient, fingers: Site) -> None:
    old = f"/privacy/persons/{fingers.alice_public_id}"
    assert operator.get(old).location == _hub(fingers)
    assert operator.get(f"{old}/erase").location == f"{_hub(fingers)}/erase"
    moved = post_form(operator, f"{old}/restrict", {"reason": "accuracy contested"},
                      form_page=_hub(fingers))
    assert moved.status_code == 308 and moved.location == f"{_hub(fingers)}/restrict"


def test_withdrawing_consent_says_what_will_be_lost_then_does_it_and_the_button_goes(
        operator: FlaskClient, fingers: Site, sessions: sessionmaker[Session],
        clock: FakeClock) -> None:
    hub = _hub(fingers)
    confirm = operator.get(f"{hub}/withdraw-consent").get_data(as_text=True)
    assert ("2</strong> fingerprint templates will be deleted from the database and the "
            "sensor of 1 door") in confirm
    assert "way in from then on: <strong>none</strong>" in confirm
    assert len(_labels(sessions, fingers)) == 2  # asking changed nothing
    done = post_form(operator, f"{hub}/withdraw-consent", {}, form_page=hub)
    assert done.location == hub
    html = operator.get(hub).get_data(as_text=True)
    assert "2 fingerprint template(s) deleted" in html
    assert "Withdraw consent…" not in html
    assert f"consent withdrawn on {clock().date().isoformat()}" in html
    assert _labels(sessions, fingers) == set()
    with sessions() as db:
        assert db.scalars(select(Consent.withdrawn_at)).one() is not None
        assert db.scalars(select(DeviceCommand.kind)).all() == [CommandKind.RESYNC]
    assert _audits(sessions, "person.withdraw_consent")[-1].outcome is AuditOutcome.SUCCESS


def test_a_second_withdrawal_is_refused_and_audited_as_refused(
        operator: FlaskClient, fingers: Site, sessions: sessionmaker[Session]) -> None:
    hub = _hub(fingers)
    post_form(operator, f"{hub}/withdraw-consent", {}, form_page=hub)
    again = operator.get(f"{hub}/withdraw-consent").get_data(as_text=True)
    assert "there is nothing to withdraw" in again and "button-danger" not in again
    post_form(operator, f"{hub}/withdraw-consent", {}, form_page=hub)
    assert [r.outcome for r in _audits(sessions, "person.withdraw_consent")] == [
        AuditOutcome.SUCCESS, AuditOutcome.REFUSED]


def test_one_finger_is_removed_after_a_confirmation_and_the_others_stay(
        operator: FlaskClient, fingers: Site, sessions: sessionmaker[Session]) -> None:
    hub = _hub(fingers)
    confirm = operator.get(f"{hub}/fingers/left_thumb/remove").get_data(as_text=True)
    assert "Remove the left thumb of Alice Jansen?" in confirm
    assert "template will be deleted from the database and the sensor of 1 door" in confirm
    assert "1 other finger stays enrolled; consent and way in do not change" in confirm
    post_form(operator, f"{hub}/fingers/left_thumb/remove", {}, form_page=hub)
    assert _labels(sessions, fingers) == {FingerLabel.RIGHT_INDEX}
    assert "Withdraw consent…" in operator.get(hub).get_data(as_text=True)  # consent stays
    assert _audits(sessions, "person.remove_finger")[-1].outcome is AuditOutcome.SUCCESS


def test_enrolling_a_finger_again_removes_it_then_opens_the_enrolment_for_it(
        operator: FlaskClient, fingers: Site, sessions: sessionmaker[Session]) -> None:
    hub = _hub(fingers)
    confirm = operator.get(f"{hub}/fingers/right_index/remove?then=enrol").get_data(
        as_text=True)
    assert "Remove it and enrol it again" in confirm
    done = post_form(operator, f"{hub}/fingers/right_index/remove", {"then": "enrol"},
                     form_page=hub)
    assert done.location.endswith(f"/enrolment/{fingers.alice_public_id}?finger=right_index")
    assert _labels(sessions, fingers) == {FingerLabel.LEFT_THUMB}
    form = operator.get(done.location).get_data(as_text=True)
    assert '<option selected value="right_index">' in form


def test_removing_a_finger_that_is_not_enrolled_is_refused_and_audited(
        operator: FlaskClient, fingers: Site, sessions: sessionmaker[Session]) -> None:
    hub = _hub(fingers)
    page = operator.get(f"{hub}/fingers/left_index/remove", follow_redirects=True)
    assert "has no such finger enrolled" in page.get_data(as_text=True)
    post_form(operator, f"{hub}/fingers/left_index/remove", {}, form_page=hub)
    assert _audits(sessions, "person.remove_finger")[-1].outcome is AuditOutcome.REFUSED
    assert len(_labels(sessions, fingers)) == 2


def test_setting_a_pin_changes_the_way_in_only_as_chosen(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session]) -> None:
    hub = _hub(site)
    offered = operator.get(hub).get_data(as_text=True)
    assert '<option selected value="finger_or_pin">' in offered and "Now: Finger." in offered
    kept = post_form(operator, f"{hub}/pin", {"pin": "730519", "credential": "finger"},
                     form_page=hub).get_data(as_text=True)
    assert "Way in: <strong>Finger</strong>." in kept
    assert "The door does not take this PIN yet" in kept
    with sessions() as db:
        assert db.get_one(Person, site.alice_id).credential is Credential.FINGER
    changed = post_form(operator, f"{hub}/pin", {"pin": "730519",
                                                 "credential": "finger_or_pin"},
                        form_page=hub).get_data(as_text=True)
    assert "Way in: <strong>Finger or PIN</strong> (was: Finger)." in changed
    assert "does not take this PIN" not in changed
    with sessions() as db:
        assert db.get_one(Person, site.alice_id).credential is Credential.FINGER_OR_PIN


def test_correcting_details_changes_the_way_in(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session]) -> None:
    edit = f"{_hub(site)}/edit"
    form = operator.get(edit).get_data(as_text=True)
    assert '<option selected value="finger">' in form
    post_form(operator, edit, {"name": "Alice Jansen", "email": "alice@example.com",
                               "credential": "pin", "notes": ""}, form_page=edit)
    with sessions() as db:
        alice = db.get_one(Person, site.alice_id)
        assert alice.credential is Credential.PIN and alice.keypad_code is not None
    refused = post_form(operator, edit, {"name": "Alice Jansen", "credential": "face"},
                        form_page=edit).get_data(as_text=True)
    assert error_beside(refused, "credential")


def test_a_duplicate_person_is_refused_beside_the_name_until_confirmed(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session]) -> None:
    new = f"/customers/{site.customer_public_id}/persons/new"
    same = {"name": "alice jansen", "email": "Alice@Example.com", "credential": "none"}
    refused = post_form(operator, new, same, form_page=new).get_data(as_text=True)
    assert "already has a person named Alice Jansen" in error_beside(refused, "name")
    assert "This is someone else who has the same name and e-mail" in refused
    assert "alice jansen" in refused  # the input is kept
    assert _audits(sessions, "person.create")[-1].outcome is AuditOutcome.REFUSED
    added = post_form(operator, new, {**same, "same_name_ok": "y"}, form_page=new)
    assert added.status_code == 302
    with sessions() as db:
        assert len(db.scalars(select(Person).where(Person.customer_id == site.customer_id))
                   .all()) == 3


def test_no_enrolment_at_a_door_whose_tamper_alarm_is_open(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session],
        clock: FakeClock) -> None:
    with sessions.begin() as db:
        raise_alarm(db, site.door_id, AlarmKind.TAMPER, "housing opened", at=clock())
    start = f"/enrolment/{site.alice_public_id}"
    form = operator.get(start).get_data(as_text=True)
    assert "Hall A (tamper alarm: not now)" in form
    assert "inspect the reader, then clear the alarm" in form
    refused = post_form(operator, start, {"door": str(site.door_id), "finger": "right_index"},
                        form_page=start).get_data(as_text=True)
    assert "has an open tamper alarm" in error_beside(refused, "door")
    with sessions() as db:
        assert db.scalars(select(DeviceCommand)).all() == []
    assert _audits(sessions, "enrolment.start")[-1].outcome is AuditOutcome.REFUSED


def test_nothing_is_collected_for_an_ended_customer_from_the_hub(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session],
        clock: FakeClock) -> None:
    with sessions.begin() as db:
        db.get_one(Customer, site.customer_id).contract_end = clock().date() - dt.timedelta(
            days=2)
    html = operator.get(_hub(site)).get_data(as_text=True)
    assert "No finger can be enrolled" in html and "Enrol a finger" not in html
    new = f"/customers/{site.customer_public_id}/persons/new"
    post_form(operator, new, {"name": "Zed", "credential": "none"}, form_page="/customers/")
    assert _audits(sessions, "person.create")[-1].outcome is AuditOutcome.REFUSED


def test_the_request_form_picks_the_person_by_name_with_customer_and_email(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session]) -> None:
    html = operator.get("/privacy/requests/new").get_data(as_text=True)
    assert "Alice Jansen (Acme Hosting B.V., alice@example.com)" in html
    assert "Bob de Vries (Acme Hosting B.V., no e-mail)" in html
    assert "Person id" not in html
    chosen = operator.get(f"/privacy/requests/new?person={site.alice_public_id}").get_data(
        as_text=True)
    assert f'<option selected value="{site.alice_public_id}">' in chosen
    made = post_form(operator, "/privacy/requests/new", {
        "kind": "access", "received_on": "2026-03-01", "requester_name": "Alice",
        "person": site.alice_public_id, "customer": ""}, form_page="/privacy/requests/new")
    assert made.status_code == 302
    hub = operator.get(_hub(site)).get_data(as_text=True)
    assert "Open requests about Alice Jansen" in hub and "received 2026-03-01" in hub


def test_erasing_from_the_hub_asks_first_and_names_the_open_requests(
        operator: FlaskClient, fingers: Site, sessions: sessionmaker[Session]) -> None:
    hub = _hub(fingers)
    confirm = operator.get(f"{hub}/erase").get_data(as_text=True)
    assert "2</strong> fingerprint templates deleted from the database" in confirm
    assert "1</strong> open request about them kept" in confirm
    done = post_form(operator, f"{hub}/erase", {"then": "requests"}, form_page=hub)
    assert done.location == "/privacy/requests"
    assert operator.get(hub).status_code == 404


@pytest.mark.parametrize("path", ["withdraw-consent", "erase", "fingers/right_index/remove"])
def test_a_confirmation_page_changes_nothing(
        operator: FlaskClient, fingers: Site, sessions: sessionmaker[Session],
        path: str) -> None:
    before: Any = _labels(sessions, fingers)
    assert operator.get(f"{_hub(fingers)}/{path}").status_code == 200
    assert _labels(sessions, fingers) == before


def test_without_consent_on_record_the_fingerprints_are_deleted_not_a_consent_withdrawn(
        operator: FlaskClient, site: Site, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    with sessions.begin() as db:
        vault = db.scalars(select(Customer).where(Customer.name == "Vault Co")).one()
        person = Person(customer=vault, name="Nadia Noor")
        db.add(person)
        db.flush()
        enrol(db, keys, vault, person.name, person=person)
        public_id = person.public_id
    hub = f"/customers/persons/{public_id}"
    html = operator.get(hub).get_data(as_text=True)
    assert "Delete all fingerprints…" in html and "Withdraw consent…" not in html
    assert "Vault Co relies on necessity" in html
    confirm = operator.get(f"{hub}/withdraw-consent").get_data(as_text=True)
    assert "<h1>Delete all fingerprints of Nadia Noor?</h1>" in confirm
    assert ">Delete 1 template</button>" in confirm


@pytest.mark.parametrize(("search", "shown", "hidden"), [
    ("ALICE", ["Alice Jansen (Acme"], ["Bob de Vries"]),
    ("example.com", ["Alice Jansen"], ["Bob de Vries"]),  # her e-mail
    ("acme", ["Alice Jansen", "Bob de Vries"], []),  # their customer
    ("100%_", [], ["Alice Jansen", "Bob de Vries"]),  # wildcards are plain characters
])
def test_the_request_form_finds_a_person_by_part_of_a_name_email_or_customer(
        operator: FlaskClient, site: Site, search: str, shown: list[str],
        hidden: list[str]) -> None:
    html = operator.get("/privacy/requests/new", query_string={"q": search}).get_data(
        as_text=True)
    assert f"{len(shown)} {'person matches' if len(shown) == 1 else 'people match'} “{search}”" \
        in html
    for name in shown:
        assert name in html, name
    for name in hidden:
        assert f"{name} (" not in html, name
