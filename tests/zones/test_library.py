"""The sensor's library follows the grants, incrementally: a door's sensor holds the people
allowed at its door (a cache of finger-only people first when they do not fit), and a change
of grants moves only the templates that changed. The real pyfingerprint drives the simulator
through a pty."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.door.doors import register_door
from accessd.fingers.library import reconcile_sensor
from accessd.fingers.sealed import seal
from accessd.models import Credential, Customer, Finger, FingerLabel, Person, new_public_id
from accessd.zones.grants import grant_zone, revoke_zone
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim import fingers
from hardware_sim.sensor import SimulatedSensor

SLOTS = 200


@pytest.fixture
def keyring(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(tmp_path / "keys" / "keyring.json")


@pytest.fixture
def sensor(tmp_path: Path) -> Iterator[tuple[SimulatedSensor, ZfmSensor]]:
    with SimulatedSensor(link=tmp_path / "sensor", capacity=SLOTS) as sim:
        driver = ZfmSensor(sim.path, timeout=2)
        driver.open()
        try:
            yield sim, driver
        finally:
            driver.close()


def _people(session: Session, keyring: FileKeyProvider, customer: Customer, prefix: str,
            count: int, credential: Credential, first_slot: int) -> None:
    for n in range(count):
        person = Person(customer_id=customer.id, name=f"{prefix}{n}", credential=credential)
        session.add(person)
        session.flush()
        finger = Finger(public_id=new_public_id(), customer_id=customer.id, person_id=person.id,
                        label=FingerLabel.RIGHT_INDEX, sensor_slot=first_slot + n)
        made = fingers.combine(*(fingers.characteristics(fingers.impression(person.name, i))
                                 for i in (0, 1)))
        assert made is not None
        seal(session, keyring, finger, person, customer, made)
        session.add(finger)


def _wire(sim: SimulatedSensor, since: int, instruction: str) -> int:
    return sum(1 for h in sim.history[since:] if h.instruction == instruction)


def test_grant_changes_move_only_the_templates_that_changed(
        sessions: sessionmaker[Session], keyring: FileKeyProvider,
        sensor: tuple[SimulatedSensor, ZfmSensor]) -> None:
    sim, driver = sensor
    with sessions.begin() as session:
        door_id = register_door(session, "entrance")  # the site's first door: zone "site"
        acme = Customer(name="Acme", contract_start=dt.date(2026, 1, 1))
        beta = Customer(name="Beta", contract_start=acme.contract_start)
        session.add_all([acme, beta])
        session.flush()
        _people(session, keyring, acme, "a", 150, Credential.FINGER, 0)
        _people(session, keyring, beta, "b", 100, Credential.FINGER_OR_PIN, 150)
        grant_zone(session, acme, "site")

    report = reconcile_sensor(driver, sessions, keyring, door_id)
    assert (report.uploaded, report.deleted, report.kept) == (150, 0, 0)

    with sessions.begin() as session:  # 250 allowed in 200 slots: a cache
        grant_zone(session, session.scalars(select(Customer).where(Customer.name == "Beta"))
                   .one(), "site")
    mark = len(sim.history)
    report = reconcile_sensor(driver, sessions, keyring, door_id)
    assert (report.uploaded, report.deleted, report.kept) == (50, 0, 150)
    assert _wire(sim, mark, "DownChar") == 50  # only the new templates crossed the wire
    assert sim.template_count == SLOTS

    with sessions.begin() as session:  # Acme leaves this door: Beta's 100 now all fit
        revoke_zone(session, session.scalars(select(Customer).where(Customer.name == "Acme"))
                    .one(), "site")
    mark = len(sim.history)
    report = reconcile_sensor(driver, sessions, keyring, door_id)
    # Beta's 50 newcomers overwrite 50 of Acme's slots; the other 100 are wiped.
    assert (report.uploaded, report.deleted, report.kept) == (50, 100, 50)
    assert _wire(sim, mark, "DownChar") == 50
    assert _wire(sim, mark, "DeletChar") <= 2  # runs of neighbouring slots, one command each
    assert sim.template_count == 100

    mark = len(sim.history)
    assert reconcile_sensor(driver, sessions, keyring, door_id).uploaded == 0
    assert _wire(sim, mark, "DownChar") == 0  # nothing changed: nothing crosses
