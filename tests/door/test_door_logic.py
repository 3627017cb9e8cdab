"""The door's state machine with a moving clock: fingers, PINs, the board's inputs, alarms."""

from __future__ import annotations

from datetime import date

import pytest

from accessd.door.decision import CustomerView, PersonView
from accessd.door.logic import (
    CountPinAttempt,
    DoorLogic,
    DoorRules,
    Pulse,
    RaiseAlarm,
    Record,
    WipeSensor,
)
from accessd.models.enums import AlarmKind, EventKind, EventMethod
from firmware_bridge.door import DoorEvent, DoorEventKind
from tests.door.directory import MemoryDirectory

TODAY = date(2026, 11, 23)
RULES = DoorRules(release_seconds=5, held_open_alarm_seconds=15, max_failures=3,
                  failure_window_seconds=60, backoff_seconds=30, keypad_timeout_seconds=10)


@pytest.fixture
def directory() -> MemoryDirectory:
    d = MemoryDirectory()
    d.customers[1] = CustomerView(1, date(2026, 1, 1), date(2026, 12, 31))
    d.add(PersonView(10, 1, active=True, restricted=False, uses_finger=True, uses_pin=True),
          slot=0, code="1001", pin="424242")
    return d


@pytest.fixture
def door(directory: MemoryDirectory) -> DoorLogic:
    return DoorLogic(door_id=1, rules=RULES, directory=directory, today=lambda: TODAY)


def typed(door: DoorLogic, keys: str, now: float) -> list:
    """Type ``keys``; the PIN attempts are counted as the daemon's shell counts them, and the
    other actions returned."""
    actions: list = []
    for k in keys:
        actions += door.key(k, now)
    assert isinstance(door.directory, MemoryDirectory)
    return door.directory.carry_out(actions)


def board(kind: DoorEventKind, **kw: object) -> DoorEvent:
    return DoorEvent(kind, at=0.0, **kw)  # type: ignore[arg-type]


def test_known_finger_is_recorded_then_opens_for_the_release_time(door: DoorLogic) -> None:
    actions = door.finger(0, now=100.0)
    assert actions == [Record(EventKind.GRANTED, EventMethod.FINGER, "allowed", 1, 10), Pulse(5)]


def test_unknown_finger_is_recorded_without_personal_data(door: DoorLogic) -> None:
    assert door.finger(None, now=1.0) == [Record(EventKind.UNKNOWN_FINGER, EventMethod.FINGER)]


def test_restricted_person_is_refused_with_the_reason(door: DoorLogic,
                                                      directory: MemoryDirectory) -> None:
    directory.update(10, restricted=True)
    assert door.finger(0, now=1.0) == [
        Record(EventKind.DENIED, EventMethod.FINGER, "person_restricted", 1, 10)]


def test_ended_contract_is_refused_with_the_reason(door: DoorLogic,
                                                   directory: MemoryDirectory) -> None:
    directory.end_contract(1, date(2026, 11, 1))
    assert door.finger(0, now=1.0)[0].reason == "contract_ended"


def test_code_star_pin_hash_opens(door: DoorLogic) -> None:
    assert typed(door, "1001*424242#", now=5.0) == [
        Record(EventKind.GRANTED, EventMethod.PIN, "allowed", 1, 10), Pulse(5)]


def test_wrong_pin_is_refused_and_repeated_wrong_pins_lock_the_person(
        door: DoorLogic, directory: MemoryDirectory) -> None:
    directory.pin_max_failures = 2
    assert typed(door, "1001*000000#", 1.0)[0].reason == "wrong_pin"
    assert typed(door, "1001*000000#", 2.0)[0].reason == "wrong_pin"
    assert typed(door, "1001*424242#", 3.0)[0].reason == "pin_locked"


def test_a_slow_typist_starts_again_after_the_keypad_timeout(door: DoorLogic) -> None:
    typed(door, "1001*42", now=0.0)
    # What is left, "4242#", reads as a person code alone (code and finger), and no one's.
    assert typed(door, "4242#", now=30.0)[0].reason == "unknown_credential"


