"""The door's decision: a pure function of who, where and when. Nothing else decides.

Kept free of the database and the clock so that it can be tested exhaustively and so that the
daemon's hot path is a dictionary lookup and this function, nothing more.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from accessd.models.enums import AuthMode
from accessd.zones.schedule import parse_schedule


class Reason(enum.Enum):
    """Why the door opened or stayed shut. The values are what events and the panel show."""

    ALLOWED = "allowed"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    CONTRACT_NOT_STARTED = "contract_not_started"
    CONTRACT_ENDED = "contract_ended"
    PERSON_INACTIVE = "person_inactive"
    PERSON_RESTRICTED = "person_restricted"
    DOOR_NOT_ALLOWED = "door_not_allowed"
    CREDENTIAL_NOT_CHOSEN = "credential_not_chosen"
    PIN_LOCKED = "pin_locked"
    WRONG_PIN = "wrong_pin"
    READER_BACKOFF = "reader_backoff"
    READER_TAMPERED = "reader_tampered"  # a finger placed while the tamper alarm is open
    DATABASE_UNAVAILABLE = "database_unavailable"  # who holds the slot could not be read
    # Zones and grants (issue 13): the rule that refused.
    ZONE_NOT_GRANTED = "zone_not_granted"
    OUTSIDE_SCHEDULE = "outside_schedule"
    HOLIDAY = "holiday"
    GRANT_NOT_YET_VALID = "grant_not_yet_valid"
    GRANT_EXPIRED = "grant_expired"
    # The door's authentication mode.
    METHOD_NOT_ALLOWED = "method_not_allowed"  # this door does not take that credential alone
    SECOND_FACTOR_MISSING = "second_factor_missing"  # the other factor did not come in time
    SECOND_FACTOR_MISMATCH = "second_factor_mismatch"  # the factors are of different people
    FINGER_NOT_MATCHED = "finger_not_matched"  # code typed, the finger is not that person's
    SNAPSHOT_STALE = "snapshot_stale"  # a site door's snapshot is past its staleness limit


@dataclass(frozen=True, slots=True)
class CustomerView:
    """What the decision needs of a customer: the contract's dates and the doors it may use.

    ``contract_end`` is the last day of the service; ``doors`` of ``None`` means every door.
    """

    id: int
    contract_start: date
    contract_end: date | None
    doors: frozenset[int] | None = None
    public_id: UUID | None = None  # names the customer's event chain


@dataclass(frozen=True, slots=True)
class PersonView:
    """What the decision needs of a person."""

    id: int
    customer_id: int
    active: bool
    restricted: bool
    uses_finger: bool = True
    uses_pin: bool = False
    public_id: UUID | None = None  # enters the event chain only as a salted digest


@dataclass(frozen=True, slots=True)
class GrantView:
    """A grant of a zone that covers this door (the door's zone or one around it).

    ``depth`` is 0 for the door's own zone, 1 for the zone around it...; ``schedule`` is the
    canonical text of weekly windows (``None``: 24/7).
    """

    depth: int
    person_level: bool
    schedule: str | None = None
    closed_on_holidays: bool = False
    valid_from: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True, slots=True)
class Access:
    """What the decision needs of grants, for one person at one door and day.

    ``grants`` are the customer's and the person's grants covering the door; ``person_limited``
    says the person has grants of their own anywhere (then they get only those, inside the
    customer's); ``holiday`` says today is a site holiday; ``mode`` is the door's.
    """

    grants: tuple[GrantView, ...]
    person_limited: bool = False
    holiday: bool = False
    mode: AuthMode = AuthMode.FINGER_OR_PIN


OPEN_ACCESS = Access((GrantView(0, False),))
"""Every grant check passes: one 24/7 customer grant of the door's zone."""


def _why_closed(grant: GrantView, access: Access, local: datetime) -> Reason | None:
    day = local.date()
    if grant.valid_from is not None and day < grant.valid_from:
        return Reason.GRANT_NOT_YET_VALID
    if grant.valid_until is not None and day > grant.valid_until:
        return Reason.GRANT_EXPIRED
    if access.holiday and grant.closed_on_holidays:
        return Reason.HOLIDAY
    if grant.schedule is not None and not parse_schedule(grant.schedule).open_at(local):
        return Reason.OUTSIDE_SCHEDULE
    return None


def _first_open(grants: Sequence[GrantView], access: Access, local: datetime) -> Reason | None:
    # One open grant is enough; refused, the reason is that of the grant nearest the door.
    if not grants:
        return Reason.ZONE_NOT_GRANTED
    reasons = []
    for grant in sorted(grants, key=lambda g: g.depth):
        reason = _why_closed(grant, access, local)
        if reason is None:
            return None
        reasons.append(reason)
    return reasons[0]


def check_grants(access: Access, local: datetime) -> Reason | None:
    """Why the grants refuse at ``local`` (the site's wall-clock time), or ``None``.

    The customer's grants must let in; a person with grants of their own must also be let in
    by one of those (a person gets a part of the customer's zones, never more).
    """
    customer = [g for g in access.grants if not g.person_level]
    reason = _first_open(customer, access, local)
    if reason is None and access.person_limited:
        reason = _first_open([g for g in access.grants if g.person_level], access, local)
    return reason


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason


def decide(
    customer: CustomerView | None,
    person: PersonView | None,
    door_id: int,
    today: date,
    *,
    method: str = "finger",
    access: Access | None = None,
    local: datetime | None = None,
) -> Decision:
    """Allow or deny, with the reason. ``today`` is the site's local date; ``access`` the
    person's grants at this door (``None``: not checked), judged at ``local``, the site's
    wall-clock time (required with ``access``)."""
    if customer is None or person is None or person.customer_id != customer.id:
        return Decision(False, Reason.UNKNOWN_CREDENTIAL)
    if today < customer.contract_start:
        return Decision(False, Reason.CONTRACT_NOT_STARTED)
    if customer.contract_end is not None and today > customer.contract_end:
        return Decision(False, Reason.CONTRACT_ENDED)
    if not person.active:
        return Decision(False, Reason.PERSON_INACTIVE)
    if person.restricted:
        return Decision(False, Reason.PERSON_RESTRICTED)
    chosen = person.uses_finger if method == "finger" else person.uses_pin
    if not chosen:
        # A template or PIN left behind after the person withdrew that choice must not open.
        return Decision(False, Reason.CREDENTIAL_NOT_CHOSEN)
    if customer.doors is not None and door_id not in customer.doors:
        return Decision(False, Reason.DOOR_NOT_ALLOWED)
    if access is not None:
        if local is None:
            raise ValueError("access needs the local time it is judged at")
        reason = check_grants(access, local)
        if reason is not None:
            return Decision(False, reason)
    return Decision(True, Reason.ALLOWED)

