"""A site door's snapshot: what its decisions need, current while the database answers, refused
past its staleness limit, and empty of whatever the site purged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from accessd.crypto import FileKeyProvider
from accessd.customers.pins import hash_pin
from accessd.db import make_sessionmaker
from accessd.door.decision import Access
from accessd.door.directory import SqlDirectory
from accessd.door.doors import register_door
from accessd.door.logic import CountPinAttempt
from accessd.errors import SnapshotStaleError
from accessd.models import (
    AuthMode,
    Customer,
    Finger,
    Person,
    SensorSlot,
    SiteVersion,
    door_customers,
)
from accessd.site.snapshot import Snapshot
from accessd.zones.grants import GrantTerms, add_holiday, grant_zone, revoke_zone
from accessd.zones.places import add_zone, place_door, set_auth_mode
from tests.accessd_core.factories import add_customer, add_person_with_finger

pytestmark = pytest.mark.postgres


class Clock:
    def __init__(self) -> None:
        self.at = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at


def _refresh(engine: Engine, snapshot: Snapshot) -> bool:
    with engine.connect() as conn:
        return snapshot.refresh(conn.execution_options(isolation_level="REPEATABLE READ"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _on_sensor(session: Session, door_id: int, *fingers: Finger) -> None:
    """The door's library holds these fingers at their enrolment numbers (``sensor_slots``)."""
    session.flush()
    for finger in fingers:
        session.add(SensorSlot(door_id=door_id, slot=finger.sensor_slot, finger_id=finger.id))


def _open(tmp_path: Path, door_id: int, clock: Clock) -> Snapshot:
    return Snapshot.open(tmp_path / "snapshot.sqlite3", door_id, now=clock,
                         max_staleness=dt.timedelta(hours=24))


def test_the_snapshot_answers_like_the_database_and_follows_its_changes(
        site_engine: Engine, tmp_path: Path, keyring: FileKeyProvider, clock: Clock) -> None:
    with Session(site_engine, expire_on_commit=False) as session, session.begin():
        door = register_door(session, "cage-7")
        other = register_door(session, "cage-9")
        acme = add_customer(session, keyring)
        ada, finger = add_person_with_finger(session, keyring, acme, "Ada Lovelace")
        ada.keypad_code, ada.pin_hash = "4711", hash_pin("246813")
        elsewhere = add_customer(session, keyring, "Globex")
        _, far_finger = add_person_with_finger(session, keyring, elsewhere, "Hank Scorpio")
        session.execute(door_customers.insert().values(customer_id=elsewhere.id, door_id=other))
        # What the door's library recorded (each door keeps its own slots): even a slot held
        # for Globex here does not let Globex in.
        _on_sensor(session, door, finger, far_finger)
    snapshot = _open(tmp_path, door, clock)
    with pytest.raises(SnapshotStaleError, match="never filled"):
        snapshot.by_slot(finger.sensor_slot)
    assert _refresh(site_engine, snapshot)
    customer, person = snapshot.by_slot(finger.sensor_slot) or (None, None)
    assert person is not None and person.public_id == ada.public_id and not person.restricted
    assert customer is not None and customer.doors is None
    assert snapshot.by_slot(far_finger.sensor_slot) is None  # Globex may not use this door
    assert snapshot.check_pin("4711", "246813").accepted
    assert not snapshot.check_pin("4711", "000000").accepted
    assert not _refresh(site_engine, snapshot)  # nothing moved: nothing copied

    with Session(site_engine) as session, session.begin():
        session.execute(update(Person).where(Person.id == ada.id).values(restricted=True))
    assert _refresh(site_engine, snapshot)
    found = snapshot.by_slot(finger.sensor_slot)
    assert found is not None and found[1].restricted


def test_past_the_staleness_limit_the_snapshot_refuses_until_confirmed_again(
        site_engine: Engine, tmp_path: Path, keyring: FileKeyProvider, clock: Clock) -> None:
    with Session(site_engine, expire_on_commit=False) as session, session.begin():
        door = register_door(session, "entrance")
        _, finger = add_person_with_finger(session, keyring, add_customer(session, keyring))
        _on_sensor(session, door, finger)
    snapshot = _open(tmp_path, door, clock)
    _refresh(site_engine, snapshot)
    clock.at += dt.timedelta(hours=23, minutes=59)
    assert snapshot.by_slot(finger.sensor_slot) is not None  # offline for a day: still decides
    clock.at += dt.timedelta(minutes=2)
    with pytest.raises(SnapshotStaleError, match="past its limit of 24 h"):
        snapshot.by_slot(finger.sensor_slot)
    with pytest.raises(SnapshotStaleError):
        snapshot.check_pin("1234", "567890")
    _refresh(site_engine, snapshot)  # the database answers again, the version unchanged
    assert snapshot.by_slot(finger.sensor_slot) is not None


