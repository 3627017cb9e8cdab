"""The ZFM sensor driver, against the simulated sensor (and a real one where named)."""

from __future__ import annotations

import pytest

from firmware_bridge.errors import (
    BadSlotError,
    EnrollMismatchError,
    LibraryFullError,
    NoFingerError,
    PoorImageError,
    SensorBadPasswordError,
    SensorDisconnectedError,
)
from firmware_bridge.sensor import Sensor
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.sensor import SimulatedSensor
from tests.bridge.conftest import enrol, identify


def test_driver_satisfies_the_sensor_interface(sensor: ZfmSensor) -> None:
    assert isinstance(sensor, Sensor)


def test_capacity_is_read_from_the_sensor_not_assumed(sensor: ZfmSensor) -> None:
    assert sensor.capacity() == 200


def test_enrolled_finger_is_found_at_its_slot(sim_sensor: SimulatedSensor,
                                              sensor: ZfmSensor) -> None:
    enrol(sim_sensor, sensor, "alice-right-index", slot=7)
    assert sensor.occupied_slots() == {7}
    assert sensor.template_count() == 1
    assert identify(sim_sensor, sensor, "alice-right-index") == 7


def test_other_finger_is_not_matched(sim_sensor: SimulatedSensor, sensor: ZfmSensor) -> None:
    enrol(sim_sensor, sensor, "alice-right-index", slot=0)
    assert identify(sim_sensor, sensor, "mallory-thumb") is None


def test_template_moved_through_the_host_still_matches(sim_sensor: SimulatedSensor,
                                                      sensor: ZfmSensor) -> None:
    enrol(sim_sensor, sensor, "bob-left-index", slot=3)
    sensor.load(3)
    template = sensor.download_characteristics()
    assert len(template) == 512
    sensor.delete(3)
    sensor.upload_template(42, template)
    assert sensor.occupied_slots() == {42}
    assert identify(sim_sensor, sensor, "bob-left-index") == 42


def test_uploaded_characteristics_compare_with_a_fresh_capture(sim_sensor: SimulatedSensor,
                                                               sensor: ZfmSensor) -> None:
    enrol(sim_sensor, sensor, "carol-thumb", slot=0)
    sensor.load(0)
    template = sensor.download_characteristics()
    sim_sensor.place("carol-thumb")
    sensor.wait_for_finger(timeout=2)
    sensor.capture(1)
    sensor.upload_characteristics(template, buffer=2)
    assert sensor.compare() > 50


def test_captures_of_two_fingers_do_not_make_a_template(sim_sensor: SimulatedSensor,
                                                        sensor: ZfmSensor) -> None:
    for buffer, finger in ((1, "dave-index"), (2, "erin-index")):
        sim_sensor.place(finger)
        sensor.wait_for_finger(timeout=2)
        sensor.capture(buffer)
    with pytest.raises(EnrollMismatchError, match="same finger"):
        sensor.create_template()


@pytest.mark.parametrize("quality", ["messy", "few_features"])
def test_poor_capture_is_refused_with_advice(sim_sensor: SimulatedSensor, sensor: ZfmSensor,
                                             quality: str) -> None:
    sim_sensor.place("frank-index", quality)
    sensor.wait_for_finger(timeout=2)
    with pytest.raises(PoorImageError, match="finger"):
        sensor.capture(1)


def test_waiting_for_a_finger_gives_up_at_its_timeout(sensor: ZfmSensor) -> None:
    with pytest.raises(NoFingerError, match="no finger"):
        sensor.wait_for_finger(timeout=0.1)


def test_full_library_is_reported_with_what_to_do(small_sim_sensor: SimulatedSensor) -> None:
    sensor = ZfmSensor(small_sim_sensor.path, timeout=0.5)
    sensor.open()
    try:
        for slot in range(3):
            enrol(small_sim_sensor, sensor, f"person-{slot}", slot=sensor.free_slot())
        with pytest.raises(LibraryFullError, match=r"full \(3 of 3 slots\)"):
            sensor.free_slot()
    finally:
        sensor.close()


@pytest.mark.parametrize("slot", [-1, 200, 5000])
def test_slot_outside_the_library_is_refused(sensor: ZfmSensor, slot: int) -> None:
    with pytest.raises(BadSlotError, match="outside the library"):
        sensor.store(slot)


def test_wipe_empties_the_library(sim_sensor: SimulatedSensor, sensor: ZfmSensor) -> None:
    enrol(sim_sensor, sensor, "gina-index", slot=0)
    enrol(sim_sensor, sensor, "hank-index", slot=1)
    sensor.wipe()
    assert sensor.occupied_slots() == set()
    assert sim_sensor.template_count == 0


def test_new_password_locks_out_the_factory_default(sim_sensor: SimulatedSensor,
                                                    sensor: ZfmSensor) -> None:
    sensor.set_password(0x5EC2E7)
    sensor.close()
    with pytest.raises(SensorBadPasswordError, match="refused the password"):
        ZfmSensor(sim_sensor.path, password=0, timeout=0.5).open()
    again = ZfmSensor(sim_sensor.path, password=0x5EC2E7, timeout=0.5)
    again.open()
    assert again.template_count() == 0
    again.close()


def test_missing_port_is_reported_as_disconnected(tmp_path) -> None:
    with pytest.raises(SensorDisconnectedError, match="plugged in"):
        ZfmSensor(str(tmp_path / "no-such-port")).open()


def test_library_round_trip_on_any_sensor(any_sensor: ZfmSensor) -> None:
    """Needs no finger, so it also runs against a real sensor when one is named."""
    template = bytes((i * 7) & 0xFF for i in range(512))
    slot = any_sensor.free_slot()
    any_sensor.upload_template(slot, template)
    try:
        assert slot in any_sensor.occupied_slots()
        any_sensor.load(slot)
        assert any_sensor.download_characteristics() == template
    finally:
        any_sensor.delete(slot)
    assert slot not in any_sensor.occupied_slots()


def test_the_driver_leaves_pillow_unloaded_until_something_draws_an_image() -> None:
    """pyfingerprint imports Pillow for downloadImage alone; the door's daemon never calls it."""
    import subprocess
    import sys

    code = ("import sys, firmware_bridge.zfm_sensor, pyfingerprint.pyfingerprint as p; "
            "kind = lambda: type(sys.modules['PIL.Image']).__name__; "
            "print(kind(), callable(p.Image.new), kind())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["_LazyModule", "True", "module"]  # not run at import; loaded once used
