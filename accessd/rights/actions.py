"""Data-subject rights (GDPR art. 15-21): erase, withdraw consent, restrict, export, requests.

The services the CLI and the panel call. Each adds to the caller's session; the caller owns
the transaction, and after a commit that destroyed data on SQLite it calls
``accessd.db.checkpoint_wal``: until then the old pages survive in the ``-wal`` file.

Erasure: access history is anonymised, not deleted
--------------------------------------------------
Erasing a person deletes their fingers (templates, and the per-door sensor slot records, after
which every door is asked to resync so the template leaves each sensor's flash), their consent
records, pending device commands and the person row. Their access events are kept but
anonymised: ``person_id`` and ``subject_salt`` become NULL. Why anonymise rather than delete:

- The history is hash-chained per customer so that tampering is detectable. Deleting events
  from the middle of a chain is indistinguishable from tampering and would make the whole
  customer's history unverifiable; the chain was designed for this case instead: an event
  names its subject only through ``H(salt || person public id)``, and with the salt destroyed
  that digest links to nobody, not even for someone who still knows the public id, while
  every digest in the chain still verifies.
- The remaining record ("someone of customer X entered door D at time T") serves the purpose
  the history is held for, the security of the customer's space under its contract, and it
  leaves with the rest of the customer's history when the contract ends.

The residual risk, stated so it can be weighed: where a customer has very few people, or
someone holds outside information (a visit schedule, camera footage), an anonymous event can
still single the person out. Such events are no longer linked to them by anything this system
holds, and they go at the customer's purge; a request that needs more than that is a case for
the customer's purge or a manual decision, not for silently breaking the chain.

Backups: every backup holds the person's own data (row, templates, consents, requests, the
links from their events) only under a key of theirs, which leaves the backup key file when the
ledger entry below reaches it (``accessd.backup.keys``); a restore re-applies the erasure from
the ledger before the restored database goes live (see ``accessd.backup.archive``).

Every erasure and consent withdrawal leaves an ``ErasureLedgerEntry``: digests of the public
ids (``public_id_digest``), counts and dates, no personal data. It is both the anonymised
record of the handled request and what a restore re-applies, so it is sealed into the
tamper-evident ledger (``accessd.privacy.ledger.append``) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from accessd.crypto import KeyProvider
from accessd.customers.consent import ACTIVE_CONSENT
from accessd.customers.people import restrict_person, unrestrict_person
from accessd.door.command_table import request_resync_everywhere
from accessd.errors import NotFoundError, RightsError
from accessd.history.chain import unlink_people
from accessd.models import (
    Consent,
    Credential,
    Customer,
    DeviceCommand,
    Door,
    ErasureLedgerEntry,
    Finger,
    FingerLabel,
    LedgerAction,
    Person,
    utcnow,
)
from accessd.privacy import ledger
from accessd.privacy.purge import CustomerDigester

__all__ = [
    "ErasureSummary",
    "FingerRemoval",
    "WithdrawalPreview",
    "WithdrawalSummary",
    "anonymise_history",
    "delete_fingers",
    "erase_person",
    "lift_restriction",
    "preview_withdrawal",
    "public_id_digest",
    "remove_finger",
    "remove_person_rows",
    "restrict",
    "withdraw_consent",
    "without_finger",
]

CONSENT_WITHDRAWN = "consent_withdrawn"
"""``details["why"]`` of the ledger entries a consent withdrawal writes."""
FINGER_REMOVED = "finger_removed"
"""``details["why"]`` of the ledger entry that removing one finger writes."""




def public_id_digest(provider: KeyProvider, public_id: uuid.UUID) -> str:
    """How the ledger names a customer, person or finger: the keyed digest the purge uses for
    customers (``accessd.privacy.purge.CustomerDigester``), so one customer has one name in purge
    records and ledger entries, and a public id found elsewhere (a backup, a log) does not
    link to them without the installation's key."""
    return CustomerDigester(provider)(public_id)


@dataclass(frozen=True, slots=True)
class ErasureSummary:
    """What erasing one person removed or anonymised (the same counts go into the ledger)."""

    fingers: int
    consents: int
    access_events_anonymised: int
    device_commands: int
    doors_asked_to_resync: int


@dataclass(frozen=True, slots=True)
class WithdrawalSummary:
    """What withdrawing consent changed."""

    consents_withdrawn: int
    fingers_deleted: int
    credential: Credential
    doors_asked_to_resync: int


