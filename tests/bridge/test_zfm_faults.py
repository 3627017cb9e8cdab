"""Every fault on the sensor's line ends in a documented error, within the deadline, and the
driver recovers without a restart."""

from __future__ import annotations

import threading
import time

import pytest

from firmware_bridge.errors import (
    SensorDisconnectedError,
    SensorError,
    SensorProtocolError,
    SensorTimeoutError,
)
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.sensor import SimulatedSensor
from tests.bridge.conftest import enrol, identify

HANG_GUARD = 5.0  # seconds; far above every deadline here, only there to catch a hang


def timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def test_silent_sensor_times_out_at_the_deadline_not_after_24_s(sim_sensor: SimulatedSensor,
                                                               sensor: ZfmSensor) -> None:
    sim_sensor.port.faults.silent = True
    start = time.monotonic()
    with pytest.raises(SensorTimeoutError, match=r"did not answer within 0\.5 s"):
        sensor.template_count()
    assert time.monotonic() - start < HANG_GUARD


def test_late_answer_is_not_taken_for_the_next_one(sim_sensor: SimulatedSensor,
                                                   sensor: ZfmSensor) -> None:
    enrol(sim_sensor, sensor, "ivy-index", slot=5)
    sim_sensor.port.faults.slow = 0.8
    with pytest.raises(SensorTimeoutError):
        sensor.occupied_slots()
    sim_sensor.port.faults.slow = 0.0
    assert sensor.template_count() == 1
    assert sensor.occupied_slots() == {5}


def test_garbage_on_an_idle_line_is_flushed(sim_sensor: SimulatedSensor,
                                            sensor: ZfmSensor) -> None:
    sim_sensor.port.inject_garbage(40)
    time.sleep(0.05)
    assert sensor.template_count() == 0


def test_bad_checksum_is_a_protocol_error_and_the_next_command_works(
        sim_sensor: SimulatedSensor, sensor: ZfmSensor) -> None:
    sim_sensor.port.faults.corrupt_next = 1
    with pytest.raises(SensorProtocolError, match="checksum"):
        sensor.template_count()
    assert sensor.template_count() == 0


def test_unplugged_sensor_fails_fast_and_works_again_after_replug(sim_sensor: SimulatedSensor,
                                                                 sensor: ZfmSensor) -> None:
    enrol(sim_sensor, sensor, "jack-index", slot=2)
    sim_sensor.port.unplug()
    with pytest.raises(SensorDisconnectedError):
        sensor.template_count()
    with pytest.raises(SensorDisconnectedError, match="plugged in"):
        sensor.open()
    sim_sensor.port.replug()
    sensor.open()
    assert identify(sim_sensor, sensor, "jack-index") == 2


def test_unplug_in_the_middle_of_a_command_raises_a_documented_error(
        sim_sensor: SimulatedSensor, sensor: ZfmSensor) -> None:
    sim_sensor.port.faults.slow = 0.3
    threading.Timer(0.1, sim_sensor.port.unplug).start()
    start = time.monotonic()
    with pytest.raises((SensorDisconnectedError, SensorTimeoutError)):
        sensor.template_count()
    assert time.monotonic() - start < HANG_GUARD


def test_garbage_in_the_middle_of_an_answer_never_escapes_as_a_raw_exception(
        sim_sensor: SimulatedSensor, sensor: ZfmSensor) -> None:
    failures = 0
    for _ in range(8):
        sim_sensor.port.faults.slow = 0.02
        threading.Timer(0.005, sim_sensor.port.inject_garbage, args=(7,)).start()
        try:
            sensor.template_count()
        except SensorError:
            failures += 1
        sim_sensor.port.faults.slow = 0.0
    assert sensor.template_count() == 0


def test_an_answer_waiting_when_a_starved_driver_wakes_past_its_deadline_is_taken(
        sensor: ZfmSensor) -> None:
    """A process that was not scheduled for longer than the deadline (a loaded Pi) finds the
    sensor's answer in the kernel's buffer: slow, not a dead sensor."""
    link, fp = sensor._link, sensor._fp
    assert link is not None
    link.reset_input_buffer()
    link.set_deadline(0.05)
    fp._PyFingerprint__writePacket(0x01, (0x1D,))  # TemplateNum
    link.flush()
    time.sleep(0.3)  # starved: the deadline passes while the answer arrives
    pid, payload = fp._PyFingerprint__readPacket()
    assert pid == 0x07 and payload[0] == 0x00
