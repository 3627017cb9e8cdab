"""Keeping a device connected, as both of the daemon's threads do: one fault event per outage,
retries every RETRY_INTERVAL whatever else happens, one recovery event, a failure seen by
another thread that only makes the owner look, and a bug that does not end the thread."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from accessd.door.health import RETRY_INTERVAL, DeviceHealth
from accessd.models.enums import EventKind
from firmware_bridge.errors import SensorError


class Device:
    """A device that fails to open while ``broken``; counts its opens and closes."""

    def __init__(self) -> None:
        self.broken = False
        self.opened: list[float] = []
        self.closes = 0
        self.now = 0.0

    def open(self) -> None:
        self.opened.append(self.now)
        if self.broken:
            raise SensorError("no answer; check wiring")

    def close(self) -> None:
        self.closes += 1


@pytest.fixture
def device() -> Device:
    return Device()


@pytest.fixture
def events() -> list[tuple[EventKind, str]]:
    return []


@pytest.fixture
def storage() -> list[Exception]:
    return []


@pytest.fixture
def health(device: Device, events: list[tuple[EventKind, str]],
           storage: list[Exception]) -> DeviceHealth:
    return DeviceHealth("sensor", open=device.open, close=device.close, faults=SensorError,
                        monotonic=lambda: device.now,
                        report=lambda kind, reason: events.append((kind, reason)),
                        recovered="sensor answers again", storage_failed=storage.append)


def step(health: DeviceHealth, work: object = None) -> None:
    """One turn of a device loop: connect (or wait), then the work."""

    def turn() -> None:
        if health.connect(lambda seconds: None) and callable(work):
            work()

    health.guard(turn, wait=lambda seconds: None)


def fail() -> None:
    raise SensorError("no answer; check wiring")


def test_an_outage_is_one_fault_event_retried_every_interval_then_one_recovery(
        health: DeviceHealth, device: Device, events: list[tuple[EventKind, str]]) -> None:
    step(health)
    assert health.connected and events == []
    step(health, fail)
    assert not health.connected and device.closes == 1
    device.broken = True
    for device.now in (0.1, 0.25, 0.3, 0.5, 0.75, 10.0):
        step(health)
    assert device.opened == [0.0, 0.25, 0.5, 0.75, 10.0]  # no growing backoff
    # The history says what happened plainly; the device's own words go to the log.
    assert events == [(EventKind.FAULT, "sensor: reported an error (the door's log has the "
                                        "details)")]
    device.broken = False
    device.now = 10.25
    step(health)
    assert health.connected and health.fault is None
    assert events[1:] == [(EventKind.RECOVERED, "sensor answers again")]


def test_a_device_back_after_a_long_outage_is_tried_within_the_interval(
        health: DeviceHealth, device: Device) -> None:
    device.broken = True
    for tick in range(1, 400):  # 100 s down, stepped every 0.25 s
        device.now = tick * RETRY_INTERVAL
        step(health)
    device.broken = False
    returned = device.now + 0.01
    device.now = returned + RETRY_INTERVAL
    step(health)
    assert health.connected and device.now - returned <= RETRY_INTERVAL


def test_a_failure_seen_by_another_thread_never_delays_the_owners_next_try(
        health: DeviceHealth, device: Device) -> None:
    step(health, fail)
    retry_at = health.retry_at
    for _ in range(20):  # the sensor thread's pulses fail, one after the other
        health.suspect(SensorError("not open"))
    assert health.retry_at == retry_at and health.fault is not None
    device.now = retry_at
    step(health)
    assert health.connected
    assert health.take_suspicion() is None  # reopened: what was seen before is history
    health.suspect(SensorError("no answer"))
    assert health.connected  # only the owner decides, after looking
    assert isinstance(health.take_suspicion(), SensorError)
    assert health.take_suspicion() is None


def test_a_database_error_in_the_work_leaves_the_device_open(
        health: DeviceHealth, device: Device, storage: list[Exception]) -> None:
    step(health)

    def locked() -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    step(health, locked)
    assert health.connected and device.closes == 0 and health.fault is None
    assert len(storage) == 1


def test_a_bug_in_the_work_closes_the_device_and_the_loop_carries_on(
        health: DeviceHealth, device: Device, events: list[tuple[EventKind, str]]) -> None:
    step(health)

    def bug() -> None:
        raise ZeroDivisionError

    step(health, bug)
    assert not health.connected and device.closes == 1
    assert health.fault == "internal error (see the log)" and events == []
    device.now = health.retry_at
    step(health)
    assert health.connected
