"""The door's decision, case by case."""

from __future__ import annotations

from datetime import date

import pytest

from accessd.door.decision import CustomerView, PersonView, Reason, decide

TODAY = date(2026, 11, 23)
ACME = CustomerView(id=1, contract_start=date(2026, 1, 1), contract_end=date(2026, 12, 31))
ALICE = PersonView(id=10, customer_id=1, active=True, restricted=False, uses_finger=True,
                   uses_pin=True)


def _customer(**changes: object) -> CustomerView:
    return CustomerView(**{**{f: getattr(ACME, f) for f in ACME.__slots__}, **changes})


def _person(**changes: object) -> PersonView:
    return PersonView(**{**{f: getattr(ALICE, f) for f in ALICE.__slots__}, **changes})


@pytest.mark.parametrize("customer, person, door, today, method, reason", [
    (ACME, ALICE, 1, TODAY, "finger", Reason.ALLOWED),
    (ACME, ALICE, 1, TODAY, "pin", Reason.ALLOWED),
    (ACME, ALICE, 1, date(2026, 12, 31), "finger", Reason.ALLOWED),  # last day of the service
    (ACME, ALICE, 1, date(2027, 1, 1), "finger", Reason.CONTRACT_ENDED),
    (ACME, ALICE, 1, date(2025, 12, 31), "finger", Reason.CONTRACT_NOT_STARTED),
    (_customer(contract_end=None), ALICE, 1, date(2040, 1, 1), "finger", Reason.ALLOWED),
    (ACME, _person(active=False), 1, TODAY, "finger", Reason.PERSON_INACTIVE),
    (ACME, _person(restricted=True), 1, TODAY, "finger", Reason.PERSON_RESTRICTED),
    (ACME, _person(uses_finger=False), 1, TODAY, "finger", Reason.CREDENTIAL_NOT_CHOSEN),
    (ACME, _person(uses_pin=False), 1, TODAY, "pin", Reason.CREDENTIAL_NOT_CHOSEN),
    (_customer(doors=frozenset({2})), ALICE, 1, TODAY, "finger", Reason.DOOR_NOT_ALLOWED),
    (_customer(doors=frozenset({1, 2})), ALICE, 1, TODAY, "finger", Reason.ALLOWED),
    (None, ALICE, 1, TODAY, "finger", Reason.UNKNOWN_CREDENTIAL),
    (ACME, None, 1, TODAY, "finger", Reason.UNKNOWN_CREDENTIAL),
    (ACME, _person(customer_id=2), 1, TODAY, "finger", Reason.UNKNOWN_CREDENTIAL),
])
def test_decision_and_its_reason(customer, person, door, today, method, reason) -> None:
    decision = decide(customer, person, door, today, method=method)
    assert decision.reason is reason
    assert decision.allowed is (reason is Reason.ALLOWED)


def test_an_ended_contract_is_refused_even_for_an_otherwise_perfect_person() -> None:
    ended = _customer(contract_end=date(2026, 11, 22))
    assert decide(ended, ALICE, 1, TODAY).reason is Reason.CONTRACT_ENDED
