"""Rows the tests need, built the way enrolment will build them (encrypted, bound to the row)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from sqlalchemy.orm import Session

from accessd.crypto import KeyProvider, encrypt_template, generate_data_key, wrap_data_key
from accessd.models import (
    FACILITY_SCOPE,
    GENESIS_DIGEST,
    AccessEvent,
    Consent,
    Customer,
    DataKey,
    Door,
    EventChain,
    EventKind,
    EventMethod,
    Finger,
    FingerLabel,
    LawfulBasis,
    Person,
    new_public_id,
)

_slots = itertools.count(1)


def template_for(name: str) -> bytes:
    """A recognisable 512-byte stand-in for a sensor template."""
    return (f"TEMPLATE-OF-{name}|".encode() * 40)[:512]


def add_customer(session: Session, keys: KeyProvider, name: str = "Acme Hosting") -> Customer:
    """A customer under contract with its wrapped data key."""
    customer = Customer(
        public_id=new_public_id(),
        name=name,
        contract_start=dt.date(2025, 1, 1),
        lawful_basis=LawfulBasis.CONSENT,
    )
    wrapped = wrap_data_key(keys, generate_data_key(), customer_id=customer.public_id)
    customer.data_key = DataKey(master_key_id=wrapped.master_key_id, wrapped_key=wrapped.wrapped)
    session.add(customer)
    session.flush()
    return customer


def add_person_with_finger(
    session: Session, keys: KeyProvider, customer: Customer, name: str = "Ada Lovelace"
) -> tuple[Person, Finger]:
    """A person who consented, with one enrolled (encrypted) finger."""
    from accessd.crypto import WrappedDataKey, unwrap_data_key

    assert customer.data_key is not None
    data_key = unwrap_data_key(
        keys,
        WrappedDataKey(customer.data_key.master_key_id, customer.data_key.wrapped_key),
        customer_id=customer.public_id,
    )
    person = Person(customer=customer, name=name, email=f"{name.split()[0].lower()}@example.com")
    session.add(person)
    session.flush()
    finger = Finger(
        public_id=new_public_id(),
        customer_id=customer.id,
        person=person,
        label=FingerLabel.RIGHT_INDEX,
        sensor_slot=next(_slots),
        data_key=customer.data_key,
        template_ciphertext=b"",
        template_nonce=b"",
    )
    encrypted = encrypt_template(
        data_key,
        template_for(name),
        customer_id=customer.public_id,
        person_id=person.public_id,
        finger_id=finger.public_id,
    )
    finger.template_ciphertext, finger.template_nonce = encrypted.ciphertext, encrypted.nonce
    session.add_all(
        [finger, Consent(person=person, customer_id=customer.id, text_version="1",
                         witnessed_by="operator1")]
    )  # fmt: skip
    session.flush()
    return person, finger


def add_event(
    session: Session,
    kind: EventKind,
    *,
    customer: Customer | None = None,
    person: Person | None = None,
    door: Door | None = None,
) -> AccessEvent:
    """An event appended to its chain (a simplified digest: the chain module is not ours)."""
    scope = f"customer:{customer.public_id.hex}" if customer else FACILITY_SCOPE
    chain = session.query(EventChain).filter_by(scope=scope).one_or_none()
    if chain is None:
        chain = EventChain(scope=scope, customer_id=customer.id if customer else None,
                           head_digest=GENESIS_DIGEST, last_seq=0)  # fmt: skip
        session.add(chain)
        session.flush()
    digest = hashlib.sha256(chain.head_digest + kind.value.encode()).digest()
    event = AccessEvent(
        chain=chain,
        seq=chain.last_seq + 1,
        customer_id=customer.id if customer else None,
        person_id=person.id if person else None,
        door=door,
        kind=kind,
        method=EventMethod.FINGER if person else None,
        prev_digest=chain.head_digest,
        digest=digest,
    )
    chain.head_digest, chain.last_seq = digest, chain.last_seq + 1
    session.add(event)
    session.flush()
    return event
