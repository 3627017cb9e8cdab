"""The door's lookups in the database: who holds this slot, whose code and PIN is this.

Read fresh at every finger and every PIN (two indexed queries): a restriction or an ended
contract set in the panel applies at the very next attempt, with no cache to go stale.
Lookups only read, in deferred transactions that never queue behind a writer; the PIN
failure count is written apart (``accessd.door.pin_attempts``), when the logic asks for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import bindparam, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from accessd.customers.pins import verify_pin
from accessd.db import read_only_engine
from accessd.door.decision import Access, CustomerView, GrantView, PersonView
from accessd.door.logic import PinCheck
from accessd.models import (
    Customer,
    Door,
    Finger,
    Grant,
    Holiday,
    Person,
    SensorSlot,
    Zone,
    door_customers,
)
from accessd.models.enums import AuthMode, Credential

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
# The finger this door recorded at the slot (its library may be a cache, at slots of its
# own), else the finger enrolled at that number: one statement either way.
_enrolled = aliased(Finger)
_BY_DOOR_SLOT = (
    select(Person.id, Person.customer_id, Person.active, Person.restricted, Person.credential,
           Person.public_id, Customer.contract_start, Customer.contract_end, Customer.public_id)
    .join(Finger, Finger.person_id == Person.id)
    .join(Customer, Customer.id == Person.customer_id)
    .where(Finger.id == func.coalesce(
        select(SensorSlot.finger_id).where(SensorSlot.door_id == bindparam("door"),
                                           SensorSlot.slot == bindparam("slot"))
        .scalar_subquery(),
        select(_enrolled.id).where(_enrolled.sensor_slot == bindparam("slot"))
        .scalar_subquery())))
_DOORS = select(door_customers.c.door_id).where(
    door_customers.c.customer_id == bindparam("customer"))
_BY_CODE = (
    select(Person.id, Person.customer_id, Person.active, Person.restricted, Person.credential,
           Person.public_id, Customer.contract_start, Customer.contract_end, Customer.public_id)
    .join(Customer, Customer.id == Person.customer_id)
    .where(Person.keypad_code == bindparam("code")))

# The door's zone and the zones around it, with their distance from the door (bounded).
_chain = (select(Door.zone_id.label("id"), literal(0).label("depth"))
          .where(Door.id == bindparam("door"), Door.zone_id.is_not(None))
          .cte("chain", recursive=True))
_chain = _chain.union_all(
    select(Zone.parent_id, _chain.c.depth + 1).join(_chain, Zone.id == _chain.c.id)
    .where(Zone.parent_id.is_not(None), _chain.c.depth < 16))
_DOOR_FACTS = (
    select(Door.auth_mode).where(Door.id == bindparam("door")).scalar_subquery(),
    exists().where(Grant.person_id == bindparam("person")),
    exists().where(Holiday.day == bindparam("day")),
)
_GRANTS = (
    select(Grant.person_id, _chain.c.depth, Grant.schedule, Grant.closed_on_holidays,
           Grant.valid_from, Grant.valid_until, *_DOOR_FACTS)
    .join(_chain, Grant.zone_id == _chain.c.id)
    .where(Grant.customer_id == bindparam("customer"),
           or_(Grant.person_id.is_(None), Grant.person_id == bindparam("person"))))
_DOOR = select(
    Door.auth_mode,
    exists().where(Grant.person_id == bindparam("person")),
    exists().where(Holiday.day == bindparam("day")),
).where(Door.id == bindparam("door"))


class SqlDirectory:
    """``accessd.door.logic.Directory`` on the database.

    :param clock: the current moment, aware UTC (is a locked PIN still locked?).
    """

    def __init__(self, sessions: sessionmaker[Session], *,
                 clock: Callable[[], dt.datetime], door_id: int | None = None) -> None:
        # Lookups only read: a deferred transaction, so the door never queues behind a writer.
        self._reader = read_only_engine(sessions.kw["bind"])
        self._clock = clock
        self._door_id = door_id

    def by_slot(self, slot: int) -> tuple[CustomerView, PersonView] | None:
        """The door's hot path: two indexed Core queries (the slot's person; the customer's
        door list), no ORM objects."""
        with self._reader.connect() as conn:
            if self._door_id is None:
                row = conn.execute(_BY_SLOT, {"slot": slot}).first()
            else:
                row = conn.execute(_BY_DOOR_SLOT, {"door": self._door_id, "slot": slot}).first()
            if row is None:
                return None
            doors = conn.execute(_DOORS, {"customer": row[1]}).scalars().all()
        (pid, cid, active, restricted, credential, person_uuid, start, end, customer_uuid) = row
        return (CustomerView(cid, start, end, frozenset(doors) if doors else None, customer_uuid),
                PersonView(pid, cid, active, restricted, credential in _FINGER_CREDENTIALS,
                           credential in _PIN_CREDENTIALS, person_uuid))

    def by_code(self, code: str) -> tuple[CustomerView, PersonView] | None:
        """Whose person code ``code`` is (a 1:1 finger check follows)."""
        with self._reader.connect() as conn:
            row = conn.execute(_BY_CODE, {"code": code}).first()
            if row is None:
                return None
            doors = conn.execute(_DOORS, {"customer": row[1]}).scalars().all()
        (pid, cid, active, restricted, credential, person_uuid, start, end, customer_uuid) = row
        return (CustomerView(cid, start, end, frozenset(doors) if doors else None, customer_uuid),
                PersonView(pid, cid, active, restricted, credential in _FINGER_CREDENTIALS,
                           credential in _PIN_CREDENTIALS, person_uuid))

    def access(self, person: PersonView, door_id: int, day: dt.date) -> Access:
        """The person's grants covering the door, the door's mode, today's holiday: one
        indexed Core query (the zone chain is a short recursive walk; the door's facts ride
        on each grant row), and a second only when no grant covers the door."""
        params = {"door": door_id, "customer": person.customer_id, "person": person.id,
                  "day": day}
        with self._reader.connect() as conn:
            rows = conn.execute(_GRANTS, params).all()
            door = rows[0][-3:] if rows else conn.execute(_DOOR, params).first()
        if door is None:
            return Access(())
        mode, limited, holiday = door
        return Access(tuple(GrantView(row[1], row[0] is not None, row[2], bool(row[3]), row[4],
                                      row[5]) for row in rows),
                      person_limited=bool(limited), holiday=bool(holiday),
                      mode=AuthMode(mode))

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