def erase_person(session: Session, person: Person, by: str, *, provider: KeyProvider,
                 now: dt.datetime | None = None) -> ErasureSummary:
    """Erase ``person`` (art. 17): templates everywhere, consents, the person row; their access
    history is anonymised (see the module docstring). The caller commits, then checkpoints.

    Data-subject request records about the person stay (their link becomes NULL): they are the
    evidence that the request was handled, kept for their own retention period.
    """
    now = now or utcnow()
    customer = session.get_one(Customer, person.customer_id)
    digester = CustomerDigester(provider)
    person_id, digest = person.id, digester(person.public_id)
    commands = session.scalar(
        select(func.count()).select_from(DeviceCommand)
        .where(DeviceCommand.person_id == person_id)) or 0
    fingers, consents, events, _ = remove_person_rows(session, person_id)
    ledger.append(session, provider, ErasureLedgerEntry(
        recorded_at=now, action=LedgerAction.ERASE_PERSON,
        customer_digest=digester(customer.public_id), person_digest=digest,
        details={"fingers": fingers, "consents": consents, "access_events_anonymised": events,
                 "device_commands": commands, "history": "anonymised", "recorded_by": by}),
        now=now)
    doors = request_resync_everywhere(session, created_by=by, why="person erased") if fingers \
        else 0
    session.flush()
    return ErasureSummary(fingers, consents, events, commands, doors)


def withdraw_consent(session: Session, person: Person, by: str, *, provider: KeyProvider,
                     now: dt.datetime | None = None) -> WithdrawalSummary:
    """Record the withdrawal of consent and delete the person's templates at once.

    The person can no longer enter by finger: a PIN stays usable (credential ``finger_or_pin``
    becomes ``pin``; ``finger`` becomes ``none``: staff let them in until a PIN is set).
    Each deleted finger leaves a ``delete_finger`` ledger entry that also carries the moment
    of withdrawal, so a restore withdraws the consent again too.

    :raises RightsError: the person has neither a consent to withdraw nor a finger.
    """
    now = now or utcnow()
    active = session.scalars(select(Consent).where(
        Consent.person_id == person.id, ACTIVE_CONSENT)).all()
    finger_ids = session.scalars(select(Finger.public_id).where(
        Finger.person_id == person.id)).all()
    if not active and not finger_ids:
        raise RightsError(f"{person.name} has no consent on record that is not already "
                          "withdrawn, and no enrolled finger: nothing to withdraw")
    for consent in active:
        consent.withdrawn_at = now
        consent.withdrawal_recorded_by = by
    deleted = delete_fingers(session, Finger.person_id == person.id)
    customer = session.get_one(Customer, person.customer_id)
    details: dict[str, Any] = {"why": CONSENT_WITHDRAWN, "consent_withdrawn_at": now.isoformat(),
                               "recorded_by": by}
    digester = CustomerDigester(provider)
    digests: list[str | None] = [digester(f) for f in finger_ids]
    for finger_digest in digests or [None]:
        ledger.append(session, provider, ErasureLedgerEntry(
            recorded_at=now, action=LedgerAction.DELETE_FINGER,
            customer_digest=digester(customer.public_id),
            person_digest=digester(person.public_id), finger_digest=finger_digest,
            details=details), now=now)
    person.credential = without_finger(person.credential)
    doors = request_resync_everywhere(session, created_by=by, why="consent withdrawn") \
        if deleted else 0
    session.flush()
    return WithdrawalSummary(len(active), deleted, person.credential, doors)


@dataclass(frozen=True, slots=True)
class WithdrawalPreview:
    """What withdrawing the person's consent would delete and leave, before it is done."""

    consents: int  # active consents that become withdrawn
    fingers: int  # templates deleted from the database and every door's sensor
    credential_after: Credential
    doors: int  # doors whose sensor is cleared

    @property
    def possible(self) -> bool:
        """Whether there is anything to withdraw (``withdraw_consent`` refuses otherwise)."""
        return bool(self.consents or self.fingers)


def preview_withdrawal(session: Session, person: Person) -> WithdrawalPreview:
    """What ``withdraw_consent`` would do now, changing nothing (for a confirmation)."""
    consents = session.scalar(select(func.count()).select_from(Consent).where(
        Consent.person_id == person.id, ACTIVE_CONSENT)) or 0
    fingers = session.scalar(select(func.count()).select_from(Finger).where(
        Finger.person_id == person.id)) or 0
    doors = session.scalar(select(func.count()).select_from(Door)) or 0
    return WithdrawalPreview(consents, fingers, without_finger(person.credential),
                             doors if fingers else 0)


