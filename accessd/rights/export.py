"""Right of access and portability (GDPR art. 15, 20): everything held, as JSON and CSV.

One zip archive per export. Each category is there twice, ``<name>.json`` (an array of
objects) and ``<name>.csv`` (a header row, then one row per record, UTF-8), plus
``manifest.json`` (what, when, how many) and ``README.txt`` (what each file means).

Streamed: rows come from the database in batches (``yield_per``) and go straight into the
compressed zip entry, so a customer with a million access events is exported in a few tens
of megabytes of memory. Run it on a read-only session (``accessd.db.read_only_engine``): a
long export must not hold the write lock the doors need to record events.

Templates are never exported, not even encrypted: a template is useful only to the sensor
model that made it, and the export would become biometric data outside every control. The
fingers file says which fingers are enrolled and when.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import json
import os
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from accessd.csv_cells import csv_writer
from accessd.errors import ExportError
from accessd.history.chain import naming_person
from accessd.models import (
    AccessEvent,
    Consent,
    Customer,
    DataSubjectRequest,
    DeviceCommand,
    Door,
    Finger,
    Person,
    door_customers,
    utcnow,
)
from accessd.progress import Progress, Tally, no_progress

EXPORT_FORMAT = "accessd-export"
EXPORT_VERSION = 1
BATCH = 2000
PROGRESS_EVERY = 1000  # rows between two progress calls: cheap in the million-row loop

PERSON_COLUMNS = ("public_id", "customer_public_id", "name", "email", "notes", "active",
                  "restricted", "restricted_reason", "restricted_since", "credential",
                  "keypad_code", "pin_set", "pin_locked_until", "created_at", "updated_at")
FINGER_COLUMNS = ("public_id", "person_public_id", "label", "sensor_slot", "enrolled_at",
                  "enrolled_by")
CONSENT_COLUMNS = ("person_public_id", "text_version", "given_at", "witnessed_by",
                   "withdrawn_at", "withdrawal_recorded_by")
EVENT_COLUMNS = ("at", "door", "kind", "method", "reason", "person_public_id", "chain_seq")
REQUEST_COLUMNS = ("public_id", "kind", "person_public_id", "requester_name",
                   "requester_contact", "received_on", "due_on", "extended_due_on",
                   "extension_reason", "status", "outcome", "closed_at")
COMMAND_COLUMNS = ("kind", "door", "person_public_id", "state", "progress", "created_by",
                   "created_at", "finished_at")
CUSTOMER_COLUMNS = ("public_id", "name", "contract_start", "contract_end", "grace_days",
                    "lawful_basis", "necessity_reference", "created_at", "doors")

README = """\
Export of the personal data held by the door access-control system (accessd).

Generated {generated_at} for {subject}.
Every category is given twice, with the same content: <name>.json (a JSON array of objects)
and <name>.csv (comma-separated, UTF-8, first row = column names). Times are UTC (ISO 8601).

