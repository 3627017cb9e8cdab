"""Every fault on the line leaves the driver raising its documented errors, on time, and able
to reconnect. Time bounds here are hang guards only, never timing assertions."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from firmware_bridge.door import DoorEventKind
from firmware_bridge.doorboard import SerialDoorBoard
from firmware_bridge.errors import (
    DoorDisconnectedError,
    DoorError,
    DoorInitError,
    DoorProtocolError,
    DoorTimeoutError,
)
from hardware_sim.door import SimulatedDoorBoard

from .conftest import HANG_GUARD, wait_for_event, wait_until, within_hang_guard

COMMANDS: dict[str, Callable[[SerialDoorBoard], object]] = {
    "pulse": lambda d: d.pulse(1),
    "lock": lambda d: d.lock(),
    "heartbeat": lambda d: d.heartbeat(),
    "inputs": lambda d: d.inputs(),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_unplugged_board_raises_disconnected_and_reconnects_after_replug(
        sim: SimulatedDoorBoard, door: SerialDoorBoard, command: str) -> None:
    sim.port.unplug()
    with within_hang_guard(), pytest.raises(DoorDisconnectedError, match="check the cable"):
        COMMANDS[command](door)
    with within_hang_guard(), pytest.raises(DoorDisconnectedError):
        door.next_event(HANG_GUARD)
    with within_hang_guard():
        door.close()
    with within_hang_guard(), pytest.raises(DoorInitError, match="plugged in"):
        door.open()
    sim.port.replug()
    door.open()
    door.pulse(0.1)
    wait_for_event(door, DoorEventKind.RELOCKED)


def test_unplugging_wakes_a_waiting_next_event(sim: SimulatedDoorBoard,
                                               door: SerialDoorBoard) -> None:
    start = time.monotonic()
    sim.port.unplug()
    with pytest.raises(DoorDisconnectedError):
        door.next_event(HANG_GUARD * 4)
    assert time.monotonic() - start < HANG_GUARD


def test_pulled_cable_during_a_pulse_relocks_the_board_by_itself(tmp_path: Path,
                                                                 link_key: bytes) -> None:
    sim = SimulatedDoorBoard(tmp_path / "door", link_key=link_key)
    sim.start()
    driver = SerialDoorBoard(sim.path, link_key=link_key, heartbeat_timeout=0.3)
    try:
        driver.open()
        driver.pulse(10)
        sim.port.unplug()
        wait_until(lambda: sim.relay_locked)
    finally:
        driver.close()
        sim.stop()


def test_garbage_on_the_line_is_skipped(sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    sim.port.inject_garbage(200)
    door.heartbeat()
    sim.port.inject_garbage(3)
    assert door.inputs().locked
    sim.press_exit()
    wait_for_event(door, DoorEventKind.EXIT_PRESSED)


def test_a_false_frame_start_in_noise_does_not_swallow_the_next_answer(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    sim.port.write(b"\xac\xce\x40")  # a sync and a 64-byte length, then nothing
    with within_hang_guard():
        door.heartbeat()


def test_silent_board_times_out_with_advice_and_recovers_when_it_speaks(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    sim.port.faults.silent = True
    with within_hang_guard(), pytest.raises(
            DoorTimeoutError, match=r"did not acknowledge PULSE after 3 tries; check the cable"):
        door.pulse(1)
    assert sim.relay_locked
    sim.port.faults.silent = False
    door.heartbeat()


def test_silent_board_fails_open_with_an_init_error(sim: SimulatedDoorBoard,
                                                    link_key: bytes) -> None:
    sim.port.faults.silent = True
    driver = SerialDoorBoard(sim.path, link_key=link_key)
    with within_hang_guard(), pytest.raises(DoorInitError, match="did not answer HELLO"):
        driver.open()
    driver.close()


def test_answers_slower_than_every_retry_time_out(sim: SimulatedDoorBoard,
                                                  door: SerialDoorBoard) -> None:
    sim.port.faults.slow = 1.0
    with within_hang_guard(), pytest.raises(DoorTimeoutError):
        door.heartbeat()


def test_a_slow_answer_within_the_retries_still_counts(sim: SimulatedDoorBoard,
                                                       link_key: bytes) -> None:
    driver = SerialDoorBoard(sim.path, link_key=link_key, ack_timeout=0.1, retries=10)
    driver.open()
    try:
        sim.port.faults.slow = 0.15  # later than one try, in time for a later one (same seq)
        driver.heartbeat()
    finally:
        sim.port.faults.slow = 0
        driver.close()


def test_one_corrupted_answer_is_retried_transparently(sim: SimulatedDoorBoard,
                                                       door: SerialDoorBoard) -> None:
    sim.port.faults.corrupt_next = 1
    door.heartbeat()
    assert door.bad_frames == 1


def test_only_corrupted_answers_raise_a_protocol_error(sim: SimulatedDoorBoard,
                                                       door: SerialDoorBoard) -> None:
    sim.port.faults.corrupt_next = 100
    with within_hang_guard(), pytest.raises(DoorProtocolError, match="corrupted frames"):
        door.lock()
    sim.port.faults.corrupt_next = 0
    door.lock()


def test_close_after_a_failure_is_safe_and_idempotent(sim: SimulatedDoorBoard,
                                                      door: SerialDoorBoard) -> None:
    sim.port.faults.silent = True
    with within_hang_guard():
        door.close()
        door.close()
    with pytest.raises(DoorError):
        door.heartbeat()


def test_an_answer_received_while_the_reader_thread_was_starved_is_not_a_timeout(
        sim: SimulatedDoorBoard, door: SerialDoorBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    """The board answered on time, but this process handed the bytes over late (a loaded Pi):
    the command is slow, not unanswered, and the board is not taken for gone."""
    handed_over = door.data_received

    def starved(data: bytes) -> None:
        time.sleep(0.5)  # longer than every try's deadline together (3 x 0.1 s)
        handed_over(data)

    monkeypatch.setattr(door, "data_received", starved)
    with within_hang_guard():
        door.heartbeat()
    monkeypatch.setattr(door, "data_received", handed_over)
    door.pulse(0.1)
    wait_for_event(door, DoorEventKind.RELOCKED)
