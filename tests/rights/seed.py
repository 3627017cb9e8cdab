"""A small world for the rights and backup tests, built the way the services build it: sealed
templates (``accessd.fingers.sealed.seal``), chained events
(``accessd.history.chain.append_event``).

Every personal value is a canary: a string found nowhere else, so a test can grep raw
database files, backups and exports for it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from accessd.crypto import KeyProvider
from accessd.fingers.sealed import seal
from accessd.history.chain import append_event
from accessd.models import (
    Consent,
    Credential,
    Customer,
    Door,
    EventKind,
    EventMethod,
    Finger,
    FingerLabel,
    LawfulBasis,
    Person,
    SensorSlot,
    new_public_id,
)
from accessd.models.customers import door_customers

T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)


def template_for(tag: str) -> bytes:
    """A 512-byte stand-in for a sensor template that says whose it is."""
    return (f"TEMPLATE[{tag}]".encode() * 40)[:512]


@dataclass
class Someone:
    """One seeded person: ids to look them up, canaries to grep for."""

    id: int
    public_id: uuid.UUID
    customer_id: int
    name: str
    email: str
    finger_ids: list[int] = field(default_factory=list)
    finger_public_ids: list[uuid.UUID] = field(default_factory=list)
    templates: list[bytes] = field(default_factory=list)
    ciphertexts: list[bytes] = field(default_factory=list)


@dataclass
class World:
    """Acme (Ada, Bob) and Globex (Carol), two doors, a history for each."""

    acme_id: int
    acme_public_id: uuid.UUID
    globex_id: int
    globex_public_id: uuid.UUID
    door_ids: list[int]
    ada: Someone
    bob: Someone
    carol: Someone

    @property
    def people(self) -> list[Someone]:
        return [self.ada, self.bob, self.carol]


def add_customer(session: Session, name: str, *, contract_end: dt.date | None = None) -> Customer:
    customer = Customer(public_id=new_public_id(), name=name, contract_start=dt.date(2024, 1, 1),
                        contract_end=contract_end, lawful_basis=LawfulBasis.CONSENT)
    session.add(customer)
    session.flush()
    return customer


def add_person(session: Session, customer: Customer, name: str, email: str,
               credential: Credential = Credential.FINGER_OR_PIN) -> Person:
    person = Person(public_id=new_public_id(), customer_id=customer.id, name=name, email=email,
                    credential=credential, keypad_code=None)
    session.add(person)
    session.flush()
    session.add(Consent(person_id=person.id, customer_id=customer.id, text_version="1",
                        witnessed_by="operator1", given_at=T0 - dt.timedelta(days=30)))
    return person


def enrol(session: Session, keys: KeyProvider, customer: Customer, person: Person,
          label: FingerLabel, slot: int, doors: list[Door], someone: Someone) -> Finger:
    template = template_for(f"{someone.name}/{label}")
    finger = Finger(public_id=new_public_id(), customer_id=customer.id, person_id=person.id,
                    label=label, sensor_slot=slot, enrolled_by="operator1",
                    enrolled_at=T0 - dt.timedelta(days=29))
    seal(session, keys, finger, person, customer, template)
    session.add(finger)
    session.flush()
    for door in doors:
        session.add(SensorSlot(door_id=door.id, slot=slot, finger_id=finger.id))
    someone.finger_ids.append(finger.id)
    someone.finger_public_ids.append(finger.public_id)
    someone.templates.append(template)
    someone.ciphertexts.append(finger.template_ciphertext)
    return finger


def seed_world(session: Session, keys: KeyProvider, *, events_each: int = 4) -> World:
    acme = add_customer(session, "Acme Hosting CANARY-ACME")
    globex = add_customer(session, "Globex CANARY-GLOBEX")
    doors = [Door(name="main"), Door(name="cage-7")]
    session.add_all(doors)
    session.flush()
    session.execute(insert(door_customers).values(door_id=doors[1].id, customer_id=acme.id))
    people = []
    slot = 1
    for customer, name, email, labels in (
        (acme, "Ada CANARY-ADA-Lovelace", "ada.canary@acme.example",
         (FingerLabel.RIGHT_INDEX, FingerLabel.LEFT_INDEX)),
        (acme, "Bob CANARY-BOB-Builder", "bob.canary@acme.example", (FingerLabel.RIGHT_THUMB,)),
        (globex, "Carol CANARY-CAROL-Shaw", "carol.canary@globex.example",
         (FingerLabel.RIGHT_INDEX,)),
    ):
        person = add_person(session, customer, name, email)
        someone = Someone(person.id, person.public_id, customer.id, name, email)
        for label in labels:
            enrol(session, keys, customer, person, label, slot, doors, someone)
            slot += 1
        for i in range(events_each):
            append_event(session, kind=EventKind.GRANTED if i % 3 else EventKind.DENIED,
                         customer=customer, person=person, door_id=doors[i % 2].id,
                         method=EventMethod.FINGER, reason=None if i % 3 else "outside schedule",
                         at=T0 + dt.timedelta(minutes=10 * len(people) + i))
        people.append(someone)
    # Events naming no person: a PIN typed wrong, an unknown finger (facility chain).
    append_event(session, kind=EventKind.DENIED, customer=acme, door_id=doors[0].id,
                 method=EventMethod.PIN, reason="wrong PIN", at=T0 + dt.timedelta(hours=2))
    append_event(session, kind=EventKind.UNKNOWN_FINGER, door_id=doors[0].id,
                 method=EventMethod.FINGER, at=T0 + dt.timedelta(hours=3))
    session.flush()
    return World(acme.id, acme.public_id, globex.id, globex.public_id, [d.id for d in doors],
                 *people)


def raw_database_bytes(db_path: Path) -> bytes:
    """The database file and its -wal, as they lie on disk."""
    data = db_path.read_bytes()
    wal = Path(f"{db_path}-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")
