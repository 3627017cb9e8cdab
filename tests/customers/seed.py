"""Rows the people tests need, written directly (not through the services under test)."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy.orm import Session

from accessd.history.chain import append_event, unlink_people
from accessd.models import (
    AccessEvent,
    Consent,
    Customer,
    DataKey,
    Door,
    EventKind,
    EventMethod,
    Finger,
    FingerLabel,
    LawfulBasis,
    Person,
)

_slots = itertools.count(1)
_labels = list(FingerLabel)


def customer(
    session: Session,
    name: str = "Acme Hosting",
    *,
    start: dt.date = dt.date(2025, 1, 1),
    end: dt.date | None = None,
    grace_days: int = 0,
    basis: LawfulBasis | None = LawfulBasis.CONSENT,
) -> Customer:
    row = Customer(name=name, contract_start=start, contract_end=end, grace_days=grace_days,
                   lawful_basis=basis,
                   necessity_reference="DPIA-1" if basis is LawfulBasis.NECESSITY else None)
    session.add(row)
    session.flush()
    return row


def person(session: Session, owner: Customer, name: str = "Ada Lovelace") -> Person:
    row = Person(customer=owner, name=name)
    session.add(row)
    session.flush()
    return row


def door(session: Session, name: str = "main") -> Door:
    row = Door(name=name)
    session.add(row)
    session.flush()
    return row


def finger(session: Session, owner: Person) -> Finger:
    """An enrolled finger with a stand-in ciphertext (nothing here decrypts it)."""
    key = owner.customer.data_key
    if key is None:
        key = DataKey(customer=owner.customer, master_key_id="test", wrapped_key=b"wrapped")
        session.add(key)
        session.flush()
    row = Finger(customer_id=owner.customer_id, person_id=owner.id,
                 label=_labels[len(owner.fingers)], sensor_slot=next(_slots),
                 template_ciphertext=b"ciphertext", template_nonce=b"nonce", data_key=key)
    session.add(row)
    session.flush()
    session.refresh(owner)
    return row


def consent(session: Session, owner: Person, *, withdrawn: bool = False) -> Consent:
    row = Consent(person=owner, customer_id=owner.customer_id, text_version="1",
                  witnessed_by="alice",
                  withdrawn_at=dt.datetime(2025, 2, 1, tzinfo=dt.UTC) if withdrawn else None)
    session.add(row)
    session.flush()
    return row


def event(
    session: Session,
    kind: EventKind,
    at: dt.datetime,
    *,
    who: Person | None = None,
    owner: Customer | None = None,
    where: Door | None = None,
    reason: str | None = None,
) -> AccessEvent:
    """An event appended to its hash chain, as the door records it."""
    row = append_event(
        session, kind=kind, customer=who.customer if who is not None else owner, person=who,
        door_id=None if where is None else where.id,
        method=EventMethod.FINGER if kind in (EventKind.GRANTED, EventKind.DENIED) else None,
        reason=reason, at=at)
    session.flush()
    return row


def anonymise(session: Session, who: Person) -> None:
    """What erasing a person does to their history: the events stay, the person goes."""
    unlink_people(session, [who.id])
    session.expire_all()
