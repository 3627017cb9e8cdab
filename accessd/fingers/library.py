"""The sensor's library is a cache of the database; ``reconcile_sensor`` makes it so.

Each sensor holds only the templates of people allowed at its door (their customer's grants,
and their own where they have some, cover the door's zone; their way in includes the finger).
Where they do not all fit, the library is a cache: finger-only people first (they have no
other way in), then the most frequent at this door over the last ``FREQUENCY_DAYS``; everyone
else types their person code and presents the finger, checked 1:1 against their template
(``accessd.fingers.verify``). A finger keeps its slot while it stays wanted, so a change of
grants moves only the templates that changed.

Each door keeps a record (``SensorSlot``) of which finger it put in which slot of its own sensor.
Reconciling compares three things: what the database wants (every finger at its slot), what
this door recorded, and what the sensor reports occupied. A slot the database does not want is
wiped; a wanted finger the record does not show in its slot is uploaded, overwriting whatever
was there. Trusting the record (and not only the sensor's occupancy) matters: a slot freed by
an erasure while this sensor was unreachable and then given to someone else must never keep
the old person's template, or the old finger would open the door as the new person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import KeyProvider
from accessd.errors import LibraryTooSmallError
from accessd.fingers.sealed import open_sealed
from accessd.models import (
    AccessEvent,
    Credential,
    Customer,
    DataKey,
    Door,
    EventKind,
    Finger,
    Grant,
    Person,
    SensorSlot,
    Zone,
    utcnow,
)
from accessd.progress import Progress, no_progress
from accessd.zones.places import chain
from firmware_bridge.errors import LibraryFullError
from firmware_bridge.sensor import Sensor


@dataclass(frozen=True)
class SyncReport:
    uploaded: int
    deleted: int
    kept: int


def reconcile_sensor(
    sensor: Sensor,
    sessions: sessionmaker[Session],
    provider: KeyProvider,
    door_id: int,
    *,
    progress: Progress = no_progress,
) -> SyncReport:
    """Bring ``sensor`` to the database's truth. Idempotent: safe to repeat after a failure.

    ``progress`` counts templates: the slots wiped and the templates uploaded (about 120 ms
    each at 57600 baud), of all that must change.

    :raises LibraryTooSmallError: a wanted slot is beyond the sensor's capacity.
    """
    capacity = sensor.capacity()
    occupied = sensor.occupied_slots()
    with sessions() as session:
        recorded = dict(session.execute(
            select(SensorSlot.slot, SensorSlot.finger_id).where(SensorSlot.door_id == door_id)
        ).all())
        wanted = wanted_library(session, door_id, capacity, recorded)
    unwanted = sorted((occupied | set(recorded)) - set(wanted))
    missing = [(slot, finger_id) for slot, finger_id in sorted(wanted.items())
               if not (slot in occupied and recorded.get(slot) == finger_id)]
    to_wipe = [s for s in unwanted if s in occupied]
    total = len(to_wipe) + len(missing)
    progress(0, total)
    deleted = 0
    # One DeletChar per run of consecutive slots: a purged customer's fingers usually sit
    # together, and each command costs a round trip on a 57600-baud line.
    for start, count in _runs(to_wipe):
        sensor.delete(start, count)
        deleted += count
        progress(deleted, total)
    _forget(sessions, door_id, *unwanted)
    uploaded = 0
    for slot, finger_id in missing:
        _upload(sensor, sessions, provider, door_id, slot, finger_id)
        uploaded += 1
        progress(deleted + uploaded, total)
    return SyncReport(uploaded=uploaded, deleted=deleted, kept=len(wanted) - len(missing))


FREQUENCY_DAYS = 90
_FINGER_WAYS = (Credential.FINGER, Credential.FINGER_OR_PIN)


def allowed_fingers(session: Session, door_id: int) -> dict[int, list[int]]:
    """The fingers (by person, ids in order) of people allowed at ``door_id``: a grant of
    their customer covers the door's zone, and one of their own too where they have any;
    their way in includes the finger. Schedules and holidays do not matter here (the door
    decides those at each attempt); an expired grant or a restriction leaves the template in
    place until the next change, and the decision refuses it meanwhile."""
    parents = dict(session.execute(select(Zone.id, Zone.parent_id)).all())
    zone = session.scalar(select(Door.zone_id).where(Door.id == door_id))
    covering = set(chain(parents, zone))
    if not covering:
        return {}
    grants = session.execute(select(Grant.customer_id, Grant.person_id, Grant.zone_id)).all()
    customers = {c for c, p, z in grants if p is None and z in covering}
    limited = {p for c, p, z in grants if p is not None}
    own = {p for c, p, z in grants if p is not None and z in covering}
    fingers: dict[int, list[int]] = {}
    rows = session.execute(
        select(Finger.person_id, Finger.id).join(Person, Person.id == Finger.person_id)
        .where(Finger.customer_id.in_(customers), Person.active.is_(True),
               Person.credential.in_(_FINGER_WAYS))
        .order_by(Finger.person_id, Finger.id))
    for person_id, finger_id in rows:
        if person_id not in limited or person_id in own:
            fingers.setdefault(person_id, []).append(finger_id)
    return fingers


def wanted_library(session: Session, door_id: int, capacity: int,
                   recorded: dict[int, int] | None = None) -> dict[int, int]:
    """Slot -> finger for this door's sensor: every allowed finger when they fit, else a
    cache of whole people (finger-only first, then the most frequent here). A finger keeps
    the slot ``recorded`` for it, else its enrolment slot when free, else the lowest free."""
    people = allowed_fingers(session, door_id)
    chosen = list(people)
    if sum(len(f) for f in people.values()) > capacity:
        since = utcnow() - dt.timedelta(days=FREQUENCY_DAYS)
        visits = dict(session.execute(
            select(AccessEvent.person_id, func.count()).where(
                AccessEvent.door_id == door_id, AccessEvent.kind == EventKind.GRANTED,
                AccessEvent.at >= since, AccessEvent.person_id.in_(list(people)))
            .group_by(AccessEvent.person_id)).all())
        finger_only = set(session.scalars(select(Person.id).where(
            Person.id.in_(list(people)), Person.credential == Credential.FINGER)))
        chosen.sort(key=lambda p: (p not in finger_only, -visits.get(p, 0), p))
        fitted, used = [], 0
        for person_id in chosen:
            if used + len(people[person_id]) <= capacity:
                fitted.append(person_id)
                used += len(people[person_id])
        chosen = fitted
    fingers = [f for p in chosen for f in people[p]]
    enrolled = dict(session.execute(select(Finger.id, Finger.sensor_slot)
                                    .where(Finger.id.in_(fingers))).all())
    kept = {finger: slot for slot, finger in (recorded or {}).items()
            if finger in enrolled and slot < capacity}
    taken = set(kept.values())
    slots: dict[int, int] = {}
    waiting = []
    for finger in fingers:
        if finger in kept:
            slots[finger] = kept[finger]
        elif enrolled[finger] < capacity and enrolled[finger] not in taken:
            slots[finger] = enrolled[finger]
            taken.add(enrolled[finger])
        else:
            waiting.append(finger)
    free = (s for s in range(capacity) if s not in taken)
    for finger in waiting:
        slots[finger] = next(free)
    return {slot: finger for finger, slot in slots.items()}


def forget_library(sessions: sessionmaker[Session], door_id: int) -> None:
    """After a wipe (tamper, a new sensor): this door's sensor holds nothing."""
    with sessions.begin() as session:
        session.execute(delete(SensorSlot).where(SensorSlot.door_id == door_id))