def test_a_purged_customer_leaves_the_snapshot_file_entirely(
        site_engine: Engine, tmp_path: Path, keyring: FileKeyProvider, clock: Clock) -> None:
    with Session(site_engine, expire_on_commit=False) as session, session.begin():
        door = register_door(session, "cage-7")
        acme = add_customer(session, keyring)
        ada, finger = add_person_with_finger(session, keyring, acme, "Ada Lovelace")
        ada.keypad_code, ada.pin_hash = "4711", hash_pin("246813")
        _on_sensor(session, door, finger)
    snapshot = _open(tmp_path, door, clock)
    _refresh(site_engine, snapshot)
    snapshot.count_pin_attempt(CountPinAttempt(ada.id, right=False), max_failures=5,
                               lockout=dt.timedelta(minutes=5))
    secrets_ = [acme.public_id.bytes, ada.public_id.bytes, ada.pin_hash.encode()]
    assert all(any(s in blob for blob in snapshot.file_bytes()) for s in secrets_)
    with Session(site_engine) as session, session.begin():
        session.delete(session.get_one(Customer, acme.id))
    assert _refresh(site_engine, snapshot)
    assert snapshot.by_slot(finger.sensor_slot) is None
    for blob in snapshot.file_bytes():
        for secret in secrets_:
            assert secret not in blob


def test_every_change_a_door_decides_with_moves_the_site_version(
        site_engine: Engine, keyring: FileKeyProvider) -> None:
    def version() -> int:
        with Session(site_engine) as session:
            return int(session.scalar(select(SiteVersion.version)) or 0)

    before = version()
    with Session(site_engine, expire_on_commit=False) as session, session.begin():
        acme = add_customer(session, keyring)
    assert version() > before
    before = version()
    with Session(site_engine) as session, session.begin():
        session.execute(update(Customer).where(Customer.id == acme.id)
                        .values(contract_end=dt.date(2026, 12, 31)))
    assert version() > before


def test_the_snapshot_applies_zones_grants_and_holidays_like_the_database(
        site_engine: Engine, tmp_path: Path, keyring: FileKeyProvider, clock: Clock) -> None:
    """A site door decides offline with the same grants as the site's database: the door's
    zone and those around it, a person's narrower grant and its schedule, a holiday."""
    day = dt.date(2026, 12, 25)
    with Session(site_engine, expire_on_commit=False) as session, session.begin():
        add_zone(session, "hall-a", "hall", parent="site")
        add_zone(session, "cage-7", "cage", parent="hall-a")
        door = register_door(session, "cage-7 door")
        place_door(session, "cage-7 door", "cage-7")
        set_auth_mode(session, "cage-7 door", "finger_and_pin")
        acme = add_customer(session, keyring)
        grant_zone(session, acme, "site")  # the whole site, 24/7
        ada, finger = add_person_with_finger(session, keyring, acme, "Ada Lovelace")
        grant_zone(session, acme, "cage-7", GrantTerms(schedule="mon-fri 07:00-19:00",
                                                        closed_on_holidays=True), person=ada)
        add_holiday(session, day, "Christmas")
        _on_sensor(session, door, finger)
    snapshot = _open(tmp_path, door, clock)
    _refresh(site_engine, snapshot)
    database = SqlDirectory(make_sessionmaker(site_engine), clock=clock, door_id=door)
    views = snapshot.by_slot(finger.sensor_slot)
    assert views is not None
    _, person = views
    offline = snapshot.access(person, door, day)
    assert _same(offline, database.access(person, door, day))
    assert offline.mode is AuthMode.FINGER_AND_PIN and offline.holiday and offline.person_limited
    assert sorted(g.depth for g in offline.grants) == [0, 2]  # cage-7 (Ada's), site (Acme's)
    with Session(site_engine) as session, session.begin():
        revoke_zone(session, session.get_one(Customer, acme.id), "cage-7",
                    person=session.get_one(Person, ada.id))
    assert _refresh(site_engine, snapshot)
    assert _same(snapshot.access(person, door, day), database.access(person, door, day))
    assert not snapshot.access(person, door, day).person_limited


def _same(one: Access, other: Access) -> bool:
    """The same answer (the grants in any order: the decision weighs them all)."""
    return (set(one.grants) == set(other.grants) and len(one.grants) == len(other.grants)
            and (one.person_limited, one.holiday, one.mode)
            == (other.person_limited, other.holiday, other.mode))
