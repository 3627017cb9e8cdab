"""The daemon's directory and PIN lockout on a real database: a lookup only reads; the PIN
failure count changes only when the daemon's shell counts an attempt the logic asked for."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from accessd.customers.pins import hash_pin
from accessd.door.directory import SqlDirectory
from accessd.door.logic import CountPinAttempt
from accessd.door.pin_attempts import PinAttempts
from accessd.models import Credential, Customer, LawfulBasis, Person

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CODE, PIN, WRONG = "4711", "285714", "000000"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        acme = Customer(name="Acme", contract_start=dt.date(2026, 1, 1), contract_end=None,
                        grace_days=0, lawful_basis=LawfulBasis.CONSENT)
        session.add(acme)
        session.flush()
        person = Person(customer_id=acme.id, name="Alice", credential=Credential.PIN,
                        keypad_code=CODE, pin_hash=hash_pin(PIN))
        session.add(person)
        session.flush()
        return person.id


def lockout_state(sessions: sessionmaker[Session], person_id: int) -> tuple[int, object]:
    with sessions() as session:
        person = session.get_one(Person, person_id)
        return person.pin_failures, person.pin_locked_until


def test_checking_a_pin_only_reads(sessions: sessionmaker[Session], alice: int) -> None:
    directory = SqlDirectory(sessions, clock=Clock())
    assert not directory.check_pin(CODE, WRONG).accepted
    assert directory.check_pin(CODE, PIN).accepted
    assert directory.check_pin("9999", PIN).person is None
    assert lockout_state(sessions, alice) == (0, None)


def test_counted_wrong_pins_lock_the_pin_until_the_lockout_ends(
        sessions: sessionmaker[Session], alice: int) -> None:
    clock = Clock()
    directory = SqlDirectory(sessions, clock=clock)
    attempts = PinAttempts(sessions, max_failures=3, lockout=dt.timedelta(minutes=5),
                           clock=clock)
    for _ in range(3):
        check = directory.check_pin(CODE, WRONG)
        assert not check.accepted and not check.locked
        attempts.count(CountPinAttempt(alice, right=False))
    assert directory.check_pin(CODE, PIN).locked
    clock.now += dt.timedelta(minutes=5, seconds=1)
    check = directory.check_pin(CODE, PIN)
    assert check.accepted and not check.locked


def test_a_counted_right_pin_starts_the_count_again(sessions: sessionmaker[Session],
                                                    alice: int) -> None:
    attempts = PinAttempts(sessions, max_failures=3, lockout=dt.timedelta(minutes=5),
                           clock=Clock())
    for right in (False, False, True, False, False):
        attempts.count(CountPinAttempt(alice, right=right))
    assert lockout_state(sessions, alice) == (2, None)
    assert not SqlDirectory(sessions, clock=Clock()).check_pin(CODE, PIN).locked
