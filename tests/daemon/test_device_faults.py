"""The door keeps working through device faults (issue 11): a device that comes back is used
again within a second whatever the traffic, a failed pulse is on record as such, and the log
tells the truth about an acknowledgement the board never sent."""

from __future__ import annotations

import time

from accessd.models import CommandState
from tests.daemon.conftest import Door, People, Traffic, eventually, unlocked_since

OUTAGE = 4.0  # seconds a device stays unplugged
BACK_WITHIN = 1.0  # seconds from a device's return to the door opening again


def test_board_replugged_under_traffic_opens_the_door_within_1_s_of_its_return(
        door: Door, people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    with Traffic(door, "alice-right-index", every=0.5):
        eventually(lambda: unlocked_since(door, 0), what="a first opening")
        door.rig.door.port.unplug()
        time.sleep(OUTAGE)  # every finger meanwhile is granted, its pulse fails
        returned = time.monotonic()
        door.rig.door.port.replug()
        opened = eventually(lambda: unlocked_since(door, returned), timeout=OUTAGE * 4,
                            what="the door to open after the board's return")
    assert opened[0] - returned < BACK_WITHIN, opened  # type: ignore[index]


def test_sensor_replugged_under_traffic_opens_the_door_within_1_s_of_its_return(
        door: Door, people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    with Traffic(door, "alice-right-index", every=0.5):
        eventually(lambda: unlocked_since(door, 0), what="a first opening")
        door.rig.sensor.port.unplug()
        time.sleep(OUTAGE)
        returned = time.monotonic()
        door.rig.sensor.port.replug()
        opened = eventually(lambda: unlocked_since(door, returned), timeout=OUTAGE * 4,
                            what="the door to open after the sensor's return")
    assert opened[0] - returned < BACK_WITHIN, opened  # type: ignore[index]