def test_k_failures_within_t_back_off_the_reader_and_raise_an_alarm(door: DoorLogic) -> None:
    door.finger(None, 0.0)
    door.finger(None, 1.0)
    third = door.finger(None, 2.0)
    assert RaiseAlarm in {type(a) for a in third}
    assert not door.accepting(10.0)
    assert door.finger(0, 10.0) == [Record(EventKind.DENIED, EventMethod.FINGER,
                                           "reader_backoff")]
    assert door.accepting(32.0)
    # The alarm stays open until staff clear it: its words stay true after the pause ends.
    (alarm,) = [a for a in third if isinstance(a, RaiseAlarm)]
    assert "ignores" not in alarm.detail and "then ignored fingers and PINs for" in alarm.detail
    assert door.finger(0, 32.0)[-1] == Pulse(5)


def test_failures_spread_wider_than_the_window_do_not_back_off(door: DoorLogic) -> None:
    for t in (0.0, 61.0, 122.0, 183.0):
        assert all(not isinstance(a, RaiseAlarm) for a in door.finger(None, t))
    assert door.accepting(184.0)


def test_exit_button_opens_and_is_recorded(door: DoorLogic) -> None:
    assert door.board(board(DoorEventKind.EXIT_PRESSED), 1.0) == [Record(EventKind.EXIT),
                                                                  Pulse(5)]


def test_door_held_open_past_the_limit_raises_one_alarm(door: DoorLogic) -> None:
    door.finger(0, 0.0)
    door.board(board(DoorEventKind.DOOR_OPENED), 1.0)
    assert door.tick(10.0) == []
    held = door.tick(16.5)
    assert held[0] == Record(EventKind.DOOR_HELD_OPEN)
    assert isinstance(held[1], RaiseAlarm) and held[1].kind is AlarmKind.DOOR_HELD_OPEN
    assert door.tick(40.0) == []
    door.board(board(DoorEventKind.DOOR_CLOSED), 41.0)
    assert door.tick(100.0) == []


def test_forced_door_is_an_event_and_an_alarm(door: DoorLogic) -> None:
    actions = door.board(board(DoorEventKind.DOOR_FORCED), 1.0)
    assert actions[0] == Record(EventKind.DOOR_FORCED)
    assert isinstance(actions[1], RaiseAlarm)


def test_tamper_wipes_the_sensor_first(door: DoorLogic) -> None:
    actions = door.board(board(DoorEventKind.TAMPER_ON), 1.0)
    assert actions[0] == WipeSensor()
    assert door.board(board(DoorEventKind.TAMPER_ON), 2.0) == []  # one wipe per tamper


def test_release_time_under_three_seconds_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        DoorRules(release_seconds=2)


def keys_typed(door: DoorLogic, keys: str, now: float) -> list:
    """Type ``keys`` and return every action, the PIN attempts' counts included."""
    return [action for key in keys for action in door.key(key, now)]


def test_a_typed_pin_is_counted_by_the_shell_not_written_by_the_logic(
        door: DoorLogic, directory: MemoryDirectory) -> None:
    wrong = keys_typed(door, "1001*000000#", 1.0)
    assert wrong == [CountPinAttempt(10, right=False),
                     Record(EventKind.DENIED, EventMethod.PIN, "wrong_pin", 1, 10)]
    assert directory.pin_failures == {}  # asked for, not written: the directory only reads
    right = keys_typed(door, "1001*424242#", 2.0)
    assert right == [CountPinAttempt(10, right=True),
                     Record(EventKind.GRANTED, EventMethod.PIN, "allowed", 1, 10), Pulse(5)]


def test_a_locked_pin_and_an_unknown_code_are_not_counted(
        door: DoorLogic, directory: MemoryDirectory) -> None:
    directory.pin_failures[10] = directory.pin_max_failures
    assert keys_typed(door, "1001*424242#", 1.0) == [
        Record(EventKind.DENIED, EventMethod.PIN, "pin_locked", 1, 10)]
    assert keys_typed(door, "9999*424242#", 2.0) == [
        Record(EventKind.DENIED, EventMethod.PIN, "unknown_credential")]
