"""An in-memory ``Directory`` for driving the door's state machine without a database.

The daemon's own directory reads SQL; this one holds the same facts in dictionaries so that
hypothesis can run thousands of door sequences a second. The integration suites use the real one.
Like the real one, its lookups only read: ``carry_out`` plays the daemon's shell for the PIN
failure count the logic asks for with ``CountPinAttempt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from accessd.door.decision import OPEN_ACCESS, Access, CustomerView, PersonView
from accessd.door.logic import Action, CountPinAttempt, PinCheck
from accessd.models.enums import AuthMode


@dataclass
class MemoryDirectory:
    customers: dict[int, CustomerView] = field(default_factory=dict)
    persons: dict[int, PersonView] = field(default_factory=dict)
    slots: dict[int, int] = field(default_factory=dict)  # slot -> person id
    pins: dict[str, tuple[int, str]] = field(default_factory=dict)  # code -> (person id, PIN)
    pin_failures: dict[int, int] = field(default_factory=dict)
    pin_max_failures: int = 3
    # person id -> their grants at this door; absent: one 24/7 grant (``OPEN_ACCESS``)
    grants: dict[int, Access] = field(default_factory=dict)
    mode: AuthMode = AuthMode.FINGER_OR_PIN

    def add(self, person: PersonView, *, slot: int | None = None, code: str | None = None,
            pin: str | None = None) -> None:
        self.persons[person.id] = person
        if slot is not None:
            self.slots[slot] = person.id
        if code is not None and pin is not None:
            self.pins[code] = (person.id, pin)

    def update(self, person_id: int, **changes: object) -> None:
        self.persons[person_id] = replace(self.persons[person_id], **changes)  # type: ignore[arg-type]

    def end_contract(self, customer_id: int, last_day: date) -> None:
        self.customers[customer_id] = replace(self.customers[customer_id], contract_end=last_day)

    def by_slot(self, slot: int) -> tuple[CustomerView, PersonView] | None:
        person = self.persons.get(self.slots.get(slot, -1))
        if person is None:
            return None
        return self.customers[person.customer_id], person

    def by_code(self, code: str) -> tuple[CustomerView, PersonView] | None:
        if code not in self.pins:
            return None
        person = self.persons[self.pins[code][0]]
        return self.customers[person.customer_id], person

    def access(self, person: PersonView, door_id: int, day: date) -> Access:
        return replace(self.grants.get(person.id, OPEN_ACCESS), mode=self.mode)

    def check_pin(self, code: str, pin: str) -> PinCheck:
        if code not in self.pins:
            return PinCheck(None, None, accepted=False)
        person_id, right = self.pins[code]
        person = self.persons[person_id]
        customer = self.customers[person.customer_id]
        if self.pin_failures.get(person_id, 0) >= self.pin_max_failures:
            return PinCheck(customer, person, accepted=False, locked=True)
        return PinCheck(customer, person, accepted=pin == right)

    def count_pin_attempt(self, attempt: CountPinAttempt) -> None:
        person_id = attempt.person_id
        if attempt.right:
            self.pin_failures[person_id] = 0
        else:
            self.pin_failures[person_id] = self.pin_failures.get(person_id, 0) + 1

    def carry_out(self, actions: list[Action]) -> list[Action]:
        """Count the PIN attempts among ``actions``, as the daemon's shell does; returns the
        other actions."""
        rest: list[Action] = []
        for action in actions:
            if isinstance(action, CountPinAttempt):
                self.count_pin_attempt(action)
            else:
                rest.append(action)
        return rest
