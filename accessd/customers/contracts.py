"""Colocation customers: their contracts, lawful basis, and when their data is due for purge.

Services for the CLI and the panel alike. Each takes a ``Session`` and only adds and flushes:
the caller owns the transaction. The purge itself is ``accessd.privacy.purge``'s; this module
only says
when it is due, by the rule below, so that every screen shows the same date.

A contract's ``contract_end`` is the last day of service; that day ends at midnight in the
site's time zone (``access.timezone``). The purge is due ``grace_days`` whole days later: with
a last day of 30 June and no grace, at 1 July 00:00 local time ("purge due on 1 July").
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from accessd.clock import SiteClock
from accessd.config import Settings
from accessd.customers.collection import contract_over
from accessd.customers.consent import ACTIVE_CONSENT
from accessd.errors import InvalidInputError, NotFoundError
from accessd.inputs import optional_id, parse_day, parse_text
from accessd.models import (
    MAX_GRACE_DAYS,
    AccessEvent,
    Consent,
    Customer,
    Finger,
    LawfulBasis,
    Person,
    utcnow,
)
from accessd.privacy.purge import purge_due_at as due_moment
from accessd.zones.grants import grant_default_zones

NAME_MAX = 200  # Customer.name / Person.name column length
REFERENCE_MAX = 500  # Customer.necessity_reference column length
SUGGESTIONS = 3  # "did you mean" names offered at most


class ContractState(enum.StrEnum):
    """Where a contract stands on a given day; derived from its dates, never stored."""

    NOT_STARTED = "not started"
    ACTIVE = "active"
    ENDED = "ended"  # over; data kept for the grace period, purge scheduled
    PURGE_DUE = "purge due"  # the purge moment has passed: the next purge check removes it


@dataclass(frozen=True, slots=True)
class ContractStatus:
    """A contract's state at one moment, and when its data goes (``None``: no end date yet)."""

    state: ContractState
    today: dt.date
    purge_on: dt.date | None
    purge_at: dt.datetime | None  # UTC
    days_to_purge: int | None  # whole local days from today; 0 or less once due

    def describe(self) -> str:
        """One line for people: ``active; purge due on 2025-07-01 (42 days left)``."""
        if self.purge_on is None:
            return f"{self.state} (no end date)"
        if self.state is ContractState.PURGE_DUE:
            # The daemon checks at least hourly (``purge.check_interval_minutes`` <= 60).
            return (f"purge due since {self.purge_on} (done at the next purge check, within "
                    "the hour while the door's daemon runs)")
        days = self.days_to_purge
        left = "1 day left" if days == 1 else f"{days} days left"
        return f"{self.state}; purge due on {self.purge_on} ({left})"


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """A customer as lists show it: the row, its contract status, its people and fingers."""

    customer: Customer
    status: ContractStatus
    persons: int
    fingers: int


@dataclass(frozen=True, slots=True)
class CustomerName:
    """A customer as a choice in a form: its ids and its name."""

    id: int
    public_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """What ending a contract on ``last_day`` will destroy, and when: for the confirmation."""

    customer_id: int
    customer_name: str
    last_day: dt.date
    grace_days: int
    purge_on: dt.date
    purge_at: dt.datetime  # UTC
    persons: int
    fingers: int
    consents: int
    events: int
    already_due: bool = False  # the purge moment has passed: the next purge check runs it
    runs_by: dt.datetime | None = None  # UTC: the latest the purge check gets to it
    check_minutes: int = 60  # how often the daemon checks for due purges


def purge_runs_by(purge_at: dt.datetime, now: dt.datetime, check_minutes: int) -> dt.datetime:
    """The latest moment a purge due at ``purge_at`` runs: the daemon checks for due purges
    at its start and then every ``check_minutes`` (``accessd.privacy.scheduler``), so the first
    check at or after the due moment (or after now, when that has passed) comes within one
    interval."""
    return max(purge_at, now) + dt.timedelta(minutes=check_minutes)


def parse_date(field: str, text: str) -> dt.date:
    """An ISO date (``YYYY-MM-DD``) typed by a person (``accessd.inputs.parse_day``).

    :raises InvalidInputError: naming ``field``, when ``text`` is not such a date or lies
        outside the dates this system handles.
    """
    return parse_day(field, text)