def record_slot(session: Session, door_id: int, slot: int, finger_id: int) -> None:
    """Note that this door's sensor now holds ``finger_id`` at ``slot`` (caller commits)."""
    session.execute(delete(SensorSlot).where(SensorSlot.door_id == door_id,
                                             SensorSlot.slot == slot))
    session.add(SensorSlot(door_id=door_id, slot=slot, finger_id=finger_id))


def _forget(sessions: sessionmaker[Session], door_id: int, *slots: int) -> None:
    if not slots:
        return
    with sessions.begin() as session:
        session.execute(delete(SensorSlot).where(SensorSlot.door_id == door_id,
                                                 SensorSlot.slot.in_(slots)))


def _runs(slots: list[int]) -> list[tuple[int, int]]:
    """Sorted slots as (first, count) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for slot in slots:
        if runs and runs[-1][0] + runs[-1][1] == slot:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((slot, 1))
    return runs


def _upload(sensor: Sensor, sessions: sessionmaker[Session], provider: KeyProvider,
            door_id: int, slot: int, finger_id: int) -> None:
    # The serial transfer (a tenth of a second and more) happens outside any transaction:
    # holding SQLite's write lock through a resync of 1,000 templates would starve every other
    # writer (the CLI, the panel) for minutes.
    with sessions() as session:
        row = session.execute(
            select(Finger, Person, Customer, DataKey)
            .join(Person, Person.id == Finger.person_id)
            .join(Customer, Customer.id == Finger.customer_id)
            .join(DataKey, DataKey.id == Finger.data_key_id)
            .where(Finger.id == finger_id)).first()
        if row is None:
            return  # erased since we looked: the next reconcile wipes its slot
        template = open_sealed(provider, *row)
    try:
        sensor.upload_template(slot, template)
    except LibraryFullError as exc:  # pragma: no cover - slots are checked above
        raise LibraryTooSmallError(str(exc)) from exc
    finally:
        del template
    with sessions.begin() as session:
        if session.get(Finger, finger_id) is None:
            return  # erased while it went up: left unrecorded, the next reconcile wipes it
        record_slot(session, door_id, slot, finger_id)
