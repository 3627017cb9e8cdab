"""A door for more people than its sensor holds (issue 13): a sensor of 200 slots serving 1,000
permitted people. Its library is a cache of finger-only people first, then the most frequent;
cached people enter by finger alone, the others type their person code and present the
finger, which the daemon checks 1:1 on the chip against their own template; everyone else is
refused. The real pyfingerprint drives the simulator through a pty."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from accessd.door.doors import register_door
from accessd.fingers.sealed import seal
from accessd.history.chain import append_event
from accessd.models import (
    Consent,
    Credential,
    Customer,
    EventKind,
    EventMethod,
    Finger,
    FingerLabel,
    LawfulBasis,
    Person,
    SensorSlot,
    new_public_id,
)
from accessd.zones.grants import grant_default_zones
from hardware_sim import fingers
from tests.daemon.conftest import Door, eventually, installed

SLOTS, PERMITTED = 200, 1000
FINGER_ONLY = 150  # people p0..p149 have no PIN or code: the cache takes them first
FREQUENT = range(900, 950)  # seen often at this door: they fill the rest of the cache


def template(finger: str) -> bytes:
    """What the sensor's RegModel makes of two placements of ``finger``."""
    made = fingers.combine(fingers.characteristics(fingers.impression(finger, 0)),
                           fingers.characteristics(fingers.impression(finger, 1)))
    assert made is not None
    return made


@dataclass(frozen=True)
class Site:
    door: Door
    ids: dict[str, int]  # person name -> id


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with installed(tmp_path, capacity=SLOTS) as door:
        ids: dict[str, int] = {}
        today = dt.date.today()
        with door.sessions.begin() as session:
            door_id = register_door(session, door.settings.door.name)  # the site's first door
            acme = Customer(name="Acme", contract_start=today - dt.timedelta(days=30),
                            lawful_basis=LawfulBasis.CONSENT)
            other = Customer(name="Elsewhere BV", contract_start=today - dt.timedelta(days=30),
                             lawful_basis=LawfulBasis.CONSENT)
            session.add_all([acme, other])
            session.flush()
            grant_default_zones(session, acme)  # Elsewhere holds no grant here
            people = []
            for n in range(PERMITTED):
                finger_only = n < FINGER_ONLY
                people.append(Person(
                    customer_id=acme.id, name=f"p{n}",
                    credential=Credential.FINGER if finger_only else Credential.FINGER_OR_PIN,
                    keypad_code=None if finger_only else f"{10000 + n}"))
            outsider = Person(customer_id=other.id, name="outsider",
                              credential=Credential.FINGER_OR_PIN, keypad_code="99999")
            session.add_all([*people, outsider])
            session.flush()
            for slot, person in enumerate([*people, outsider]):
                customer = acme if person.customer_id == acme.id else other
                session.add(Consent(person_id=person.id, customer_id=customer.id,
                                    text_version="1", witnessed_by="staff"))
                finger = Finger(public_id=new_public_id(), customer_id=customer.id,
                                person_id=person.id, label=FingerLabel.RIGHT_INDEX,
                                sensor_slot=slot)
                seal(session, door.keys, finger, person, customer, template(person.name))
                session.add(finger)
                ids[person.name] = person.id
            session.flush()
            for n in FREQUENT:
                for _ in range(3):
                    append_event(session, kind=EventKind.GRANTED, customer=acme,
                                 person=people[n], door_id=door_id, method=EventMethod.FINGER,
                                 at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        door.start()
        eventually(lambda: door.rig.sensor.template_count == SLOTS,
                   what="the sensor's library to fill", timeout=120)
        yield Site(door, ids)


def _cached(site: Site) -> set[int]:
    with site.door.sessions() as session:
        return set(session.scalars(select(Finger.person_id).join(
            SensorSlot, SensorSlot.finger_id == Finger.id)))


def _awaiting_finger(door: Door) -> bool:
    daemon = door.daemon
    return daemon is not None and daemon.logic is not None and (
        daemon.logic.awaiting_finger(daemon.clock.monotonic()) is not None)


def _attempt(site: Site, finger: str, code: str | None = None) -> tuple[str, str | None, str]:
    door = site.door
    before = door.last_event_id()
    if code is not None:
        door.rig.door.keys(f"{code}#")
        eventually(lambda: _awaiting_finger(door) or door.last_event_id() > before,
                   what="the door to wait for the finger")
    if door.last_event_id() == before:
        door.present(finger)
        eventually(lambda: door.last_event_id() > before, what="the door's decision")
        door.lift()
    event = next(e for e in door.events() if e.id > before)
    return event.kind, event.reason, event.method or ""


def test_the_library_holds_finger_only_people_then_the_most_frequent(site: Site) -> None:
    expected = {site.ids[f"p{n}"] for n in [*range(FINGER_ONLY), *FREQUENT]}
    assert _cached(site) == expected


def test_cached_people_enter_by_finger_alone(site: Site) -> None:
    assert _attempt(site, "p7") == ("granted", "allowed", "finger")
    assert _attempt(site, "p920") == ("granted", "allowed", "finger")


def test_the_others_enter_by_code_and_finger_checked_one_to_one(site: Site) -> None:
    assert _attempt(site, "p500")[0] == "unknown_finger"  # not in this sensor's library
    assert _attempt(site, "p500", code="10500") == ("granted", "allowed", "code_and_finger")
    # Someone else's finger after p500's code: the chip compares it with p500's template only.
    assert _attempt(site, "p501", code="10500") == ("denied", "finger_not_matched",
                                                    "code_and_finger")


def test_everyone_else_is_refused(site: Site) -> None:
    assert _attempt(site, "stranger")[0] == "unknown_finger"
    assert _attempt(site, "outsider", code="99999") == ("denied", "zone_not_granted",
                                                        "code_and_finger")
    assert _attempt(site, "p500", code="00000") == ("denied", "unknown_credential",
                                                    "code_and_finger")
