"""Grants of zones to customers and their people, and the site's holidays.

A customer is granted zones; a person gets the customer's grants, or only their own once they
have any (each inside a zone the customer holds; the door checks both, so narrowing or
revoking the customer's grant narrows its people's too). A grant without a schedule is 24/7.

Services add to the caller's session; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from accessd.door.command_table import request_resync_everywhere
from accessd.errors import InvalidInputError, NotFoundError, ZoneError
from accessd.models import Customer, Grant, Holiday, Person, Zone
from accessd.zones.places import _names, _parents, chain, zone_named
from accessd.zones.schedule import parse_schedule

HOLIDAY_NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class GrantTerms:
    """When a grant holds: weekly windows (``None``: 24/7), closed on the site's holidays or
    not, and its first and last valid days (site days, included; ``None``: open-ended)."""

    schedule: str | None = None
    closed_on_holidays: bool = False
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    def checked(self) -> GrantTerms:
        """These terms with the schedule in canonical form.

        :raises InvalidInputError: a schedule that does not parse, or an end before the start.
        """
        text = self.schedule.strip() if self.schedule else None
        canonical = parse_schedule(text).text if text else None
        if (self.valid_from is not None and self.valid_until is not None
                and self.valid_until < self.valid_from):
            raise InvalidInputError("valid_until", f"{self.valid_until} is before the first "
                                    f"valid day {self.valid_from}; the last day must be on or "
                                    "after the first")
        return GrantTerms(canonical, self.closed_on_holidays, self.valid_from, self.valid_until)

    def describe(self) -> str:
        """The terms in plain words: "24/7", "mon-fri 07:00-19:00, closed on holidays"..."""
        parts = [self.schedule or "24/7"]
        if self.closed_on_holidays:
            parts.append("closed on holidays")
        if self.valid_from and self.valid_until:
            parts.append(f"from {self.valid_from} to {self.valid_until}")
        elif self.valid_from:
            parts.append(f"from {self.valid_from}")
        elif self.valid_until:
            parts.append(f"until {self.valid_until}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class GrantRow:
    """A grant as lists show it."""

    id: int
    customer_id: int
    person_id: int | None
    zone: str
    zone_path: tuple[str, ...]
    terms: GrantTerms


def _terms(grant: Grant) -> GrantTerms:
    return GrantTerms(grant.schedule, grant.closed_on_holidays, grant.valid_from,
                      grant.valid_until)


def grant_zone(session: Session, customer: Customer, zone: str, terms: GrantTerms = GrantTerms(),
               *, person: Person | None = None, actor: str | None = None) -> Grant:
    """Grant ``zone`` to ``customer`` (or to ``person``, one of its people), with ``terms``;
    granting a zone already granted replaces its terms.

    :raises ZoneError: ``person`` is not the customer's, or the zone is not inside a zone
        the customer holds.
    :raises InvalidInputError: the terms do not parse.
    """
    terms = terms.checked()
    target = zone_named(session, zone)
    if person is not None:
        if person.customer_id != customer.id:
            raise ZoneError(f"person {person.id} is not one of {customer.name!r}'s people")
        held = set(session.scalars(select(Grant.zone_id).where(
            Grant.customer_id == customer.id, Grant.person_id.is_(None))))
        if not held & set(chain(_parents(session), target.id)):
            raise ZoneError(
                f"{customer.name!r} holds no grant of {zone!r} or of a zone around it; a "
                f"person gets their customer's zones or a part of them: grant the customer "
                f"first (`accessd grant add {customer.id} {zone}`)")
    grant = _existing(session, customer.id, person.id if person else None, target.id)
    if grant is None:
        grant = Grant(customer_id=customer.id, person_id=person.id if person else None,
                      zone_id=target.id, created_by=actor)
        session.add(grant)
    grant.schedule, grant.closed_on_holidays = terms.schedule, terms.closed_on_holidays
    grant.valid_from, grant.valid_until = terms.valid_from, terms.valid_until
    session.flush()
    return grant


def _existing(session: Session, customer_id: int, person_id: int | None,
              zone_id: int) -> Grant | None:
    owner = Grant.person_id.is_(None) if person_id is None else Grant.person_id == person_id
    return session.scalars(select(Grant).where(Grant.customer_id == customer_id, owner,
                                               Grant.zone_id == zone_id)).first()


def revoke_zone(session: Session, customer: Customer, zone: str, *,
                person: Person | None = None) -> int:
    """Take ``zone`` back from ``customer`` (or ``person``). Revoking a customer's zone also
    removes its people's grants that no longer lie inside any zone the customer holds.

    :returns: how many grants were removed.
    :raises NotFoundError: no such grant.
    """
    target = zone_named(session, zone)
    grant = _existing(session, customer.id, person.id if person else None, target.id)
    if grant is None:
        whose = f"person {person.id}" if person else repr(customer.name)
        raise NotFoundError(f"{whose} holds no grant of zone {zone!r}")
    session.delete(grant)
    session.flush()
    removed = 1
    if person is None:
        parents = _parents(session)
        held = set(session.scalars(select(Grant.zone_id).where(
            Grant.customer_id == customer.id, Grant.person_id.is_(None))))
        for own in session.scalars(select(Grant).where(Grant.customer_id == customer.id,
                                                       Grant.person_id.is_not(None))).all():
            if not held & set(chain(parents, own.zone_id)):
                session.delete(own)
                removed += 1
        session.flush()
    return removed


def grants_of(session: Session, customer: Customer, person: Person | None = None
              ) -> list[GrantRow]:
    """The customer's own grants, or with ``person`` that person's own (empty: the person
    has the customer's), outermost zone first."""
    owner = Grant.person_id.is_(None) if person is None else Grant.person_id == person.id
    parents, names = _parents(session), _names(session)
    rows = [GrantRow(g.id, g.customer_id, g.person_id, names[g.zone_id],
                     tuple(names[i] for i in reversed(chain(parents, g.zone_id))), _terms(g))
            for g in session.scalars(select(Grant).where(Grant.customer_id == customer.id,
                                                         owner))]
    return sorted(rows, key=lambda r: r.zone_path)


def all_grants_of(session: Session, customer: Customer
                  ) -> list[tuple[GrantRow, uuid.UUID | None]]:
    """The customer's grants, then each of its people's own (with the person's public id)."""
    rows: list[tuple[GrantRow, uuid.UUID | None]] = [(g, None) for g in grants_of(session,
                                                                                 customer)]
    people = session.scalars(select(Person).where(Person.id.in_(
        select(Grant.person_id).where(Grant.customer_id == customer.id)))
        .order_by(Person.id)).all()
    for person in people:
        rows += [(g, person.public_id) for g in grants_of(session, customer, person)]
    return rows


def libraries_follow(session: Session, actor: str) -> int:
    """After grants, a zone's place or a door's zone changed: every door reconciles its
    sensor's library with whom it now serves (incrementally: only changed slots cross the
    wire). Returns how many doors were asked. The caller commits."""
    return request_resync_everywhere(session, created_by=actor, why="zone grants changed")


def grant_default_zones(session: Session, customer: Customer, actor: str | None = None) -> None:
    """Grant a new customer the zones marked for new customers (24/7)."""
    for zone_id in session.scalars(select(Zone.id).where(Zone.grant_new_customers.is_(True))):
        session.add(Grant(customer_id=customer.id, zone_id=zone_id, created_by=actor))
    session.flush()


def add_holiday(session: Session, day: dt.date, name: str) -> Holiday:
    """Record a site holiday (grants closed on holidays refuse that whole local day).

    :raises ZoneError: the day is a holiday already.
    """
    name = " ".join(name.split())
    if not name or len(name) > HOLIDAY_NAME_MAX:
        raise InvalidInputError("name", f"give the holiday a name of 1 to {HOLIDAY_NAME_MAX} "
                                "characters")
    if session.scalars(select(Holiday).where(Holiday.day == day)).first() is not None:
        raise ZoneError(f"{day} is a holiday already; remove it first to rename it")
    holiday = Holiday(day=day, name=name)
    session.add(holiday)
    session.flush()
    return holiday


def remove_holiday(session: Session, day: dt.date) -> None:
    """:raises NotFoundError: ``day`` is no holiday."""
    result = session.execute(delete(Holiday).where(Holiday.day == day))
    if not int(getattr(result, "rowcount", 0) or 0):
        raise NotFoundError(f"{day} is not a site holiday")


def holidays(session: Session, since: dt.date | None = None) -> list[Holiday]:
    """The site's holidays by day (from ``since`` if given)."""
    query = select(Holiday).order_by(Holiday.day)
    if since is not None:
        query = query.where(Holiday.day >= since)
    return list(session.scalars(query))
