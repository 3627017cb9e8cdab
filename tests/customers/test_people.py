"""People: credentials, PINs and keypad codes, restriction, rectification, consent."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.clock import SiteClock
from accessd.customers import people
from accessd.customers.people import (
    add_person,
    get_person,
    keypad_entry,
    list_persons,
    record_consent,
    rectify_person,
    restrict_person,
    set_pin,
    unrestrict_person,
)
from accessd.customers.pins import verify_pin
from accessd.door.decision import Reason, decide
from accessd.door.directory import customer_view, person_view
from accessd.errors import (
    ConsentError,
    DuplicatePersonError,
    EnrollmentError,
    InvalidInputError,
    NotFoundError,
    PersonStateError,
    PinError,
)
from accessd.fingers.enrolment import check_may_enrol
from accessd.models import Credential, FingerLabel, LawfulBasis, Person
from tests.customers import seed

NOW = dt.datetime(2025, 6, 15, 10, 0, tzinfo=dt.UTC)
CLOCK = SiteClock(ZoneInfo("Europe/Amsterdam"), lambda: NOW)
TODAY = CLOCK.today()


@pytest.mark.parametrize(
    ("credential", "has_code"),
    [("none", False), ("finger", False), ("pin", True), ("finger_or_pin", True)],
)
def test_people_who_will_use_a_pin_get_a_keypad_code(
    session: Session, credential: str, has_code: bool
) -> None:
    person = add_person(session, seed.customer(session), " Ada  Lovelace ", "ada@example.com",
                        credential, clock=CLOCK)
    assert (person.name, person.email, person.credential) == (
        "Ada Lovelace", "ada@example.com", Credential(credential))
    assert (person.keypad_code is not None) == has_code
    if has_code:
        assert re.fullmatch(r"[1-9]\d{3}", person.keypad_code or "")


def test_keypad_codes_are_unique_among_existing_people(session: Session) -> None:
    acme = seed.customer(session)
    codes = [add_person(session, acme, f"P{n}", credential="pin", clock=CLOCK).keypad_code
             for n in range(300)]
    assert len(set(codes)) == 300


def test_keypad_codes_grow_a_digit_when_short_ones_keep_being_taken(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = seed.customer(session)
    taken = add_person(session, acme, "First", credential="pin", clock=CLOCK)
    taken.keypad_code = "1111"
    session.flush()
    monkeypatch.setattr(people.secrets, "choice", lambda digits: "1")
    assert people.new_keypad_code(session) == "11111"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "ada@example"}, "email"),
        ({"email": "ada lovelace@example.com"}, "email"),
        ({"credential": "face"}, "credential"),
    ],
)
def test_invalid_people_are_refused_naming_the_field(
    session: Session, kwargs: dict[str, Any], field: str
) -> None:
    values: dict[str, Any] = {"name": "Ada", **kwargs}
    with pytest.raises(InvalidInputError) as caught:
        add_person(session, seed.customer(session), values.pop("name"), **values, clock=CLOCK)
    assert caught.value.field == field


def test_a_generated_pin_is_returned_once_and_stored_only_as_its_hash(session: Session) -> None:
    person = seed.person(session, seed.customer(session))
    person.pin_failures, person.pin_locked_until = 4, NOW
    pin = set_pin(session, person)
    assert re.fullmatch(r"\d{6}", pin)
    assert person.pin_hash is not None and pin not in person.pin_hash
    assert verify_pin(person.pin_hash, pin)
    assert (person.pin_failures, person.pin_locked_until) == (0, None)
    assert keypad_entry(person, pin) == f"{person.keypad_code}*{pin}#"


@pytest.mark.parametrize("before", list(Credential))
def test_setting_a_pin_never_changes_the_way_in_unless_asked(
    session: Session, before: Credential
) -> None:
    person = seed.person(session, seed.customer(session))
    person.credential = before
    set_pin(session, person, "482915")
    assert person.credential is before
    assert person.keypad_code is not None
    assert people.pin_usable(person) is (before in (Credential.PIN, Credential.FINGER_OR_PIN))


def test_setting_a_pin_with_a_chosen_way_in_makes_it_usable(session: Session) -> None:
    person = seed.person(session, seed.customer(session))
    person.credential = Credential.FINGER
    set_pin(session, person, "482915", credential=people.with_pin(Credential.FINGER))
    assert person.credential is Credential.FINGER_OR_PIN and people.pin_usable(person)


def test_correcting_details_can_change_the_way_in_and_gives_a_keypad_code(
    session: Session,
) -> None:
    person = seed.person(session, seed.customer(session))
    assert person.keypad_code is None
    changed = rectify_person(session, person, credential="pin")
    assert changed == ["credential"] and person.credential is Credential.PIN
    assert person.keypad_code is not None
    with pytest.raises(InvalidInputError) as caught:
        rectify_person(session, person, credential="face")
    assert caught.value.field == "credential"


@pytest.mark.parametrize(("name", "email", "refused"), [
    ("Ada Lovelace", "ada@example.com", True),
    ("  ada   lovelace ", "ADA@example.com", True),  # the same person, typed differently
    ("Ada Lovelace", "ada.l@example.com", False),  # another address: another person
    ("Ada Lovelace", None, False),
    ("Ada Byron", "ada@example.com", False),
])
def test_a_duplicate_person_is_refused_beside_the_name_unless_confirmed(
    session: Session, name: str, email: str | None, refused: bool
) -> None:
    customer = seed.customer(session)
    add_person(session, customer, "Ada Lovelace", "ada@example.com", clock=CLOCK)
    if refused:
        with pytest.raises(DuplicatePersonError) as caught:
            add_person(session, customer, name, email, clock=CLOCK)
        assert caught.value.field == "name"
        assert "already has a person named Ada Lovelace" in str(caught.value)
        add_person(session, customer, name, email, clock=CLOCK, allow_duplicate=True)
    else:
        add_person(session, customer, name, email, clock=CLOCK)


def test_a_namesake_at_another_customer_is_no_duplicate(session: Session) -> None:
    add_person(session, seed.customer(session), "Ada Lovelace", "ada@example.com", clock=CLOCK)
    other = seed.customer(session, name="Globex")
    add_person(session, other, "Ada Lovelace", "ada@example.com", clock=CLOCK)


def test_renaming_into_another_persons_name_and_email_is_refused(session: Session) -> None:
    customer = seed.customer(session)
    add_person(session, customer, "Ada Lovelace", "ada@example.com", clock=CLOCK)
    bob = add_person(session, customer, "Bob", "ada@example.com", clock=CLOCK)
    with pytest.raises(DuplicatePersonError):
        rectify_person(session, bob, name="Ada Lovelace")
    assert bob.name == "Bob"


@pytest.mark.parametrize("pin", ["12345", "123456", "111111", "654321", "12a456",
                                 "\uff14\uff18\uff12\uff19\uff11\uff15"])  # full-width
def test_a_weak_or_malformed_pin_is_refused_and_nothing_changes(
    session: Session, pin: str
) -> None:
    person = seed.person(session, seed.customer(session))
    with pytest.raises(PinError):
        set_pin(session, person, pin)
    assert (person.pin_hash, person.keypad_code, person.credential) == (
        None, None, Credential.NONE)


def test_a_restricted_person_is_refused_at_the_door_and_keeps_their_data(
    session: Session,
) -> None:
    acme = seed.customer(session)
    person = seed.person(session, acme)
    person.credential = Credential.FINGER
    finger = seed.finger(session, person)
    restrict_person(session, person, "  request 2025-014:   accuracy contested ", now=NOW)
    assert (person.restricted, person.restricted_reason, person.restricted_since) == (
        True, "request 2025-014: accuracy contested", NOW)
    decision = decide(customer_view(session, acme), person_view(person), 1, dt.date(2025, 6, 15))
    assert decision.reason is Reason.PERSON_RESTRICTED
    assert finger in person.fingers

    unrestrict_person(session, person)
    assert (person.restricted, person.restricted_reason, person.restricted_since) == (
        False, None, None)
    assert decide(customer_view(session, acme), person_view(person), 1,
                  dt.date(2025, 6, 15)).allowed


def test_a_restriction_needs_a_reason(session: Session) -> None:
    person = seed.person(session, seed.customer(session))
    with pytest.raises(InvalidInputError, match="say why") as caught:
        restrict_person(session, person, "  ")
    assert caught.value.field == "reason"
    assert not person.restricted


def test_restricting_twice_or_lifting_nothing_is_refused(session: Session) -> None:
    person = seed.person(session, seed.customer(session))
    with pytest.raises(PersonStateError, match="not restricted"):
        unrestrict_person(session, person)
    restrict_person(session, person, "first", now=NOW)
    with pytest.raises(PersonStateError, match=r"already restricted since 2025-06-15 \(first\)"):
        restrict_person(session, person, "second")
    assert person.restricted_reason == "first"


def test_rectifying_changes_only_what_is_given_and_reports_it(session: Session) -> None:
    person = seed.person(session, seed.customer(session), "Ada Lovelace")
    person.email = "ada@example.com"
    assert rectify_person(session, person, name="Ada King", notes="night shift") == [
        "name", "notes"]
    assert (person.name, person.email, person.notes) == (
        "Ada King", "ada@example.com", "night shift")
    assert rectify_person(session, person, email="", notes="") == ["email", "notes"]
    assert (person.email, person.notes) == (None, None)
    assert rectify_person(session, person, name="Ada King") == []


def test_rectifying_with_a_malformed_email_changes_nothing(session: Session) -> None:
    person = seed.person(session, seed.customer(session), "Ada")
    with pytest.raises(InvalidInputError):
        rectify_person(session, person, name="Ada King", email="nope")
    assert person.name == "Ada"


def test_recorded_consent_lets_enrolment_proceed(session: Session) -> None:
    person = seed.person(session, seed.customer(session, basis=LawfulBasis.CONSENT))
    with pytest.raises(EnrollmentError, match="consent"):
        check_may_enrol(session, person, FingerLabel.RIGHT_INDEX, 2, today=TODAY)
    consent = record_consent(session, person, " 2 ", " alice ", now=NOW)
    assert (consent.text_version, consent.witnessed_by, consent.given_at) == ("2", "alice", NOW)
    assert consent.customer_id == person.customer_id
    check_may_enrol(session, person, FingerLabel.RIGHT_INDEX, 2, today=TODAY)


@pytest.mark.parametrize(
    ("basis", "says"),
    [(None, "no lawful basis recorded"), (LawfulBasis.NECESSITY, "relies on necessity")],
)
def test_consent_is_refused_when_the_customer_does_not_rely_on_it(
    session: Session, basis: LawfulBasis | None, says: str
) -> None:
    person = seed.person(session, seed.customer(session, basis=basis))
    with pytest.raises(ConsentError, match=says):
        record_consent(session, person, "1", "alice")
    assert person.consents == []


def test_a_second_active_consent_is_refused_but_one_after_withdrawal_is_not(
    session: Session,
) -> None:
    person = seed.person(session, seed.customer(session))
    first = record_consent(session, person, "1", "alice", now=NOW)
    with pytest.raises(ConsentError, match="already gave consent on 2025-06-15"):
        record_consent(session, person, "2", "bob")
    first.withdrawn_at = NOW
    assert record_consent(session, person, "2", "bob").text_version == "2"


@pytest.mark.parametrize(("version", "witness", "field"),
                         [("", "alice", "text_version"), ("1", " ", "witnessed_by"),
                          ("v" * 41, "alice", "text_version"), ("1", "w" * 65, "witnessed_by")])
def test_consent_needs_a_text_version_and_a_witness(
    session: Session, version: str, witness: str, field: str
) -> None:
    person = seed.person(session, seed.customer(session))
    with pytest.raises(InvalidInputError) as caught:
        record_consent(session, person, version, witness)
    assert caught.value.field == field


def test_people_are_listed_with_their_fingers_and_consent(session: Session) -> None:
    acme, beta = seed.customer(session, "Acme"), seed.customer(session, "Beta")
    ada, bob = seed.person(session, acme, "Ada"), seed.person(session, acme, "Bob")
    eve = seed.person(session, beta, "Eve")
    seed.finger(session, ada)
    seed.finger(session, ada)
    seed.consent(session, ada)
    seed.consent(session, bob, withdrawn=True)
    everyone = [(s.person, s.customer_name, s.fingers, s.consent)
                for s in list_persons(session)]
    assert everyone == [(ada, "Acme", 2, True), (bob, "Acme", 0, False), (eve, "Beta", 0, False)]
    assert [s.person for s in list_persons(session, beta)] == [eve]


@pytest.mark.parametrize("ref", ["{id}", "{public_id}", "ada lovelace"])
def test_a_person_is_found_by_id_public_id_or_unique_name(session: Session, ref: str) -> None:
    ada = seed.person(session, seed.customer(session), "Ada Lovelace")
    assert get_person(session, ref.format(id=ada.id, public_id=ada.public_id)) is ada


def test_a_shared_name_asks_for_the_id(session: Session) -> None:
    acme, beta = seed.customer(session, "Acme"), seed.customer(session, "Beta")
    one, two = seed.person(session, acme, "Jan Jansen"), seed.person(session, beta, "Jan Jansen")
    with pytest.raises(NotFoundError, match=f"use the id: {one.id} .Acme., {two.id} .Beta."):
        get_person(session, "Jan Jansen")


def test_an_unknown_person_is_refused_with_close_names(session: Session) -> None:
    seed.person(session, seed.customer(session), "Ada Lovelace")
    with pytest.raises(NotFoundError, match="did you mean 'Ada Lovelace'"):
        get_person(session, "Ada Lovelac")
    with pytest.raises(NotFoundError, match="no person '999'"):
        get_person(session, "999")
    assert session.scalars(select(Person)).all()


def test_people_are_found_by_part_of_their_name_email_or_customer(session: Session) -> None:
    acme, globex = seed.customer(session), seed.customer(session, name="Globex")
    add_person(session, acme, "Ada Lovelace", "ada@acme.example", clock=CLOCK)
    add_person(session, globex, "Grace Hopper", None, clock=CLOCK)
    add_person(session, globex, "Ada_100%", None, clock=CLOCK)

    def found(text: str) -> list[str]:
        return [s.person.name for s in people.find_persons(session, text)]

    assert found("  lOVE ") == ["Ada Lovelace"]
    assert found("acme.example") == ["Ada Lovelace"]
    assert found("globex") == ["Ada_100%", "Grace Hopper"]
    assert found("_100%") == ["Ada_100%"] and found("a%") == []
    assert found("   ") == []
