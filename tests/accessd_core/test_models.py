"""The models on SQLite and PostgreSQL: round trips, UTC times, and what the schema refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import (
    EncryptedTemplate,
    FileKeyProvider,
    WrappedDataKey,
    decrypt_template,
    unwrap_data_key,
)
from accessd.models import (
    AccessEvent,
    Consent,
    Customer,
    DataKey,
    DeviceCommand,
    Door,
    EventChain,
    EventKind,
    Finger,
    Person,
)
from tests.accessd_core.factories import (
    add_customer,
    add_event,
    add_person_with_finger,
    template_for,
)


def test_customer_person_finger_and_event_round_trip(
    sessions: sessionmaker[Session], keyring: FileKeyProvider
) -> None:
    with sessions.begin() as session:
        door = Door(name="hall-a")
        session.add(door)
        customer = add_customer(session, keyring)
        door.customers.append(customer)
        person, finger = add_person_with_finger(session, keyring, customer)
        add_event(session, EventKind.GRANTED, customer=customer, person=person, door=door)
        add_event(session, EventKind.UNKNOWN_FINGER, door=door)
        slot = finger.sensor_slot

    with sessions() as session:
        found = session.scalars(select(Finger).where(Finger.sensor_slot == slot)).one()
        person = found.person
        customer = person.customer
        assert [d.name for d in customer.doors] == ["hall-a"]
        assert customer.data_key is not None
        data_key = unwrap_data_key(
            keyring,
            WrappedDataKey(customer.data_key.master_key_id, customer.data_key.wrapped_key),
            customer_id=customer.public_id,
        )
        plaintext = decrypt_template(
            data_key,
            EncryptedTemplate(found.template_nonce, found.template_ciphertext),
            customer_id=customer.public_id,
            person_id=person.public_id,
            finger_id=found.public_id,
        )
        assert plaintext == template_for("Ada Lovelace")
        events = session.scalars(select(AccessEvent).order_by(AccessEvent.id)).all()
        assert [(e.kind, e.customer_id, e.person_id) for e in events] == [
            (EventKind.GRANTED, customer.id, person.id),
            (EventKind.UNKNOWN_FINGER, None, None),
        ]
        assert events[0].prev_digest == bytes(32)
        assert person.consents[0].witnessed_by == "operator1"
        for stamp in (customer.created_at, events[0].at, found.enrolled_at):
            assert stamp.tzinfo is not None
            assert stamp.utcoffset() == dt.timedelta(0)


def test_times_in_another_zone_are_stored_as_utc(sessions: sessionmaker[Session]) -> None:
    amsterdam = dt.timezone(dt.timedelta(hours=2))
    with sessions.begin() as session:
        session.add(Door(name="d", created_at=dt.datetime(2025, 6, 1, 12, tzinfo=amsterdam)))
    with sessions() as session:
        stored = session.scalars(select(Door.created_at)).one()
        assert stored == dt.datetime(2025, 6, 1, 10, tzinfo=dt.UTC)
        assert stored.tzinfo == dt.UTC


def test_naive_datetimes_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(Door(name="d", created_at=dt.datetime(2025, 6, 1, 12)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


def test_a_purge_deleting_the_customer_reaches_every_row_of_it(
    sessions: sessionmaker[Session], keyring: FileKeyProvider
) -> None:
    with sessions.begin() as session:
        door = Door(name="hall-a")
        session.add(door)
        keep = add_customer(session, keyring, "Keep BV")
        add_person_with_finger(session, keyring, keep, "Kees Keep")
        gone = add_customer(session, keyring, "Gone BV")
        person, _ = add_person_with_finger(session, keyring, gone, "Greta Gone")
        add_event(session, EventKind.GRANTED, customer=gone, person=person, door=door)
        session.add(DeviceCommand(door=door, person_id=person.id, kind="enroll",
                                  created_by="op"))  # fmt: skip
        gone_id = gone.id
    with sessions.begin() as session:
        session.execute(delete(Customer).where(Customer.id == gone_id))
    with sessions() as session:
        for model in (Person, Finger, Consent, DataKey, EventChain, AccessEvent, DeviceCommand):
            left = session.scalar(
                select(func.count()).select_from(model).where(
                    *([model.customer_id == gone_id] if hasattr(model, "customer_id") else [])
                )
            )
            assert left == 0, model.__name__
        assert session.scalar(select(func.count()).select_from(Person)) == 1
        assert session.scalar(select(func.count()).select_from(Finger)) == 1


def test_a_data_key_cannot_go_while_its_ciphertexts_remain(
    sessions: sessionmaker[Session], keyring: FileKeyProvider
) -> None:
    with sessions.begin() as session:
        customer = add_customer(session, keyring)
        add_person_with_finger(session, keyring, customer)
        customer_id = customer.id
    with sessions() as session, pytest.raises(IntegrityError):
        session.execute(delete(DataKey).where(DataKey.customer_id == customer_id))
        session.flush()


def test_a_finger_cannot_belong_to_another_customer_than_its_person(
    sessions: sessionmaker[Session], keyring: FileKeyProvider
) -> None:
    with sessions.begin() as session:
        first = add_customer(session, keyring, "First")
        other = add_customer(session, keyring, "Other")
        _, finger = add_person_with_finger(session, keyring, first)
        finger_id, other_id = finger.id, other.id
    with sessions() as session, pytest.raises(IntegrityError):
        session.get_one(Finger, finger_id).customer_id = other_id
        session.flush()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"grace_days": 91}, "more than 90 days of grace"),
        ({"grace_days": -1}, "negative grace"),
        ({"contract_end": dt.date(2024, 12, 31)}, "ends before it starts"),
        ({"lawful_basis": "necessity", "necessity_reference": None}, "necessity without a DPIA"),
    ],
)
def test_the_schema_refuses_an_impossible_contract(
    sessions: sessionmaker[Session], keyring: FileKeyProvider, change: dict[str, object], why: str
) -> None:
    with sessions() as session:
        customer = add_customer(session, keyring)
        for key, value in change.items():
            setattr(customer, key, value)
        with pytest.raises(IntegrityError):
            session.flush()


def test_two_fingers_cannot_share_a_sensor_slot(
    sessions: sessionmaker[Session], keyring: FileKeyProvider
) -> None:
    with sessions() as session:
        customer = add_customer(session, keyring)
        _, first = add_person_with_finger(session, keyring, customer, "Ann One")
        _, second = add_person_with_finger(session, keyring, customer, "Bob Two")
        second.sensor_slot = first.sensor_slot
        with pytest.raises(IntegrityError):
            session.flush()


def test_an_unknown_event_kind_is_refused_before_it_reaches_the_database(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        chain = EventChain(scope="facility")
        session.add(chain)
        session.flush()
        session.add(AccessEvent(chain=chain, seq=1, kind="opened_by_magic",
                                prev_digest=b"", digest=b""))  # fmt: skip
        with pytest.raises(StatementError, match="opened_by_magic"):
            session.flush()
