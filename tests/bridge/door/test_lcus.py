"""The LCUS-1 relay driver against the simulated relay: 4-byte commands, a host-side timer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from firmware_bridge.door import DoorBoard, DoorInputs
from firmware_bridge.errors import DoorDisconnectedError, DoorInitError
from firmware_bridge.lcus import RELAY_OFF, RELAY_ON, LcusRelay
from hardware_sim.door import SimulatedLcusRelay

from .conftest import wait_until, within_hang_guard


@pytest.fixture
def relay_sim(tmp_path: Path) -> Iterator[SimulatedLcusRelay]:
    sim = SimulatedLcusRelay(tmp_path / "lcus")
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def relay(relay_sim: SimulatedLcusRelay) -> Iterator[LcusRelay]:
    driver = LcusRelay(relay_sim.path)
    driver.open()
    try:
        yield driver
    finally:
        driver.close()


def test_lcus_driver_implements_the_protocol_without_capabilities(relay: LcusRelay) -> None:
    assert isinstance(relay, DoorBoard)
    assert relay.capabilities == frozenset()


def test_pulse_unlocks_then_the_host_timer_relocks(relay_sim: SimulatedLcusRelay,
                                                   relay: LcusRelay) -> None:
    relay.pulse(0.2)
    wait_until(lambda: len(relay_sim.history) >= 3)
    assert [c.value for c in relay_sim.history] == [True, False, True]
    wait_until(lambda: relay.inputs().locked)


def test_lock_cancels_a_running_pulse(relay_sim: SimulatedLcusRelay, relay: LcusRelay) -> None:
    relay.pulse(10)
    wait_until(lambda: not relay_sim.relay_locked)
    relay.lock()
    wait_until(lambda: relay_sim.relay_locked)


def test_inputs_report_only_the_lock_and_no_events_come(relay: LcusRelay) -> None:
    assert relay.inputs() == DoorInputs(door_open=False, exit_pressed=False, tamper=False,
                                        locked=True)
    assert relay.next_event(0.05) is None
    relay.heartbeat()


def test_malformed_commands_are_ignored_by_the_simulated_relay(
        relay_sim: SimulatedLcusRelay) -> None:
    with serial.Serial(relay_sim.path, 9600, timeout=0) as line:
        line.write(b"\xa0\x01\x01\xa3" + b"\x00\xa0" + RELAY_ON[:2])  # bad checksum, noise
        line.write(RELAY_ON[2:])  # the rest of a good command, in a second write
        wait_until(lambda: not relay_sim.relay_locked)
        line.write(RELAY_OFF)
        wait_until(lambda: relay_sim.relay_locked)
    assert [c.value for c in relay_sim.history] == [True, False, True]


def test_unplugged_relay_raises_documented_errors_and_reconnects(
        relay_sim: SimulatedLcusRelay, relay: LcusRelay) -> None:
    relay_sim.port.unplug()
    # The relay never answers, so the driver learns of the pulled cable at the first write the
    # OS refuses; the kernel may still accept one right after the hangup.
    with within_hang_guard(), pytest.raises(DoorDisconnectedError, match="plugged in"):
        for _ in range(500):
            relay.lock()
            time.sleep(0.01)
    relay.close()
    with pytest.raises(DoorInitError):
        relay.open()
    relay_sim.port.replug()
    relay.open()
    relay.pulse(0.1)
    wait_until(lambda: relay_sim.relay_locked and relay.inputs().locked)
