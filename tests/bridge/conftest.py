"""Fixtures for the driver suites: the real drivers against the simulator through a pty.

One contract suite, several implementations (as gpiozero's test_real_pins.py): where
ACCESSD_TEST_SENSOR_PORT names a real sensor, the cases that need no finger also run against it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.sensor import SimulatedSensor


@pytest.fixture
def sim_sensor(tmp_path: Path) -> Iterator[SimulatedSensor]:
    with SimulatedSensor(link=tmp_path / "sensor", capacity=200) as sim:
        yield sim


@pytest.fixture
def small_sim_sensor(tmp_path: Path) -> Iterator[SimulatedSensor]:
    with SimulatedSensor(link=tmp_path / "sensor", capacity=3) as sim:
        yield sim


@pytest.fixture
def sensor(sim_sensor: SimulatedSensor) -> Iterator[ZfmSensor]:
    driver = ZfmSensor(sim_sensor.path, timeout=0.5)
    driver.open()
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(params=["sim", "hardware"])
def any_sensor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ZfmSensor]:
    """The driver on the simulator, and on a real sensor when one is named."""
    if request.param == "hardware":
        port = os.environ.get("ACCESSD_TEST_SENSOR_PORT")
        if not port:
            pytest.skip("no real sensor: set ACCESSD_TEST_SENSOR_PORT=/dev/ttyUSB0 to run")
        password = int(os.environ.get("ACCESSD_TEST_SENSOR_PASSWORD", "0"), 0)
        driver = ZfmSensor(port, password=password)
        driver.open()
        try:
            yield driver
        finally:
            driver.close()
        return
    sim = SimulatedSensor(link=tmp_path / "sensor", capacity=200)
    sim.start()
    driver = ZfmSensor(sim.path, timeout=0.5)
    try:
        driver.open()
        yield driver
    finally:
        driver.close()
        sim.stop()


def enrol(sim: SimulatedSensor, sensor: ZfmSensor, finger: str, slot: int) -> None:
    """The sensor side of an enrolment: two captures of one finger, combined and stored."""
    for buffer in (1, 2):
        sim.place(finger)
        sensor.wait_for_finger(timeout=2)
        sensor.capture(buffer)
        sim.lift()
        sensor.wait_for_lift(timeout=2)
    sensor.create_template()
    sensor.store(slot)


def identify(sim: SimulatedSensor, sensor: ZfmSensor, finger: str) -> int | None:
    sim.place(finger)
    sensor.wait_for_finger(timeout=2)
    sensor.capture(1)
    sim.lift()
    return sensor.search().slot
