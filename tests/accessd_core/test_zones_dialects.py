"""Zones, grants and the door's grant lookup on SQLite and on a real PostgreSQL server:
nesting without cycles, a person's grants inside the customer's, the door's recursive zone
walk, and an installation from before zones keeping its door open to its customers."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import Engine, column, insert, select, table
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import upgrade
from accessd.door.decision import Reason, check_grants
from accessd.door.directory import SqlDirectory, person_view
from accessd.door.doors import register_door
from accessd.errors import ZoneError
from accessd.models import AuthMode, Customer, Door, Grant, Person, Zone
from accessd.zones.grants import GrantTerms, add_holiday, grant_zone, grants_of, revoke_zone
from accessd.zones.places import (
    add_zone,
    door_places,
    move_zone,
    place_door,
    remove_zone,
    set_auth_mode,
)

MON_NOON = dt.datetime(2026, 11, 23, 12, 0)


def _clock() -> dt.datetime:
    return dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)


@pytest.fixture
def site(sessions: sessionmaker[Session]) -> dict[str, int]:
    """hall-a > suite-1 > cage-7; doors: entrance (hall), suite (suite), cage (cage)."""
    with sessions.begin() as session:
        add_zone(session, "hall-a", "hall")
        add_zone(session, "suite-1", "suite", parent="hall-a")
        add_zone(session, "cage-7", "cage", parent="suite-1")
        ids = {}
        for name, zone in (("entrance", "hall-a"), ("suite", "suite-1"), ("cage", "cage-7")):
            session.add(Door(name=name))
            session.flush()
            place_door(session, name, zone)
            ids[name] = session.scalars(select(Door.id).where(Door.name == name)).one()
        acme = Customer(name="Acme", contract_start=dt.date(2026, 1, 1))
        session.add(acme)
        session.flush()
        alice = Person(customer_id=acme.id, name="Alice")
        session.add(alice)
        session.flush()
        ids["acme"], ids["alice"] = acme.id, alice.id
    return ids


def _reason(sessions: sessionmaker[Session], site: dict[str, int], door: str) -> Reason | None:
    directory = SqlDirectory(sessions, clock=_clock)
    with sessions() as session:
        person = person_view(session.get_one(Person, site["alice"]))
    return check_grants(directory.access(person, site[door], MON_NOON.date()), MON_NOON)


def test_a_grant_of_a_zone_covers_the_zones_inside_it(sessions: sessionmaker[Session],
                                                       site: dict[str, int]) -> None:
    assert _reason(sessions, site, "cage") is Reason.ZONE_NOT_GRANTED
    with sessions.begin() as session:
        grant_zone(session, session.get_one(Customer, site["acme"]), "suite-1")
    assert _reason(sessions, site, "cage") is None
    assert _reason(sessions, site, "suite") is None
    assert _reason(sessions, site, "entrance") is Reason.ZONE_NOT_GRANTED


def test_a_persons_own_grants_narrow_the_customers(sessions: sessionmaker[Session],
                                                   site: dict[str, int]) -> None:
    with sessions.begin() as session:
        acme = session.get_one(Customer, site["acme"])
        alice = session.get_one(Person, site["alice"])
        grant_zone(session, acme, "hall-a")
        grant_zone(session, acme, "suite-1", person=alice,
                   terms=GrantTerms(schedule="sat 09:00-10:00"))
    assert _reason(sessions, site, "entrance") is Reason.ZONE_NOT_GRANTED
    assert _reason(sessions, site, "cage") is Reason.OUTSIDE_SCHEDULE


def test_a_person_cannot_be_granted_more_than_the_customer(sessions: sessionmaker[Session],
                                                           site: dict[str, int]) -> None:
    with sessions.begin() as session:
        acme = session.get_one(Customer, site["acme"])
        alice = session.get_one(Person, site["alice"])
        grant_zone(session, acme, "suite-1")
        with pytest.raises(ZoneError, match="grant the customer first"):
            grant_zone(session, acme, "hall-a", person=alice)
        grant_zone(session, acme, "cage-7", person=alice)
        # Taking the suite back from the customer takes the person's cage inside it too.
        assert revoke_zone(session, acme, "suite-1") == 2
        assert grants_of(session, acme, alice) == []


def test_holidays_and_validity_refuse_by_name(sessions: sessionmaker[Session],
                                              site: dict[str, int]) -> None:
    with sessions.begin() as session:
        acme = session.get_one(Customer, site["acme"])
        grant_zone(session, acme, "hall-a", GrantTerms(closed_on_holidays=True))
        add_holiday(session, MON_NOON.date(), "Site closed")
    assert _reason(sessions, site, "cage") is Reason.HOLIDAY
    with sessions.begin() as session:
        acme = session.get_one(Customer, site["acme"])
        grant_zone(session, acme, "hall-a", GrantTerms(valid_until=dt.date(2026, 11, 1)))
    assert _reason(sessions, site, "cage") is Reason.GRANT_EXPIRED


def test_zones_never_nest_in_a_circle(sessions: sessionmaker[Session],
                                      site: dict[str, int]) -> None:
    with sessions.begin() as session:
        with pytest.raises(ZoneError) as caught:
            move_zone(session, "hall-a", "cage-7")
        assert str(caught.value) == (
            "'hall-a' cannot go inside 'cage-7': 'cage-7' is itself inside 'hall-a' "
            "(hall-a > suite-1 > cage-7), so zones would nest in a circle; choose a zone "
            "outside 'hall-a'")
        with pytest.raises(ZoneError, match="in a circle"):
            move_zone(session, "suite-1", "suite-1")
        with pytest.raises(ZoneError, match="still used by 1 door, 1 zone"):
            remove_zone(session, "suite-1")


def test_doors_are_listed_with_their_zone_and_mode(sessions: sessionmaker[Session],
                                                   site: dict[str, int]) -> None:
    with sessions.begin() as session:
        set_auth_mode(session, "cage", "finger_and_pin")
        places = {p.name: p for p in door_places(session)}
    assert places["cage"].zone_path == ("hall-a", "suite-1", "cage-7")
    assert places["cage"].auth_mode is AuthMode.FINGER_AND_PIN
    assert places["entrance"].auth_mode is AuthMode.FINGER_OR_PIN


def test_an_installation_from_before_zones_keeps_letting_its_customers_in(
        engine: Engine) -> None:
    """Migration 0015 on a database with a door and a customer: the door goes into the "site"
    zone, the customer is granted it 24/7, new customers get it too."""
    from alembic import command

    from accessd.config import Settings
    from accessd.customers.contracts import add_customer
    from accessd.db import alembic_config, make_sessionmaker

    command.downgrade(alembic_config(engine), "0007")
    with engine.begin() as conn:
        # The tables as 0007 left them (the models already have 0015's columns).
        doors = table("doors", column("name"), column("created_at"))
        customers = table("customers", column("name"), column("contract_start"),
                          column("grace_days"), column("public_id"), column("created_at"))
        conn.execute(insert(doors).values(name="front", created_at=_clock()))
        conn.execute(insert(customers).values(
            name="Old Customer", contract_start=dt.date(2020, 1, 1), grace_days=0,
            public_id=uuid.uuid4().hex, created_at=_clock()))
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        door = session.scalars(select(Door)).one()
        zone = session.get_one(Zone, door.zone_id)
        assert (zone.name, zone.kind, door.auth_mode) == ("site", "site", AuthMode.FINGER_OR_PIN)
        old = session.scalars(select(Customer)).one()
        assert [(g.zone_id, g.schedule, g.valid_until) for g in
                session.scalars(select(Grant).where(Grant.customer_id == old.id))] == [
                    (zone.id, None, None)]
        new = add_customer(session, "New Customer", dt.date(2026, 1, 1), settings=Settings())
        assert [g.zone for g in grants_of(session, new)] == ["site"]
        assert register_door(session, "second") != door.id
        assert session.scalars(select(Door.zone_id).where(Door.name == "second")).one() is None


def test_a_door_reads_its_own_slot_record_before_the_enrolment_number(
        sessions: sessionmaker[Session], site: dict[str, int]) -> None:
    """A cache library puts fingers at slots of its own: slot 0 at the cage door holds
    Alice's finger although Bob's finger was enrolled as number 0."""
    from accessd.models import DataKey, Finger, FingerLabel, SensorSlot, new_public_id

    with sessions.begin() as session:
        acme = session.get_one(Customer, site["acme"])
        bob = Person(customer_id=acme.id, name="Bob")
        key = DataKey(customer_id=acme.id, master_key_id="k", wrapped_key=b"w")
        session.add_all([bob, key])
        session.flush()
        made = {}
        for number, person_id in ((0, bob.id), (7, site["alice"])):
            finger = Finger(public_id=new_public_id(), customer_id=acme.id, person_id=person_id,
                            label=FingerLabel.RIGHT_INDEX, sensor_slot=number,
                            template_ciphertext=b"c", template_nonce=b"n", data_key_id=key.id)
            session.add(finger)
            session.flush()
            made[person_id] = finger.id
        session.add(SensorSlot(door_id=site["cage"], slot=0, finger_id=made[site["alice"]]))
        bob_id = bob.id
    at_cage = SqlDirectory(sessions, clock=_clock, door_id=site["cage"])
    at_entrance = SqlDirectory(sessions, clock=_clock, door_id=site["entrance"])
    assert (found := at_cage.by_slot(0)) is not None and found[1].id == site["alice"]
    assert (found := at_entrance.by_slot(0)) is not None and found[1].id == bob_id
    assert at_cage.by_slot(3) is None
