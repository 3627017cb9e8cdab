"""Enrolling a finger: the sensor side (captures, checks, template) and the database side.

``enrol`` runs on the daemon's sensor thread (one owner per sensor), reporting each step
through ``progress`` so the CLI and the panel can tell the person at the reader what to do.
The rules checked before any biometric processing (contract running, lawful basis, consent,
finger limit) live in ``check_may_enrol`` so the panel can refuse early with the same words
(``early_refusal``, ``consent_needed``). The panel asks for an enrolment through the command
table and follows it with ``enrolment_command``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import KeyProvider
from accessd.customers.collection import collection_refusal, contract_over
from accessd.customers.consent import active_consent
from accessd.door.alarms import is_open
from accessd.errors import EnrollmentError
from accessd.fingers.library import record_slot
from accessd.fingers.sealed import seal
from accessd.models import (
    AlarmKind,
    CommandKind,
    Customer,
    DeviceCommand,
    Door,
    Finger,
    FingerLabel,
    LawfulBasis,
    Person,
    SensorSlot,
)
from accessd.models.base import new_public_id
from firmware_bridge.errors import (
    EnrollMismatchError,
    NoFingerError,
    PoorImageError,
)
from firmware_bridge.sensor import CHAR_BUFFER_1, CHAR_BUFFER_2, Sensor

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EnrollmentPlan:
    person_id: int
    label: FingerLabel
    captures: int = 2  # 2 or 3: a third capture must match the template just built
    finger_timeout: float = 20.0
    retries_per_capture: int = 3
    enrolled_by: str | None = None


def check_may_enrol(session: Session, person: Person, label: FingerLabel,
                    max_fingers: int, *, today: dt.date) -> None:
    """The rules before the first finger touches the glass.

    :param today: the local day at the site: no finger is enrolled once the customer's
        contract is over (``accessd.customers.collection``).
    :raises EnrollmentError: contract over, no lawful basis, no consent, finger already
        enrolled, limit reached.
    """
    customer = person.customer
    over = collection_refusal(customer, today)
    if over is not None:
        raise EnrollmentError(str(over))
    if customer.lawful_basis is None:
        raise EnrollmentError(
            f"customer {customer.name!r} has no lawful basis for biometrics recorded; record "
            "consent-based or necessity-based processing for the customer first")
    if customer.lawful_basis is LawfulBasis.CONSENT and active_consent(session, person) is None:
        raise EnrollmentError(
            f"{person.name} has not given consent (or withdrew it); record their explicit "
            "consent, witnessed by a staff member, before enrolling a finger")
    if not person.active or person.restricted:
        raise EnrollmentError(f"{person.name} is inactive or restricted; lift that first")
    labels = session.scalars(select(Finger.label).where(Finger.person_id == person.id)).all()
    if label in labels:
        raise EnrollmentError(f"{person.name}'s {label.value.replace('_', ' ')} is already "
                              "enrolled; delete it first to enrol it again")
    if len(labels) >= max_fingers:
        raise EnrollmentError(f"{person.name} already has {len(labels)} fingers enrolled, the "
                              f"most allowed (enrollment.max_fingers_per_person)")


def door_refusal(session: Session, door_id: int) -> EnrollmentError | None:
    """Why no finger may be enrolled at this door now, or ``None``.

    While the door's tamper alarm is open its reader was opened: the sensor was wiped and may
    have been tampered with (a swapped sensor would keep a copy of every template enrolled on
    it), so nothing is enrolled there until staff inspected the reader and cleared the alarm.
    """
    door = session.get(Door, door_id)
    if door is None:
        return EnrollmentError("that door no longer exists; choose another")
    if is_open(session, door_id, AlarmKind.TAMPER):
        return EnrollmentError(
            f"the reader at {door.name} has an open tamper alarm: its housing was opened, its "
            "sensor wiped, and it may have been tampered with; inspect the reader, then clear "
            "the alarm (Alarms page, or `accessd alarm clear`) before enrolling there")
    return None


def check_door_may_enrol(session: Session, door_id: int) -> None:
    """:raises EnrollmentError: the door's reader may not enrol now (``door_refusal``)."""
    refusal = door_refusal(session, door_id)
    if refusal is not None:
        raise refusal


def consent_needed(session: Session, person: Person) -> bool:
    """Whether the person's consent must be recorded before a finger can be enrolled."""
    return (person.customer.lawful_basis is LawfulBasis.CONSENT
            and active_consent(session, person) is None)


def early_refusal(session: Session, person: Person, max_fingers: int, *,
                  today: dt.date) -> EnrollmentError | None:
    """The refusal no choice of finger, door or consent can cure (contract over, no lawful
    basis, inactive or restricted), to say before anyone walks to the reader; ``None`` if
    there is none."""
    if (person.customer.lawful_basis is not None and person.active and not person.restricted
            and not contract_over(person.customer, today)):
        return None
    try:
        check_may_enrol(session, person, FingerLabel.RIGHT_INDEX, max_fingers, today=today)
    except EnrollmentError as exc:
        return exc
    return None


def enrolment_doors(session: Session) -> list[Door]:
    """The doors an enrolment can be asked of (each has a reader), by name."""
    return list(session.scalars(select(Door).order_by(Door.name)).all())


@dataclass(frozen=True, slots=True)
class EnrolmentCommand:
    """An enrolment asked of a door's daemon, and the person it enrols (``None`` once gone)."""

    command: DeviceCommand
    person: Person | None