@dataclass(frozen=True, slots=True)
class FingerRemoval:
    """What removing one finger did."""

    label: FingerLabel
    fingers_left: int
    doors_asked_to_resync: int


def remove_finger(session: Session, person: Person, label: FingerLabel | str, by: str, *,
                  provider: KeyProvider, now: dt.datetime | None = None) -> FingerRemoval:
    """Delete one of the person's fingers (a finger to enrol again, or one no longer used):
    its template here and, through a resync, on every door's sensor. Consent and the way in
    stay as they are. Leaves a ``delete_finger`` ledger entry, so a restore removes it again.

    :raises NotFoundError: the person has no such finger enrolled (or no such finger exists).
    """
    now = now or utcnow()
    try:
        wanted = FingerLabel(label)
    except ValueError:
        choices = ", ".join(f.value for f in FingerLabel)
        raise NotFoundError(f"{label!r} is not a finger; use one of {choices}") from None
    finger = session.scalars(select(Finger).where(
        Finger.person_id == person.id, Finger.label == wanted)).first()
    if finger is None:
        raise NotFoundError(f"{person.name} has no {wanted.value.replace('_', ' ')} enrolled; "
                            "nothing to remove")
    customer = session.get_one(Customer, person.customer_id)
    digester = CustomerDigester(provider)
    ledger.append(session, provider, ErasureLedgerEntry(
        recorded_at=now, action=LedgerAction.DELETE_FINGER,
        customer_digest=digester(customer.public_id), person_digest=digester(person.public_id),
        finger_digest=digester(finger.public_id),
        details={"why": FINGER_REMOVED, "recorded_by": by}), now=now)
    delete_fingers(session, Finger.id == finger.id)
    left = session.scalar(select(func.count()).select_from(Finger).where(
        Finger.person_id == person.id)) or 0
    doors = request_resync_everywhere(session, created_by=by, why="finger removed")
    session.flush()
    session.expire(person, ["fingers"])
    return FingerRemoval(wanted, left, doors)


def without_finger(credential: Credential) -> Credential:
    """The credential left once a person's fingers are gone."""
    if credential in (Credential.FINGER_OR_PIN, Credential.PIN):
        return Credential.PIN
    return Credential.NONE


def restrict(session: Session, person: Person, reason: str, *,
             now: dt.datetime | None = None) -> None:
    """Restrict processing (art. 18): the door refuses the person, their data is kept.

    ``accessd.customers.people.restrict_person`` does it; this is the rights-side name for it.

    :raises InvalidInputError: no reason given.
    :raises PersonStateError: already restricted.
    """
    restrict_person(session, person, reason, now=now)


def lift_restriction(session: Session, person: Person) -> None:
    """Lift a restriction: the door decides on the person's usual rules again.

    :raises PersonStateError: the person is not restricted.
    """
    unrestrict_person(session, person)


# --- destruction primitives, shared with the re-application of the ledger on restore ---------


def delete_fingers(session: Session, *criteria: ColumnElement[bool]) -> int:
    """Delete the fingers matching ``criteria`` (e.g. ``Finger.person_id == 3``).

    Their sensor slot records go with them (database cascade); the caller asks the doors to
    resync, which wipes the slots on every sensor.
    """
    result = session.execute(delete(Finger).where(*criteria))
    return _rowcount(result)


def remove_person_rows(session: Session, person_id: int) -> tuple[int, int, int, int]:
    """Delete a person's fingers, consents and row, anonymising their history.

    Returns the counts (fingers, consents, events anonymised, persons deleted). Writes no
    ledger entry and asks no door to resync: the callers (erasure, restore) do.
    """
    fingers = delete_fingers(session, Finger.person_id == person_id)
    consents = _rowcount(session.execute(delete(Consent).where(Consent.person_id == person_id)))
    events = anonymise_history(session, person_id)
    # The database cascades the rest (device commands) and sets request links to NULL.
    persons = _rowcount(session.execute(delete(Person).where(Person.id == person_id)))
    return fingers, consents, events, persons


def anonymise_history(session: Session, person_id: int) -> int:
    """Unlink a person's access events from them, keeping the chain verifiable."""
    return unlink_people(session, [person_id])


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