def purge_due_at(customer: Customer, zone: ZoneInfo) -> dt.datetime | None:
    """The moment (UTC) the customer's data is due for purge, ``None`` without an end date."""
    if customer.contract_end is None:
        return None
    return purge_moment(customer.contract_end, customer.grace_days, zone)[1]


def purge_moment(last_day: dt.date, grace_days: int, zone: ZoneInfo) -> tuple[dt.date, dt.datetime]:
    """The local day a purge is due and its first moment in UTC: midnight in the site's zone,
    ``grace_days`` whole days after the last day of service has ended (the purge's own rule,
    ``accessd.privacy.purge.purge_due_at``, so the panel never promises another date)."""
    return last_day + dt.timedelta(days=grace_days + 1), due_moment(last_day, grace_days, zone)


def contract_status(customer: Customer, clock: SiteClock) -> ContractStatus:
    """Where the customer's contract stands now, in the site's days (``clock``'s now)."""
    now = clock.now()
    today = clock.local_day(now)
    purge_on: dt.date | None = None
    purge_at: dt.datetime | None = None
    if customer.contract_end is not None:
        purge_on, purge_at = purge_moment(customer.contract_end, customer.grace_days,
                                          clock.zone)
    days = None if purge_on is None else (purge_on - today).days
    if today < customer.contract_start:
        state = ContractState.NOT_STARTED
    elif not contract_over(customer, today):
        state = ContractState.ACTIVE
    elif purge_at is not None and now < purge_at:
        state = ContractState.ENDED
    else:
        state = ContractState.PURGE_DUE
    return ContractStatus(state, today, purge_on, purge_at, days)


def add_customer(
    session: Session,
    name: str,
    contract_start: dt.date,
    contract_end: dt.date | None = None,
    *,
    settings: Settings,
    grace_days: int | None = None,
    lawful_basis: LawfulBasis | str | None = None,
    necessity_reference: str | None = None,
    now: dt.datetime | None = None,
) -> Customer:
    """Record a new customer and its contract.

    The lawful basis may wait (enrolment is refused until it is recorded). The data key is made
    at the first enrolment, so adding a customer needs no keys.

    :param grace_days: days after the last day before the purge; default ``purge.grace_days``.
    :param now: the current time (tests move it): a contract already due for purge is refused.
    :raises InvalidInputError: a value outside what is allowed, naming the field.
    """
    name = clean_name("name", name)
    _refuse_taken_name(session, name)
    grace = settings.purge.grace_days if grace_days is None else grace_days
    if not 0 <= grace <= MAX_GRACE_DAYS:
        raise InvalidInputError(
            "grace_days",
            f"{grace} is not allowed; use 0 to {MAX_GRACE_DAYS} days (the privacy statements "
            f"promise destruction at most {MAX_GRACE_DAYS} days after the contract ends)")
    if contract_end is not None and contract_end < contract_start:
        raise InvalidInputError(
            "contract_end",
            f"{contract_end} is before the contract start {contract_start}; the last day must "
            "be on or after the first")
    if contract_end is not None:
        purge_on, purge_at = purge_moment(contract_end, grace, SiteClock.of(settings).zone)
        if purge_at <= (now or utcnow()):
            # Its purge would run at the next check: recording it could only lead to that.
            raise InvalidInputError(
                "contract_end",
                f"{contract_end} plus {grace} days of grace put the purge on {purge_on}, which "
                "has passed; a contract that is over needs no customer record")
    basis, reference = _checked_basis(lawful_basis, necessity_reference)
    customer = Customer(name=name, contract_start=contract_start, contract_end=contract_end,
                        grace_days=grace, lawful_basis=basis, necessity_reference=reference)
    session.add(customer)
    session.flush()
    grant_default_zones(session, customer)
    return customer


def list_customers(session: Session, clock: SiteClock) -> list[CustomerSummary]:
    """Every customer with its contract status now, its people and fingers, by name."""
    persons = _counts_per_customer(session, Person.customer_id)
    fingers = _counts_per_customer(session, Finger.customer_id)
    customers = session.scalars(select(Customer).order_by(Customer.name, Customer.id)).all()
    return [CustomerSummary(c, contract_status(c, clock), persons.get(c.id, 0),
                            fingers.get(c.id, 0)) for c in customers]