{files}
Fingerprint templates are not included: they are held encrypted (AES-256-GCM under a key of
the customer's own), are meaningful only to the sensor model that produced them, and are
destroyed when a person is erased, withdraws consent, or the customer's contract ends.
Access events that name no person ("person_public_id" empty) were anonymised or concern
no enrolled person.
"""

_DESCRIPTIONS = {
    "customer": "the customer, its contract and the lawful basis for fingerprints",
    "persons": "the person(s): details, access credential, restriction",
    "fingers": "enrolled fingers (which finger, when, by whom); no template",
    "consents": "consents to fingerprint identification and their withdrawal",
    "access_events": "every recorded passage or refusal at a door",
    "requests": "data-subject requests concerning the subject, and how they were handled",
    "device_commands": "door hardware work done for the person (e.g. an enrolment)",
}




@dataclass(frozen=True, slots=True)
class ExportSummary:
    """Where the archive went and how many records of each category it holds."""

    path: Path | None
    counts: dict[str, int] = field(default_factory=dict)


Rows = Callable[[], Iterable[Sequence[Any]]]  # called once per format: JSON, then CSV


def export_person(session: Session, person: Person, out: Path | BinaryIO, *,
                  now: dt.datetime | None = None,
                  progress: Progress = no_progress) -> ExportSummary:
    """Write everything held on ``person`` to a zip archive at ``out`` (a new file, mode 0600,
    or a binary stream). Nothing about anyone else is included."""
    customer = session.get_one(Customer, person.customer_id)
    doors = _door_names(session)
    ids = {person.id: person.public_id}
    tables: dict[str, tuple[Sequence[str], Rows]] = {
        "customer": (("public_id", "name"), lambda: [(customer.public_id, customer.name)]),
        "persons": (PERSON_COLUMNS, lambda: [_person_row(person, customer)]),
        "fingers": (FINGER_COLUMNS, _rows(session, select(Finger).where(
            Finger.person_id == person.id).order_by(Finger.id), _finger_row, ids)),
        "consents": (CONSENT_COLUMNS, _rows(session, select(Consent).where(
            Consent.person_id == person.id).order_by(Consent.id), _consent_row, ids)),
        "access_events": (EVENT_COLUMNS, _event_rows(
            session, naming_person(person.id), doors, ids)),
        "requests": (REQUEST_COLUMNS, _rows(session, select(DataSubjectRequest).where(
            DataSubjectRequest.person_id == person.id).order_by(DataSubjectRequest.id),
            _request_row, ids)),
        "device_commands": (COMMAND_COLUMNS, _rows(session, select(DeviceCommand).where(
            DeviceCommand.person_id == person.id).order_by(DeviceCommand.id),
            lambda c, i: _command_row(c, i, doors), ids)),
    }
    total = _count_events(session, naming_person(person.id))
    return _write_archive(out, {"kind": "person", "public_id": str(person.public_id)},
                          tables, now or utcnow(), Tally(progress, total))


def export_customer(session: Session, customer: Customer, out: Path | BinaryIO, *,
                    now: dt.datetime | None = None,
                    progress: Progress = no_progress) -> ExportSummary:
    """Write everything held on ``customer`` and its people to a zip archive at ``out``.

    ``progress`` counts records written (each twice: JSON, then CSV); a million events take
    about 45 s."""
    doors = _door_names(session)
    ids = dict(session.execute(select(Person.id, Person.public_id)
                               .where(Person.customer_id == customer.id)).all())
    allowed = session.scalars(select(Door.name).join(
        door_customers, door_customers.c.door_id == Door.id)
        .where(door_customers.c.customer_id == customer.id).order_by(Door.name)).all()
    customer_row = (customer.public_id, customer.name, customer.contract_start,
                    customer.contract_end, customer.grace_days, customer.lawful_basis,
                    customer.necessity_reference, customer.created_at,
                    "; ".join(allowed) or "(every door)")
    tables: dict[str, tuple[Sequence[str], Rows]] = {
        "customer": (CUSTOMER_COLUMNS, lambda: [customer_row]),
        "persons": (PERSON_COLUMNS, _rows(session, select(Person).where(
            Person.customer_id == customer.id).order_by(Person.id),
            lambda p, _: _person_row(p, customer), ids)),
        "fingers": (FINGER_COLUMNS, _rows(session, select(Finger).where(
            Finger.customer_id == customer.id).order_by(Finger.id), _finger_row, ids)),
        "consents": (CONSENT_COLUMNS, _rows(session, select(Consent).where(
            Consent.customer_id == customer.id).order_by(Consent.id), _consent_row, ids)),
        "access_events": (EVENT_COLUMNS, _event_rows(
            session, AccessEvent.customer_id == customer.id, doors, ids)),
        "requests": (REQUEST_COLUMNS, _rows(session, select(DataSubjectRequest).where(
            DataSubjectRequest.customer_id == customer.id).order_by(DataSubjectRequest.id),
            _request_row, ids)),
        "device_commands": (COMMAND_COLUMNS, _rows(session, select(DeviceCommand).where(
            DeviceCommand.person_id.in_(select(Person.id).where(
                Person.customer_id == customer.id))).order_by(DeviceCommand.id),
            lambda c, i: _command_row(c, i, doors), ids)),
    }
    total = _count_events(session, AccessEvent.customer_id == customer.id)
    return _write_archive(out, {"kind": "customer", "public_id": str(customer.public_id)},
                          tables, now or utcnow(), Tally(progress, total))


# --- rows -------------------------------------------------------------------------------------


def _rows(session: Session, statement: Select[Any],
          to_row: Callable[[Any, dict[int, uuid.UUID]], Sequence[Any]],
          ids: dict[int, uuid.UUID]) -> Rows:
    def produce() -> Iterator[Sequence[Any]]:
        for item in session.scalars(statement.execution_options(yield_per=BATCH)):
            yield to_row(item, ids)
    return produce


def _event_rows(session: Session, where: Any, doors: dict[int, str],
                people: dict[int, uuid.UUID]) -> Rows:
    # Columns, not ORM objects, and public ids from a small dict rather than a join: this is
    # the million-row loop, run twice (JSON, then CSV), so each row is made plain here once.
    statement = (select(AccessEvent.at, AccessEvent.door_id, AccessEvent.kind,
                        AccessEvent.method, AccessEvent.reason, AccessEvent.person_id,
                        AccessEvent.seq)
                 .where(where).order_by(AccessEvent.at, AccessEvent.id)
                 .execution_options(yield_per=BATCH))
    names: dict[int | None, str] = {pid: str(public_id) for pid, public_id in people.items()}
    door_names: dict[int | None, str] = {door_id: name for door_id, name in doors.items()}

    def produce() -> Iterator[Sequence[Any]]:
        for at, door_id, kind, method, reason, person_id, seq in session.execute(statement):
            yield (at.isoformat(), door_names.get(door_id), kind.value,
                   method.value if method is not None else None, reason,
                   names.get(person_id), seq)
    return produce


def _person_row(person: Person, customer: Customer) -> Sequence[Any]:
    return (person.public_id, customer.public_id, person.name, person.email, person.notes,
            person.active, person.restricted, person.restricted_reason, person.restricted_since,
            person.credential, person.keypad_code, person.pin_hash is not None,
            person.pin_locked_until, person.created_at, person.updated_at)


def _finger_row(finger: Finger, ids: dict[int, uuid.UUID]) -> Sequence[Any]:
    return (finger.public_id, ids.get(finger.person_id), finger.label, finger.sensor_slot,
            finger.enrolled_at, finger.enrolled_by)


def _consent_row(consent: Consent, ids: dict[int, uuid.UUID]) -> Sequence[Any]:
    return (ids.get(consent.person_id), consent.text_version, consent.given_at,
            consent.witnessed_by, consent.withdrawn_at, consent.withdrawal_recorded_by)


def _request_row(request: DataSubjectRequest, ids: dict[int, uuid.UUID]) -> Sequence[Any]:
    person = ids.get(request.person_id) if request.person_id is not None else None
    return (request.public_id, request.kind, person, request.requester_name,
            request.requester_contact, request.received_on, request.due_on,
            request.extended_due_on, request.extension_reason, request.status,
            request.outcome, request.closed_at)


def _command_row(command: DeviceCommand, ids: dict[int, uuid.UUID],
                 doors: dict[int, str]) -> Sequence[Any]:
    person = ids.get(command.person_id) if command.person_id is not None else None
    return (command.kind, doors.get(command.door_id), person, command.state, command.progress,
            command.created_by, command.created_at, command.finished_at)


def _door_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Door.id, Door.name)).all())


# --- the archive ------------------------------------------------------------------------------


_PLAIN_TYPES = frozenset({str, int, float, bool})


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (CSV writes the same, with empty for null)."""
    if value is None or type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("an export never contains raw bytes (templates, digests, salts)")
    return value


def _count_events(session: Session, where: Any) -> int:
    """The export's bulk, known before it starts: its events, written twice."""
    return 2 * int(session.scalar(select(func.count()).select_from(AccessEvent)
                                  .where(where)) or 0)


def _write_archive(out: Path | BinaryIO, subject: dict[str, str],
                   tables: dict[str, tuple[Sequence[str], Rows]],
                   now: dt.datetime, tally: Tally) -> ExportSummary:
    path = out if isinstance(out, Path) else None
    stream: BinaryIO = _create_private(out) if isinstance(out, Path) else out
    counts: dict[str, int] = {}
    try:
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            tally.progress(0, tally.total)
            for name, (columns, rows) in tables.items():
                # Only the events are counted ahead: the other tables are small.
                counting = tally if name == "access_events" else None
                counts[name] = _write_json(archive, f"{name}.json", columns, rows(), counting)
                _write_csv(archive, f"{name}.csv", columns, rows(), counting)
            manifest = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
                        "generated_at": now.astimezone(dt.UTC).isoformat(),
                        "subject": subject, "records": counts}
            archive.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
            files = "".join(f"- {n}.json / {n}.csv: {_DESCRIPTIONS[n]} ({counts[n]})\n"
                            for n in tables)
            archive.writestr("README.txt", README.format(
                generated_at=manifest["generated_at"],
                subject=f"{subject['kind']} {subject['public_id']}", files=files))
    except BaseException:
        if path is not None:
            stream.close()
            with suppress(FileNotFoundError):
                path.unlink()
        raise
    if path is not None:
        stream.close()
    return ExportSummary(path, counts)


