"""The door board driver against the simulated board (the firmware's own logic) through a pty."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from firmware_bridge.door import DoorBoard, DoorEventKind
from firmware_bridge.doorboard import SerialDoorBoard
from firmware_bridge.errors import DoorOperationError, DoorWireError
from firmware_bridge.firmware import doorlink
from hardware_sim.door import SimulatedDoorBoard
from hardware_sim.errors import DoorLockedError

from .conftest import (
    HANG_GUARD,
    ScriptedBoard,
    collect_events,
    wait_for_event,
    wait_until,
)

K = DoorEventKind


def test_driver_implements_the_door_board_protocol(door: SerialDoorBoard) -> None:
    assert isinstance(door, DoorBoard)
    assert door.capabilities == {"inputs", "keypad", "autorelock", "authenticated"}


def test_hello_reports_the_boards_version_and_the_agreed_heartbeat(
        sim: SimulatedDoorBoard, link_key: bytes) -> None:
    driver = SerialDoorBoard(sim.path, link_key=link_key, heartbeat_timeout=0.5)
    driver.open()
    try:
        info = driver.board_info
        assert info is not None
        assert info.protocol_version == doorlink.PROTOCOL_VERSION
        assert info.heartbeat_ms == 500
        assert info.firmware
    finally:
        driver.close()


def test_a_freshly_opened_board_is_locked(any_door: SerialDoorBoard) -> None:
    assert any_door.inputs().locked


def test_lock_and_heartbeat_are_acknowledged(any_door: SerialDoorBoard) -> None:
    any_door.heartbeat()
    any_door.lock()
    assert any_door.inputs().locked


def test_pulse_unlocks_then_the_board_relocks_when_it_ends(sim: SimulatedDoorBoard,
                                                           door: SerialDoorBoard) -> None:
    door.pulse(0.2)
    wait_for_event(door, K.UNLOCKED)
    relocked, _ = wait_for_event(door, K.RELOCKED)
    assert relocked.reason == "pulse_end"
    assert sim.relay_locked
    relay = [c.value for c in sim.history if c.what == "relay_locked"]
    assert relay == [True, False, True]


def test_lock_ends_a_pulse_at_once(sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    door.pulse(10)
    assert not door.inputs().locked
    door.lock()
    assert sim.relay_locked
    relocked, _ = wait_for_event(door, K.RELOCKED)
    assert relocked.reason == "command"


def test_the_board_relocks_by_itself_when_heartbeats_stop(sim: SimulatedDoorBoard,
                                                          link_key: bytes) -> None:
    driver = SerialDoorBoard(sim.path, link_key=link_key, heartbeat_timeout=0.3)
    driver.open()
    try:
        driver.pulse(10)  # and then the daemon "hangs": no heartbeat() calls
        relocked, _ = wait_for_event(driver, K.RELOCKED)
        assert relocked.reason == "heartbeat_lost"
        assert sim.relay_locked
    finally:
        driver.close()


def test_heartbeats_keep_a_pulse_open_past_the_heartbeat_timeout(
        sim: SimulatedDoorBoard, link_key: bytes) -> None:
    driver = SerialDoorBoard(sim.path, link_key=link_key, heartbeat_timeout=1.0)
    driver.open()
    try:
        driver.pulse(10)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            driver.heartbeat()
            time.sleep(0.05)  # far more often than the 1 s timeout
        assert not sim.relay_locked
    finally:
        driver.close()
    assert sim.relay_locked  # close() locks


def test_door_opened_and_closed_while_unlocked_are_reported(sim: SimulatedDoorBoard,
                                                            door: SerialDoorBoard) -> None:
    door.pulse(5)
    sim.open_door()
    wait_for_event(door, K.DOOR_OPENED)
    assert door.inputs().door_open
    sim.close_door()
    wait_for_event(door, K.DOOR_CLOSED)
    assert not door.inputs().door_open


def test_opening_a_locked_door_by_hand_is_refused_by_the_world(sim: SimulatedDoorBoard,
                                                               door: SerialDoorBoard) -> None:
    with pytest.raises(DoorLockedError, match="locked"):
        sim.open_door()
    assert not sim.door_open


def test_forcing_a_locked_door_is_reported_as_forced(sim: SimulatedDoorBoard,
                                                     door: SerialDoorBoard) -> None:
    sim.force_door()
    _, before = wait_for_event(door, K.DOOR_FORCED)
    assert K.DOOR_OPENED not in [e.kind for e in before]
    sim.close_door()
    wait_for_event(door, K.DOOR_CLOSED)


def test_exit_button_and_tamper_are_reported(sim: SimulatedDoorBoard,
                                             door: SerialDoorBoard) -> None:
    sim.press_exit()
    wait_for_event(door, K.EXIT_PRESSED)
    sim.tamper(True)
    wait_for_event(door, K.TAMPER_ON)
    assert door.inputs().tamper
    sim.tamper(False)
    wait_for_event(door, K.TAMPER_OFF)


def test_keypad_keys_arrive_in_the_order_typed(sim: SimulatedDoorBoard,
                                               door: SerialDoorBoard) -> None:
    sim.keys("1234#")
    keys: list[str | None] = []
    while len(keys) < 5:
        event, _ = wait_for_event(door, K.KEY)
        keys.append(event.key)
    assert "".join(k or "" for k in keys) == "1234#"
    assert collect_events(door) == []


def test_repeated_keys_each_count(sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    sim.keys("00")
    assert [wait_for_event(door, K.KEY)[0].key for _ in range(2)] == ["0", "0"]


def test_typing_a_key_the_keypad_does_not_have_is_refused(sim: SimulatedDoorBoard) -> None:
    with pytest.raises(ValueError, match="not on the keypad"):
        sim.keys("12a")


def test_events_are_stamped_with_the_hosts_monotonic_clock_on_arrival(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    before = time.monotonic()
    sim.press_exit()
    event, _ = wait_for_event(door, K.EXIT_PRESSED)
    assert before <= event.at <= time.monotonic()


def test_an_event_in_a_corrupted_frame_arrives_once_on_the_retransmission(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    sim.port.faults.corrupt_next = 1
    sim.press_exit()
    wait_for_event(door, K.EXIT_PRESSED)
    assert door.bad_frames == 1
    assert collect_events(door) == []  # and only once


def test_a_repeated_event_is_acknowledged_each_time_but_delivered_once(
        scripted: Callable[..., ScriptedBoard], link_key: bytes) -> None:
    event = doorlink.pack_event(doorlink.EV_KEY, ord("5"), 7)

    def answer(board: ScriptedBoard, frame: doorlink.Frame) -> list[bytes]:
        if frame.type == doorlink.HELLO:  # the ACK of the first "got lost": sent again
            return [board.hello_reply(frame), board.sealed(doorlink.EVENT, 42, event),
                    board.sealed(doorlink.EVENT, 42, event)]
        return []

    board = scripted(answer)
    driver = SerialDoorBoard(board.port.path, link_key=link_key)
    driver.open()
    try:
        first = driver.next_event(HANG_GUARD)
        assert first is not None and first.key == "5"
        wait_until(lambda: sum(f.type == doorlink.ACK for f in board.received) == 2)
        assert driver.next_event(0.3) is None
    finally:
        driver.close()


def test_a_board_speaking_another_version_is_refused_at_open(
        scripted: Callable[..., ScriptedBoard], link_key: bytes) -> None:
    board = scripted(lambda b, f: [doorlink.encode(doorlink.NAK, f.seq, doorlink.pack_nak(
        doorlink.NAK_UNSUPPORTED_VERSION, 9))])
    driver = SerialDoorBoard(board.port.path, link_key=link_key)
    with pytest.raises(DoorWireError, match=r"speaks protocol version 9.*never falls back"):
        driver.open()
    driver.close()


def test_a_hello_reply_of_the_unauthenticated_version_1_is_refused_at_open(
        scripted: Callable[..., ScriptedBoard], link_key: bytes) -> None:
    board = scripted(lambda b, f: [b.hello_reply(f, version=1)])
    driver = SerialDoorBoard(board.port.path, link_key=link_key)
    with pytest.raises(DoorWireError, match="version 1"):
        driver.open()
    assert all(f.type == doorlink.HELLO for f in board.received)  # no command, none in clear


def test_a_nak_becomes_an_operation_error_naming_the_command(
        scripted: Callable[..., ScriptedBoard], link_key: bytes) -> None:
    def answer(board: ScriptedBoard, frame: doorlink.Frame) -> list[bytes]:
        if frame.type == doorlink.HELLO:
            return [board.hello_reply(frame)]
        return [board.sealed(doorlink.NAK, frame.seq,
                             doorlink.pack_nak(doorlink.NAK_BAD_PAYLOAD))]

    driver = SerialDoorBoard(scripted(answer).port.path, link_key=link_key)
    driver.open()
    try:
        with pytest.raises(DoorOperationError, match="refused PULSE: bad payload"):
            driver.pulse(1)
    finally:
        driver.close()


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_a_pulse_that_is_not_positive_is_refused_before_sending(door: SerialDoorBoard,
                                                                 seconds: float) -> None:
    with pytest.raises(DoorOperationError, match="more than 0 s"):
        door.pulse(seconds)


@pytest.mark.parametrize("kwargs", [{"heartbeat_timeout": 0.05}, {"heartbeat_timeout": 120},
                                    {"ack_timeout": 0}, {"retries": 0}])
def test_settings_out_of_bounds_are_refused_at_construction(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SerialDoorBoard("/dev/null", link_key=bytes(range(32)), **kwargs)  # type: ignore[arg-type]


def test_commands_before_open_say_to_open_first() -> None:
    driver = SerialDoorBoard("/nonexistent/door", link_key=bytes(range(32)))
    with pytest.raises(DoorOperationError, match="call open"):
        driver.pulse(1)
    with pytest.raises(DoorOperationError, match="call open"):
        driver.next_event(0)
    driver.close()
