"""Starting an enrolment from the panel: consent as part of the flow, early refusals in the
service's own words, the command queued for the door, and its progress as JSON."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from accessd.customers.people import record_consent
from accessd.models import (
    CommandKind,
    CommandState,
    Consent,
    Customer,
    DeviceCommand,
    Person,
)
from tests.web.pages_fixtures import Site, auditor, error_beside, operator, post_form, site

__all__ = ["auditor", "operator", "site"]


def _start(client: FlaskClient, public_id: str, **data: str) -> TestResponse:
    path = f"/enrolment/{public_id}"
    return post_form(client, path, {"finger": "right_index", **data}, form_page=path)


def test_the_form_shows_the_consent_text_version_when_consent_is_needed(
    operator: FlaskClient, site: Site
) -> None:
    html = operator.get(f"/enrolment/{site.bob_public_id}").get_data(as_text=True)
    assert "version 1" in html and "recorded as the witness" in html
    assert "The person read the consent text and agreed" in html
    consented = operator.get(f"/enrolment/{site.alice_public_id}").get_data(as_text=True)
    assert "The person read the consent text and agreed" not in consented


def test_without_the_confirmation_nothing_is_recorded_or_queued(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    response = _start(operator, site.bob_public_id, door=str(site.door_id))
    html = response.get_data(as_text=True)
    assert "Confirm that the person agreed" in error_beside(html, "consent")
    with sessions() as db:
        assert db.scalars(select(Consent).where(Consent.person_id == site.bob_id)).all() == []
        assert db.scalars(select(DeviceCommand)).all() == []


def test_consent_is_recorded_with_version_and_witness_and_the_command_queued(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    response = _start(operator, site.bob_public_id, door=str(site.door_id), consent="y")
    assert response.status_code == 302
    with sessions() as db:
        consent = db.scalars(select(Consent).where(Consent.person_id == site.bob_id)).one()
        assert (consent.text_version, consent.witnessed_by) == ("1", "someone-operator")
        command = db.scalars(select(DeviceCommand)).one()
        assert command.kind is CommandKind.ENROLL and command.person_id == site.bob_id
        assert command.args == {"finger": "right_index", "by": "someone-operator"}
        assert response.location == f"/enrolment/commands/{command.id}"


def test_a_customer_without_lawful_basis_is_refused_before_anyone_goes_to_the_reader(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as db:
        db.execute(update(Customer).values(lawful_basis=None))
    html = operator.get(f"/enrolment/{site.alice_public_id}").get_data(as_text=True)
    assert "has no lawful basis for biometrics recorded" in html
    assert "Start enrolment" not in html


def test_a_finger_already_enrolled_is_refused_beside_the_finger(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from accessd.fingers import enrolment

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise enrolment.EnrollmentError("Alice Jansen's right index is already enrolled")

    monkeypatch.setattr("web.pages.enrolment.check_may_enrol", refuse)
    response = _start(operator, site.alice_public_id, door=str(site.door_id))
    html = response.get_data(as_text=True)
    assert "right index is already enrolled" in error_beside(html, "finger")
    with sessions() as db:
        assert db.scalars(select(DeviceCommand)).all() == []


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"door": "999", "finger": "right_index"}, "door", "Not a valid choice"),
    ({"door": "x", "finger": "right_index"}, "door", "Invalid Choice"),
    ({"finger": "tail"}, "finger", "Not a valid choice"),
])
def test_a_bad_enrolment_form_says_what_is_wrong_beside_the_field(
    operator: FlaskClient, site: Site, data: dict[str, str], field: str, message: str
) -> None:
    data = {"door": str(site.door_id), **data}
    html = _start(operator, site.alice_public_id, **data).get_data(as_text=True)
    assert message.lower() in error_beside(html, field).lower()


def test_the_progress_page_and_its_json_follow_the_daemon(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    location = _start(operator, site.alice_public_id, door=str(site.door_id)).location
    page = operator.get(location).get_data(as_text=True)
    assert "waiting for the door&#39;s daemon" in page and "enrolment.js" in page
    state = operator.get(f"{location}/state.json").get_json()
    assert state == {"state": "pending", "finished": False, "ok": False, "step": None,
                     "progress": "waiting for the door's daemon to pick this up"}
    with sessions.begin() as db:
        db.execute(update(DeviceCommand).values(state=CommandState.RUNNING, progress="lift"))
    assert operator.get(f"{location}/state.json").get_json()["step"] == 1
    with sessions.begin() as db:
        db.execute(update(DeviceCommand).values(
            state=CommandState.FAILED, progress="no finger was placed within 20 s"))
    state = operator.get(f"{location}/state.json").get_json()
    assert state["finished"] and not state["ok"]
    assert "Enrolment failed: no finger was placed" in operator.get(location).get_data(as_text=True)


def test_an_auditor_cannot_enrol(auditor: FlaskClient, site: Site) -> None:
    assert auditor.get(f"/enrolment/{site.alice_public_id}").status_code == 403


def test_consent_given_earlier_is_not_asked_again(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as db:
        record_consent(db, db.get_one(Person, site.bob_id), "1", "ada")
    assert _start(operator, site.bob_public_id,
                  door=str(site.door_id)).status_code == 302