def _create_private(path: Path) -> BinaryIO:
    # Personal data: readable by its owner only, and never silently replacing another file.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ExportError(f"{path} already exists; choose another file name") from None
    return os.fdopen(fd, "wb")


def _write_json(archive: zipfile.ZipFile, name: str, columns: Sequence[str],
                rows: Iterable[Sequence[Any]], tally: Tally | None = None) -> int:
    count = 0
    with archive.open(name, "w", force_zip64=True) as raw, \
            io.TextIOWrapper(raw, encoding="utf-8") as text:
        text.write("[")
        for row in rows:
            text.write(",\n " if count else "\n ")
            text.write(json.dumps(dict(zip(columns, map(_plain, row), strict=True)),
                                  ensure_ascii=False))
            count += 1
            if tally is not None and count % PROGRESS_EVERY == 0:
                tally.add(PROGRESS_EVERY)
        if tally is not None:
            tally.add(count % PROGRESS_EVERY)
        text.write("\n]\n" if count else "]\n")
    return count


def _write_csv(archive: zipfile.ZipFile, name: str, columns: Sequence[str],
               rows: Iterable[Sequence[Any]], tally: Tally | None = None) -> None:
    with archive.open(name, "w", force_zip64=True) as raw, \
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        # Names, notes and reasons are typed by people: no cell may become a formula.
        writer = csv_writer(text)
        writer.writerow(columns)
        count = 0
        for row in rows:
            writer.writerow([_plain(v) for v in row])
            count += 1
            if tally is not None and count % PROGRESS_EVERY == 0:
                tally.add(PROGRESS_EVERY)
        if tally is not None:
            tally.add(count % PROGRESS_EVERY)