def customer_summary(session: Session, customer: Customer, clock: SiteClock) -> CustomerSummary:
    """One customer as ``list_customers`` shows it."""
    return CustomerSummary(customer, contract_status(customer, clock),
                           _count(session, Person.customer_id, customer.id),
                           _count(session, Finger.customer_id, customer.id))


def customer_names(session: Session) -> list[CustomerName]:
    """Every customer's ids and name, by name: the choices of a form."""
    rows = session.execute(select(Customer.id, Customer.public_id, Customer.name)
                           .order_by(Customer.name, Customer.id))
    return [CustomerName(*row) for row in rows]


def get_customer_by_public_id(session: Session, public_id: uuid.UUID) -> Customer | None:
    """The customer with this public id (the one pages and the API show), if any."""
    return session.scalars(select(Customer).where(Customer.public_id == public_id)).first()


def get_customer(session: Session, ref: str) -> Customer:
    """The customer ``ref`` names: its id, its public id, or its exact name (any case).

    :raises NotFoundError: nothing matches (with close names), or the name is ambiguous.
    """
    ref = ref.strip()
    if (row_id := optional_id(ref)) is not None:
        found = session.get(Customer, row_id)
        if found is not None:
            return found
    public_id = _as_uuid(ref)
    if public_id is not None:
        found = get_customer_by_public_id(session, public_id)
        if found is not None:
            return found
    named = session.scalars(
        select(Customer).where(func.lower(Customer.name) == ref.lower())).all()
    if len(named) == 1:
        return named[0]
    if len(named) > 1:  # only possible for rows written before names were kept unique
        ids = ", ".join(str(c.id) for c in named)
        raise NotFoundError(f"{len(named)} customers are named {ref!r}; use the id ({ids})")
    names = session.scalars(select(Customer.name)).all()
    raise not_found("customer", ref, names)


def end_contract(
    session: Session, customer: Customer, last_day: dt.date, *, settings: Settings,
    now: dt.datetime | None = None,
) -> PurgePlan:
    """Set the contract's last day; returns what will be purged and when.

    Moving the last day later (an extension) is allowed the same way. To show the plan before
    asking for confirmation, call ``preview_end_contract`` in a read-only transaction first:
    waiting for a person inside a write transaction would hold up the door's event writes.

    :raises InvalidInputError: ``last_day`` is before the contract start.
    """
    plan = preview_end_contract(session, customer, last_day, settings=settings, now=now)
    customer.contract_end = last_day
    session.flush()
    return plan


def preview_end_contract(
    session: Session, customer: Customer, last_day: dt.date, *, settings: Settings,
    now: dt.datetime | None = None,
) -> PurgePlan:
    """What ``end_contract`` would schedule for purge, without changing anything.

    :param now: the moment the plan is shown (default: the wall clock): a last day far enough
        in the past means the purge runs at the next purge check, not at a midnight gone by.

    :raises InvalidInputError: ``last_day`` is before the contract start.
    """
    if last_day < customer.contract_start:
        raise InvalidInputError(
            "last_day",
            f"{last_day} is before the contract start {customer.contract_start}; to remove a "
            "customer whose contract never started, end it on its start day")
    clock = SiteClock.of(settings)
    purge_on, purge_at = purge_moment(last_day, customer.grace_days, clock.zone)
    now = now or clock.now()
    minutes = settings.purge.check_interval_minutes
    return PurgePlan(
        customer_id=customer.id, customer_name=customer.name, last_day=last_day,
        grace_days=customer.grace_days, purge_on=purge_on, purge_at=purge_at,
        persons=_count(session, Person.customer_id, customer.id),
        fingers=_count(session, Finger.customer_id, customer.id),
        consents=_count(session, Consent.customer_id, customer.id),
        events=_count(session, AccessEvent.customer_id, customer.id),
        already_due=purge_at <= now, runs_by=purge_runs_by(purge_at, now, minutes),
        check_minutes=minutes)