def enrolment_command(session: Session, command_id: int) -> EnrolmentCommand | None:
    """The enrolment command with this id, with its person; ``None`` if there is no such
    enrolment command."""
    command = session.get(DeviceCommand, command_id)
    if command is None or command.kind is not CommandKind.ENROLL:
        return None
    person = session.get(Person, command.person_id) if command.person_id else None
    return EnrolmentCommand(command, person)


def allocate_slot(session: Session) -> int:
    """The finger's enrolment number: the lowest no finger uses, site-wide. A door's sensor
    holds the finger at this slot where it fits and is free there, else at one of its own
    (``door_slot``): a site may have more fingers than one sensor has slots."""
    used = set(session.scalars(select(Finger.sensor_slot)).all())
    return next(n for n in range(len(used) + 1) if n not in used)


def door_slot(session: Session, door_id: int, capacity: int, preferred: int) -> int | None:
    """Where this door's sensor stores a newly enrolled finger: ``preferred`` when it fits
    and this door holds nothing there, else the lowest slot this door holds nothing at;
    ``None`` when its library is full (the person then uses code and finger here, and the
    next reconcile decides whom the library holds)."""
    held = set(session.scalars(select(SensorSlot.slot).where(SensorSlot.door_id == door_id)))
    if preferred < capacity and preferred not in held:
        return preferred
    return next((s for s in range(capacity) if s not in held), None)


def enrol(sensor: Sensor, sessions: sessionmaker[Session], provider: KeyProvider,
          door_id: int, plan: EnrollmentPlan, progress: Progress, *,
          max_fingers: int, today: Callable[[], dt.date]) -> Finger:
    """Capture, check and store one finger. Returns the new (committed) ``Finger``.

    :param today: the local day at the site, asked before the captures and again before
        storing (a contract may end meanwhile).
    :raises EnrollmentError: with the reason a person can act on.
    """
    with sessions() as session:
        person = session.get(Person, plan.person_id)
        if person is None:
            raise EnrollmentError("that person no longer exists")
        check_may_enrol(session, person, plan.label, max_fingers, today=today())
        check_door_may_enrol(session, door_id)
    _capture(sensor, CHAR_BUFFER_1, 1, plan, progress)
    _refuse_known_finger(sensor, sessions, plan)
    _capture(sensor, CHAR_BUFFER_2, 2, plan, progress)
    try:
        sensor.create_template()
    except EnrollMismatchError as exc:
        raise EnrollmentError("the two captures were not of the same finger; start again "
                              "and place the same finger each time") from exc
    if plan.captures >= 3:
        # The template sits in both buffers: check it against a third, fresh capture.
        _capture(sensor, CHAR_BUFFER_2, 3, plan, progress)
        if sensor.compare() == 0:
            raise EnrollmentError("the third capture did not match the template; start again")
    template = sensor.download_characteristics(CHAR_BUFFER_1)
    progress("saving")
    with sessions.begin() as session:
        person = session.get_one(Person, plan.person_id)
        customer = session.get_one(Customer, person.customer_id)
        check_may_enrol(session, person, plan.label, max_fingers, today=today())
        check_door_may_enrol(session, door_id)
        capacity = sensor.capacity()
        number = allocate_slot(session)
        finger = Finger(public_id=new_public_id(), customer_id=customer.id, person_id=person.id,
                        label=plan.label, sensor_slot=number, enrolled_by=plan.enrolled_by,
                        enrolled_at=dt.datetime.now(dt.UTC))
        seal(session, provider, finger, person, customer, template)
        del template
        session.add(finger)
        session.flush()
        slot = door_slot(session, door_id, capacity, number)
        if slot is not None:
            sensor.store(slot, CHAR_BUFFER_1)
            record_slot(session, door_id, slot, finger.id)
    if slot is None:
        progress("done: enrolled; this sensor's library is full, so here the person types "
                 "their code and presents the finger")
    else:
        progress("done: the finger is stored on the sensor")
    return finger


def _capture(sensor: Sensor, buffer: int, number: int, plan: EnrollmentPlan,
             progress: Progress) -> None:
    for attempt in range(plan.retries_per_capture):
        progress("place finger" if number == 1 and attempt == 0 else
                 "place the same finger again" if attempt == 0 else
                 "that image was poor: place the finger again, flat and still")
        try:
            sensor.wait_for_finger(plan.finger_timeout)
            sensor.capture(buffer)
        except NoFingerError as exc:
            raise EnrollmentError(f"no finger was placed within {plan.finger_timeout:g} s; "
                                  "start again when the person is at the reader") from exc
        except PoorImageError:
            progress("lift")
            sensor.wait_for_lift(plan.finger_timeout)
            continue
        progress("lift")
        try:
            sensor.wait_for_lift(plan.finger_timeout)
        except NoFingerError as exc:
            raise EnrollmentError("the finger was not lifted; start again") from exc
        return
    raise EnrollmentError(f"{plan.retries_per_capture} poor images in a row; clean the glass "
                          "and the finger, then start again")


def _refuse_known_finger(sensor: Sensor, sessions: sessionmaker[Session],
                         plan: EnrollmentPlan) -> None:
    found = sensor.search()
    if found.slot is None:
        return
    with sessions() as session:
        owner = session.scalars(select(Person).join(Finger, Finger.person_id == Person.id)
                                .where(Finger.sensor_slot == found.slot)).first()
    if owner is not None and owner.id == plan.person_id:
        raise EnrollmentError("this finger is already enrolled for this person; choose "
                              "another finger")
    raise EnrollmentError("this finger already matches someone else's enrolled finger; "
                          "enrolment refused (ask staff to check who is enrolling)")
