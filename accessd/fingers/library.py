"""The sensor's library is a cache of the database; ``reconcile_sensor`` makes it so.

Each door keeps a record (``SensorSlot``) of which finger it put in which slot of its own sensor.
Reconciling compares three things: what the database wants (every finger at its slot), what
this door recorded, and what the sensor reports occupied. A slot the database does not want is
wiped; a wanted finger the record does not show in its slot is uploaded, overwriting whatever
was there. Trusting the record (and not only the sensor's occupancy) matters: a slot freed by
an erasure while this sensor was unreachable and then given to someone else must never keep
the old person's template, or the old finger would open the door as the new person.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import KeyProvider
from accessd.errors import LibraryTooSmallError
from accessd.fingers.sealed import open_sealed
from accessd.models import Customer, DataKey, Finger, Person, SensorSlot
from accessd.progress import Progress, no_progress
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
        wanted = dict(session.execute(select(Finger.sensor_slot, Finger.id)).all())
        recorded = dict(session.execute(
            select(SensorSlot.slot, SensorSlot.finger_id).where(SensorSlot.door_id == door_id)
        ).all())
    too_high = sorted(s for s in wanted if s >= capacity)
    if too_high:
        raise LibraryTooSmallError(
            f"the sensor has {capacity} slots but fingers are enrolled at slots up to "
            f"{too_high[-1]}; fit a sensor with at least {too_high[-1] + 1} slots")
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
