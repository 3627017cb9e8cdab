"""Each door's authentication mode, and the code-and-finger path: a person types their code,
and the next finger is checked 1:1 against theirs; two-factor doors want both factors of the
same person within the keypad timeout, and say which one was missing."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from accessd.door.decision import Access, CustomerView, GrantView, PersonView
from accessd.door.logic import DoorLogic, DoorRules, Pulse, Record, VerifyFinger
from accessd.models.enums import AuthMode, EventKind, EventMethod
from tests.door.directory import MemoryDirectory

TODAY = date(2026, 11, 23)
RULES = DoorRules(release_seconds=5, held_open_alarm_seconds=15, max_failures=5,
                  failure_window_seconds=60, backoff_seconds=30, keypad_timeout_seconds=10)
ALICE, BOB = 10, 11


@pytest.fixture
def directory() -> MemoryDirectory:
    d = MemoryDirectory()
    d.customers[1] = CustomerView(1, date(2026, 1, 1), None)
    d.add(PersonView(ALICE, 1, active=True, restricted=False, uses_finger=True, uses_pin=True),
          slot=0, code="1001", pin="424242")
    d.add(PersonView(BOB, 1, active=True, restricted=False, uses_finger=True, uses_pin=True),
          slot=1, code="1002", pin="131313")
    return d


def door_in(directory: MemoryDirectory, mode: AuthMode) -> DoorLogic:
    directory.mode = mode
    return DoorLogic(door_id=1, rules=RULES, directory=directory, today=lambda: TODAY,
                     local_now=lambda: datetime(2026, 11, 23, 12, 0))


def typed(door: DoorLogic, keys: str, now: float) -> list:
    actions: list = []
    for k in keys:
        actions += door.key(k, now)
    assert isinstance(door.directory, MemoryDirectory)
    return door.directory.carry_out(actions)


def reasons(actions: list) -> list[str | None]:
    return [a.reason for a in actions if isinstance(a, Record)]


def test_a_finger_door_refuses_a_pin_and_a_pin_door_a_finger(
        directory: MemoryDirectory) -> None:
    finger_door = door_in(directory, AuthMode.FINGER)
    assert reasons(typed(finger_door, "1001*424242#", 1.0)) == ["method_not_allowed"]
    assert Pulse(5) in finger_door.finger(0, now=2.0)
    pin_door = door_in(directory, AuthMode.PIN)
    assert reasons(pin_door.finger(0, now=1.0)) == ["method_not_allowed"]
    assert Pulse(5) in typed(pin_door, "1001*424242#", 2.0)


def test_code_then_finger_checks_that_persons_templates_only(
        directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER_OR_PIN)
    assert typed(door, "1002#", 1.0) == [VerifyFinger(BOB, 10)]
    assert door.awaiting_finger(2.0) == (BOB, 11.0)
    actions = door.finger_checked(BOB, True, now=3.0)
    assert actions == [Record(EventKind.GRANTED, EventMethod.CODE_AND_FINGER, "allowed", 1, BOB),
                       Pulse(5)]
    assert door.awaiting_finger(3.5) is None
    typed(door, "1002#", 20.0)
    assert reasons(door.finger_checked(BOB, False, now=21.0)) == ["finger_not_matched"]


def test_a_code_nobody_has_is_refused_at_once(directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER)
    assert reasons(typed(door, "9999#", 1.0)) == ["unknown_credential"]
    assert door.awaiting_finger(1.5) is None


def test_no_finger_after_the_code_is_refused_when_the_keypad_times_out(
        directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER)
    typed(door, "1001#", 1.0)
    assert door.tick(10.5) == []
    actions = door.tick(11.5)
    assert actions[0] == Record(EventKind.DENIED, EventMethod.CODE_AND_FINGER,
                                "second_factor_missing", 1, ALICE)
    assert door.finger_checked(ALICE, True, now=12.0) == []  # too late: no opening


def test_a_code_opens_nothing_for_someone_the_grants_refuse(directory: MemoryDirectory) -> None:
    directory.grants[ALICE] = Access((GrantView(0, False, schedule="sat 09:00-10:00"),))
    door = door_in(directory, AuthMode.FINGER)
    assert reasons(typed(door, "1001#", 1.0)) == ["outside_schedule"]
    assert door.awaiting_finger(1.5) is None


def test_two_factors_pin_first_then_the_finger_one_to_one(directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER_AND_PIN)
    actions = typed(door, "1001*424242#", 1.0)
    assert actions == [VerifyFinger(ALICE, 10)]  # no opening on the PIN alone
    assert door.finger_checked(ALICE, True, now=2.0)[-1] == Pulse(5)


def test_two_factors_finger_first_then_the_pin(directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER_AND_PIN)
    assert door.finger(0, now=1.0) == []  # waits for the PIN
    actions = typed(door, "1001*424242#", 2.0)
    assert Record(EventKind.GRANTED, EventMethod.FINGER_AND_PIN, "allowed", 1, ALICE) in actions
    assert Pulse(5) in actions


def test_two_factors_of_two_people_are_refused(directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER_AND_PIN)
    door.finger(1, now=1.0)  # Bob's finger
    actions = typed(door, "1001*424242#", 2.0)  # Alice's PIN
    assert reasons(actions) == ["second_factor_mismatch"]
    assert not any(isinstance(a, Pulse) for a in actions)


def test_a_finger_alone_at_a_two_factor_door_is_refused_when_no_pin_follows(
        directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER_AND_PIN)
    door.finger(0, now=1.0)
    assert reasons(door.tick(12.0)) == ["second_factor_missing"]


def test_a_wrong_pin_at_a_two_factor_door_is_refused_and_counted(
        directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER_AND_PIN)
    door.finger(0, now=1.0)
    assert reasons(typed(door, "1001*000000#", 2.0)) == ["wrong_pin"]
    assert directory.pin_failures[ALICE] == 1


def test_a_code_alone_is_no_factor_at_a_two_factor_door(directory: MemoryDirectory) -> None:
    door = door_in(directory, AuthMode.FINGER_AND_PIN)
    assert reasons(typed(door, "1001#", 1.0)) == ["method_not_allowed"]
