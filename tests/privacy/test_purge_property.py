"""Property: whatever happened before, a purge leaves nothing of that customer readable and
everything of the others intact."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker, upgrade
from accessd.fingers.sealed import open_sealed
from accessd.history.chain import verify_chains
from accessd.models import (
    AccessEvent,
    Consent,
    Customer,
    DataKey,
    EventChain,
    EventKind,
    Finger,
    FingerLabel,
    Person,
    PersonEvent,
    door_customers,
)
from accessd.privacy.purge import run_due_purges
from tests.privacy.seed import access, add_customer, add_door, enrol, template_bytes

CUSTOMERS = 3  # customer 0's contract ended; it is the one purged
PEOPLE = 3
NOW = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
LABELS = [FingerLabel.RIGHT_INDEX, FingerLabel.LEFT_INDEX]

who = st.tuples(st.integers(0, CUSTOMERS - 1), st.integers(0, PEOPLE - 1))
operations = st.lists(st.one_of(
    st.tuples(st.just("enrol"), who, st.integers(0, len(LABELS) - 1)),
    st.tuples(st.just("access"), who),
    st.tuples(st.just("unknown"), st.just((0, 0))),
    st.tuples(st.just("restrict"), who),
    st.tuples(st.just("lift"), who),
    st.tuples(st.just("export"), who),
    st.tuples(st.just("withdraw"), who),
    st.tuples(st.just("erase"), who),
), max_size=25)


@dataclass
class Expected:
    """What the database should hold of each customer, kept alongside it."""

    templates: dict[str, bytes] = field(default_factory=dict)  # finger public id -> plaintext
    ciphertexts: dict[int, list[bytes]] = field(default_factory=dict)  # customer -> every one
    events: dict[int, int] = field(default_factory=dict)  # customer -> events
    persons: dict[tuple[int, int], int] = field(default_factory=dict)  # (c, p) -> person id


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FileKeyProvider]:
    base = tmp_path_factory.mktemp("property")
    db = base / "migrated.sqlite3"
    engine = create_db_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    return db, FileKeyProvider.create(base / "keyring.json")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="accessd-property-") as directory:
        yield Path(directory)


def _apply(session: Session, keyring: FileKeyProvider, customers: list[Customer],
           step: tuple, expected: Expected, at: dt.datetime) -> None:
    kind, (c, p) = step[0], step[1]
    customer = customers[c]
    person = session.get(Person, expected.persons[(c, p)]) if (c, p) in expected.persons else None
    if kind == "enrol":
        label = LABELS[step[2]]
        if person is not None and any(f.label == label for f in person.fingers):
            return
        template = template_bytes(f"{c}-{p}-{label}")
        person, finger = enrol(session, keyring, customer, f"Person {c}.{p}", label=label,
                               template=template, person=person)
        expected.persons[(c, p)] = person.id
        expected.templates[finger.public_id.hex] = template
        expected.ciphertexts.setdefault(c, []).append(finger.template_ciphertext)
    elif kind == "access" and person is not None:
        access(session, customer, person, at)
        expected.events[c] = expected.events.get(c, 0) + 1
    elif kind == "unknown":
        access(session, None, None, at, EventKind.UNKNOWN_FINGER)
    elif kind in ("restrict", "lift") and person is not None:
        person.restricted = kind == "restrict"
    elif kind == "export" and person is not None:
        assert session.scalars(select(Finger).where(Finger.person_id == person.id)).all() \
            == person.fingers
    elif kind == "withdraw" and person is not None:
        for finger in person.fingers:
            del expected.templates[finger.public_id.hex]
        session.execute(delete(Finger).where(Finger.person_id == person.id))
        session.execute(update(Consent).where(Consent.person_id == person.id)
                        .values(withdrawn_at=at, withdrawal_recorded_by="op"))
        session.expire(person)
    elif kind == "erase" and person is not None:
        for finger in person.fingers:
            del expected.templates[finger.public_id.hex]
        session.execute(update(AccessEvent).where(AccessEvent.person_id == person.id)
                        .values(person_id=None, subject_salt=None))
        session.execute(delete(Person).where(Person.id == person.id))
        session.expunge(person)
        del expected.persons[(c, p)]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_a_purge_leaves_nothing_of_that_customer_and_everything_of_the_others(
        template_db: tuple[Path, FileKeyProvider], workdir: Path, steps: list[tuple]) -> None:
    template, keyring = template_db
    handle, name = tempfile.mkstemp(dir=workdir, suffix=".sqlite3")
    os.close(handle)
    db = Path(name)
    shutil.copyfile(template, db)
    engine = create_db_engine(f"sqlite:///{db}")
    sessions = make_sessionmaker(engine)
    expected = Expected()
    try:
        with sessions.begin() as session:
            customers = [add_customer(session, f"Customer {c}", contract_end=dt.date(2025, 6, 30)
                                      if c == 0 else None) for c in range(CUSTOMERS)]
            add_door(session, "main", customers)
            ids = [c.id for c in customers]
            for i, step in enumerate(steps):
                _apply(session, keyring, customers, step, expected,
                       dt.datetime(2025, 5, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i))
        with sessions() as session:
            key_of_purged = session.scalar(select(DataKey.wrapped_key).where(
                DataKey.customer_id == ids[0]))

        records = run_due_purges(sessions, keyring, engine, NOW)

        assert len(records) == 1
        with sessions() as session:
            _assert_nothing_left(session, ids[0], expected.ciphertexts.get(0, []), key_of_purged)
            _assert_intact(session, keyring, ids[1:], expected)
            assert list(verify_chains(session)) == []
            # The per-person index is exactly the events that still name someone.
            assert {tuple(r) for r in session.execute(select(
                PersonEvent.person_id, PersonEvent.at, PersonEvent.event_id))} == {
                tuple(r) for r in session.execute(
                    select(AccessEvent.person_id, AccessEvent.at, AccessEvent.id)
                    .where(AccessEvent.person_id.is_not(None)))}
    finally:
        engine.dispose()
        db.unlink()


def _assert_nothing_left(session: Session, customer_id: int, ciphertexts: list[bytes],
                         wrapped_key: bytes | None) -> None:
    assert session.get(Customer, customer_id) is None
    for column in (Person.customer_id, Finger.customer_id, Consent.customer_id,
                   AccessEvent.customer_id, EventChain.customer_id, DataKey.customer_id,
                   door_customers.c.customer_id):
        assert session.scalar(select(func.count()).where(column == customer_id)) == 0, column
    stored = set(session.scalars(select(Finger.template_ciphertext)))
    assert stored.isdisjoint(ciphertexts)
    assert wrapped_key is None or wrapped_key not in set(session.scalars(
        select(DataKey.wrapped_key)))
    # No event anywhere still names a person that no longer exists.
    assert session.scalar(select(func.count()).where(
        AccessEvent.person_id.is_not(None), AccessEvent.person_id.not_in(select(Person.id)))) == 0


def _assert_intact(session: Session, keyring: FileKeyProvider, customer_ids: list[int],
                   expected: Expected) -> None:
    for c, customer_id in enumerate(customer_ids, start=1):
        customer = session.get_one(Customer, customer_id)
        persons = {pid for (cc, _), pid in expected.persons.items() if cc == c}
        assert {p.id for p in customer.persons} == persons
        events = session.scalar(select(func.count()).where(AccessEvent.customer_id == customer_id))
        assert events == expected.events.get(c, 0)
        for person in customer.persons:
            for finger in person.fingers:
                assert customer.data_key is not None
                plain = open_sealed(keyring, finger, person, customer, customer.data_key)
                assert plain == expected.templates[finger.public_id.hex]
