"""The door's decision: a pure function of who, where and when. Nothing else decides.

Kept free of the database and the clock so that it can be tested exhaustively and so that the
daemon's hot path is a dictionary lookup and this function, nothing more.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from uuid import UUID


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
    DATABASE_UNAVAILABLE = "database_unavailable"  # who holds the slot could not be read
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
) -> Decision:
    """Allow or deny, with the reason. ``today`` is the site's local date."""
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
    return Decision(True, Reason.ALLOWED)

