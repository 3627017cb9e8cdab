"""The door's lookups in the database: who holds this slot, whose code and PIN is this.

Read fresh at every finger and every PIN (two indexed queries): a restriction or an ended
contract set in the panel applies at the very next attempt, with no cache to go stale.
Lookups only read, in deferred transactions that never queue behind a writer; the PIN
failure count is written apart (``accessd.door.pin_attempts``), when the logic asks for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.customers.pins import verify_pin
from accessd.db import read_only_engine
from accessd.door.decision import CustomerView, PersonView
from accessd.door.logic import PinCheck
from accessd.models import Customer, Finger, Person, door_customers
from accessd.models.enums import Credential

_FINGER_CREDENTIALS = {Credential.FINGER, Credential.FINGER_OR_PIN}
_PIN_CREDENTIALS = {Credential.PIN, Credential.FINGER_OR_PIN}


def customer_view(session: Session, customer: Customer) -> CustomerView:
    doors = session.scalars(
        select(door_customers.c.door_id).where(door_customers.c.customer_id == customer.id)
    ).all()
    # A customer bound to no door may use every door: the one-door site needs no set-up.
    return CustomerView(customer.id, customer.contract_start, customer.contract_end,
                        frozenset(doors) if doors else None, customer.public_id)


def person_view(person: Person) -> PersonView:
    return PersonView(
        id=person.id, customer_id=person.customer_id, active=person.active,
        restricted=person.restricted, uses_finger=person.credential in _FINGER_CREDENTIALS,
        uses_pin=person.credential in _PIN_CREDENTIALS, public_id=person.public_id)


# Built once: statement construction costs more than execution on the hot path.
_BY_SLOT = (
    select(Person.id, Person.customer_id, Person.active, Person.restricted, Person.credential,
           Person.public_id, Customer.contract_start, Customer.contract_end, Customer.public_id)
    .join(Finger, Finger.person_id == Person.id)
    .join(Customer, Customer.id == Person.customer_id)
    .where(Finger.sensor_slot == bindparam("slot")))
_DOORS = select(door_customers.c.door_id).where(
    door_customers.c.customer_id == bindparam("customer"))


class SqlDirectory:
    """``accessd.door.logic.Directory`` on the database.

    :param clock: the current moment, aware UTC (is a locked PIN still locked?).
    """

    def __init__(self, sessions: sessionmaker[Session], *,
                 clock: Callable[[], dt.datetime]) -> None:
        # Lookups only read: a deferred transaction, so the door never queues behind a writer.
        self._reader = read_only_engine(sessions.kw["bind"])
        self._clock = clock

    def by_slot(self, slot: int) -> tuple[CustomerView, PersonView] | None:
        """The door's hot path: two indexed Core queries, no ORM objects."""
        with self._reader.connect() as conn:
            row = conn.execute(_BY_SLOT, {"slot": slot}).first()
            if row is None:
                return None
            doors = conn.execute(_DOORS, {"customer": row[1]}).scalars().all()
        (pid, cid, active, restricted, credential, person_uuid, start, end, customer_uuid) = row
        return (CustomerView(cid, start, end, frozenset(doors) if doors else None, customer_uuid),
                PersonView(pid, cid, active, restricted, credential in _FINGER_CREDENTIALS,
                           credential in _PIN_CREDENTIALS, person_uuid))

    def check_pin(self, code: str, pin: str) -> PinCheck:
        """Whose code ``code`` is, and whether ``pin`` is theirs (reads only)."""
        with Session(self._reader) as session:
            person = session.scalars(select(Person).where(Person.keypad_code == code)).first()
            if person is None or person.pin_hash is None:
                return PinCheck(None, None, accepted=False)
            customer = session.get_one(Customer, person.customer_id)
            views = customer_view(session, customer), person_view(person)
            if person.pin_locked_until is not None and person.pin_locked_until > self._clock():
                return PinCheck(*views, accepted=False, locked=True)
            return PinCheck(*views, accepted=verify_pin(person.pin_hash, pin))