def set_lawful_basis(
    session: Session,
    customer: Customer,
    basis: LawfulBasis | str,
    reference: str | None = None,
) -> list[Person]:
    """Record why the customer's people may be identified by fingerprint.

    ``necessity`` (UAVG art. 29) needs the reference to its documented assessment; ``consent``
    needs none (each person's consent is recorded on its own). Returns the people who have
    fingers enrolled but no active consent when the basis is now consent: their consent must
    be recorded, or their fingers deleted.

    :raises InvalidInputError: unknown basis, or a reference missing or not applicable.
    """
    checked, ref = _checked_basis(basis, reference)
    assert checked is not None  # _checked_basis returns None only for a None basis
    customer.lawful_basis = checked
    customer.necessity_reference = ref
    session.flush()
    if checked is not LawfulBasis.CONSENT:
        return []
    consented = select(Consent.person_id).where(Consent.customer_id == customer.id,
                                                ACTIVE_CONSENT)
    with_fingers = select(Finger.person_id).where(Finger.customer_id == customer.id)
    return list(session.scalars(
        select(Person).where(Person.id.in_(with_fingers), Person.id.not_in(consented))
        .order_by(Person.id)).all())


def not_found(
    what: str, ref: str, names: Sequence[str], *, listing: str | None = None
) -> NotFoundError:
    """The error for an unknown reference, offering the closest names there are, else
    ``listing`` (default: the ``accessd WHAT list`` command)."""
    close = difflib.get_close_matches(ref, list(dict.fromkeys(names)), n=SUGGESTIONS, cutoff=0.6)
    if not close:  # case differences and prefixes difflib ranks low
        lowered = ref.lower()
        close = [n for n in dict.fromkeys(names) if lowered in n.lower()][:SUGGESTIONS]
    listing = listing or f"accessd {what} list"
    hint = (f"; did you mean {' or '.join(repr(n) for n in close)}?" if close
            else f"; list them with `{listing}`")
    return NotFoundError(f"no {what} {ref!r} (give the id, public id or exact name){hint}",
                         tuple(close))


def clean_name(field: str, name: str) -> str:
    """``name`` with runs of white space made one space (names are matched exactly), as
    ``accessd.inputs.parse_text`` keeps it.

    :raises InvalidInputError: empty, longer than the column holds, or holding a control or
        bidi character.
    """
    return parse_text(field, name, limit=NAME_MAX, what="the name")


def _refuse_taken_name(session: Session, name: str) -> None:
    # Names are how staff refer to customers on the command line: keep them unambiguous.
    taken = session.scalars(
        select(Customer).where(func.lower(Customer.name) == name.lower())).first()
    if taken is not None:
        raise InvalidInputError(
            "name", f"a customer named {taken.name!r} already exists; choose another name")


def _checked_basis(
    basis: LawfulBasis | str | None, reference: str | None
) -> tuple[LawfulBasis | None, str | None]:
    reference = " ".join(reference.split()) if reference else None
    if basis is None:
        if reference:
            raise InvalidInputError(
                "necessity_reference", "only applies to the lawful basis 'necessity'")
        return None, None
    try:
        checked = LawfulBasis(basis)
    except ValueError:
        raise InvalidInputError(
            "lawful_basis", f"{basis!r} is not a lawful basis; use consent or necessity"
        ) from None
    if checked is LawfulBasis.CONSENT:
        if reference:
            raise InvalidInputError(
                "necessity_reference",
                "a necessity reference only applies to the lawful basis 'necessity'; consent is "
                "recorded per person")
        return checked, None
    if not reference:
        raise InvalidInputError(
            "necessity_reference",
            "the lawful basis 'necessity' (UAVG art. 29) needs the reference to its documented "
            "security assessment, e.g. 'DPIA-2025-03 section 4'")
    if len(reference) > REFERENCE_MAX:
        raise InvalidInputError(
            "necessity_reference", f"the reference has {len(reference)} characters; at most "
            f"{REFERENCE_MAX} fit, so shorten it")
    return checked, reference


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _count(session: Session, column: InstrumentedAttribute[Any], value: int) -> int:
    return int(session.scalar(select(func.count()).where(column == value)) or 0)


def _counts_per_customer(session: Session, column: InstrumentedAttribute[int]) -> dict[int, int]:
    rows = session.execute(select(column, func.count()).group_by(column))
    return {customer_id: int(count) for customer_id, count in rows}
