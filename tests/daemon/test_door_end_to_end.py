"""The door as people meet it: the daemon with its real drivers, the simulator on the wire."""

from __future__ import annotations

import dataclasses
import datetime as dt

from accessd.models import CommandState, Customer, Person
from tests.daemon.conftest import Door, People, eventually


def test_enrolled_finger_opens_the_door_and_is_on_record(door: Door, people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    assert door.rig.sensor.template_count == 1
    before = door.last_event_id()
    door.present("alice-right-index")
    eventually(lambda: not door.rig.door.relay_locked, what="the relay to unlock")
    granted = door.wait_event("granted", after=before)
    assert granted.person_id == people.alice and granted.method == "finger"
    door.lift()
    eventually(lambda: door.rig.door.relay_locked, what="the board to relock after 3 s")


def test_pin_on_the_keypad_opens_the_door(door: Door, people: People) -> None:
    door.start()
    door.rig.door.keys(f"{people.alice_code}*{people.alice_pin}#")
    eventually(lambda: not door.rig.door.relay_locked, what="the relay to unlock")
    assert door.wait_event("granted").method == "pin"


def test_unknown_finger_and_wrong_pin_are_refused(door: Door, people: People) -> None:
    door.start()
    door.present("mallory-thumb")
    unknown = door.wait_event("unknown_finger")
    assert unknown.person_id is None and unknown.customer_id is None
    door.lift()
    door.rig.door.keys(f"{people.alice_code}*000000#")
    denied = door.wait_event("denied")
    assert denied.reason == "wrong_pin"
    assert door.rig.door.relay_locked
    assert all(change.value for change in door.rig.door.history if change.what == "relay_locked")


def test_ended_contract_and_restricted_person_are_refused_with_reasons(door: Door,
                                                                       people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    assert door.enrol(people.bob, "bob-left-index", "left_index").state is CommandState.DONE
    with door.sessions.begin() as session:
        session.get_one(Person, people.bob).restricted = True
    before = door.last_event_id()
    door.present("bob-left-index")
    assert door.wait_event("denied", after=before).reason == "person_restricted"
    door.lift()
    with door.sessions.begin() as session:
        session.get_one(Customer, people.acme).contract_end = (
            dt.date.today() - dt.timedelta(days=1))
        session.get_one(Customer, people.acme).contract_start = (
            dt.date.today() - dt.timedelta(days=60))
    before = door.last_event_id()
    door.present("alice-right-index")
    assert door.wait_event("denied", after=before).reason == "contract_ended"
    assert door.rig.door.relay_locked


def test_sensor_unplugged_mid_identification_keeps_the_door_locked_and_recovers(
        door: Door, people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    assert door.events()[0].kind == "sensor_installed"  # first start: the factory password
    before = door.last_event_id()
    door.rig.sensor.port.faults.slow = 0.3  # the next answer is late: unplug while waiting
    door.present("alice-right-index")
    door.rig.sensor.port.unplug()
    fault = door.wait_event("fault", after=before)
    assert "sensor" in (fault.reason or "")
    assert door.rig.door.relay_locked
    door.rig.sensor.lift()  # the reader is unplugged: nobody can see the lift
    door.rig.sensor.port.faults.slow = 0.0
    door.rig.sensor.port.replug()
    door.wait_event("recovered")
    before = door.last_event_id()
    door.present("alice-right-index")
    eventually(lambda: not door.rig.door.relay_locked, what="the relay after replug")
    assert door.wait_event("granted", after=before).person_id == people.alice


def test_wrong_pins_typed_at_the_keypad_lock_that_persons_pin(door: Door, people: People) -> None:
    access = dataclasses.replace(door.settings.access, pin_max_failures=2)
    door.settings = dataclasses.replace(door.settings, access=access)
    door.start()
    for _ in range(2):
        before = door.last_event_id()
        door.rig.door.keys(f"{people.alice_code}*000000#")
        assert door.wait_event("denied", after=before).reason == "wrong_pin"
    before = door.last_event_id()
    door.rig.door.keys(f"{people.alice_code}*{people.alice_pin}#")
    assert door.wait_event("denied", after=before).reason == "pin_locked"
    assert door.rig.door.relay_locked
