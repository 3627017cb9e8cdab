"""Keeping a device connected, as both of the daemon's threads do: one fault event per outage,
retries backing off, one recovery event, and a bug that does not end the thread."""

from __future__ import annotations

import pytest

from accessd.door.health import BACKOFF_MAX, DeviceHealth
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
def health(device: Device, events: list[tuple[EventKind, str]]) -> DeviceHealth:
    return DeviceHealth("sensor", open=device.open, close=device.close, faults=SensorError,
                        monotonic=lambda: device.now,
                        report=lambda kind, reason: events.append((kind, reason)),
                        recovered="sensor answers again")


def step(health: DeviceHealth, work: object = None) -> None:
    """One turn of a device loop: connect (or wait), then the work."""

    def turn() -> None:
        if health.connect(lambda seconds: None) and callable(work):
            work()

    health.guard(turn)


def fail() -> None:
    raise SensorError("no answer; check wiring")


def test_an_outage_is_one_fault_event_retried_with_growing_backoff_then_one_recovery(
        health: DeviceHealth, device: Device, events: list[tuple[EventKind, str]]) -> None:
    step(health)
    assert health.connected and events == []
    step(health, fail)
    assert not health.connected and device.closes == 1
    device.broken = True
    for device.now in (0.2, 0.5, 1.0, 1.5, 3.0, 3.5):
        step(health)
    assert device.opened == [0.0, 0.5, 1.5, 3.5]  # backoff 0.5, 1, 2 s
    assert events == [(EventKind.FAULT, "sensor: no answer; check wiring")]
    device.broken = False
    device.now = 7.5
    step(health)
    assert health.connected and health.fault is None
    assert events[1:] == [(EventKind.RECOVERED, "sensor answers again")]
    step(health, fail)  # a new outage starts from the first backoff again
    assert health.retry_at == 7.5 + 0.5


def test_backoff_stops_growing_at_its_maximum(health: DeviceHealth, device: Device) -> None:
    device.broken = True
    for _ in range(12):
        device.now = health.retry_at
        step(health)
    assert health.backoff == BACKOFF_MAX


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
