"""Purge at contract end: a customer's people, templates, history and data key, destroyed.

What is due is derived from the contracts table at every run, never from scheduled one-shot
jobs: a customer is due from the start of the day after ``contract_end + grace_days`` in the
site's time zone (the door refuses after the last day; the data stays through the grace period).

A purge is written down before anything is deleted: a ``PurgeRecord`` (status ``started``,
counts per category, dates, a keyed digest of the customer's public id and a salted digest of
its customer reference: no name) and an ``ErasureLedgerEntry`` (which a restore keeps and
re-applies), both sealed into the ledger (``accessd.privacy.ledger``), in one committed
transaction. Deletion then runs in small committed batches, templates first and the data key
last, so a power cut at any point leaves a ``started`` record that the next run finds and
completes. Once the database holds nothing of the customer, the SQLite WAL is truncated (old
pages otherwise survive in the ``-wal`` file), backups are dealt with (``BackupDestruction``),
every door is asked to resync its sensor, and the record waits: ``awaiting_doors``. Each
reconciliation (at start and hourly, ``run_due_purges``) looks at those resyncs; a door whose
resync failed is asked again. Only when every door's daemon has finished its resync, i.e. its
sensor holds none of the customer's templates, is the record ``completed`` and its certificate
(``accessd.privacy.certificate``) signed: it states what was destroyed where and when each
door confirmed.

Kept on purpose: data-subject request records (their links become NULL; they are the proof a
request was answered and follow their own retention) and the staff audit log (the facility's
own, with its own retention). An SD card may keep old blocks below the file system; the
destroyed data key is what makes any such copy of the templates unreadable, and the destroyed
backup keys every backup (``accessd.backup.keys``).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import logging
import time
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Delete, Engine, Select, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import AccessSettings
from accessd.crypto import KeyProvider
from accessd.db import bulk_delete_sessions, checkpoint_wal
from accessd.door import command_table
from accessd.errors import AccessdError, InvalidInputError, StorageError
from accessd.history.chain import unlink_people
from accessd.models import (
    AccessEvent,
    CommandKind,
    CommandState,
    Consent,
    Customer,
    DataKey,
    DeviceCommand,
    Door,
    ErasureLedgerEntry,
    EventChain,
    Finger,
    Grant,
    LedgerAction,
    Person,
    PersonEvent,
    PurgeRecord,
    PurgeStatus,
    door_customers,
)
from accessd.privacy import ledger
from accessd.privacy.certificate import (
    CERTIFICATE_FORMAT,
    BackupDestruction,
    CertificateCheck,
    backups_by_data_key,
    certificate_dir,
    certificate_path,
    installation_key_id,
    new_reference_salt,
    normalise_reference,
    reference_digest,
    sign_certificate,
    verify_certificate,
    write_certificate,
)
from accessd.privacy.retention import DEFAULT_BATCH, BatchSizer, delete_in_batches, prune_chain
from accessd.progress import Progress, Tally, no_progress

__all__ = [
    "CATEGORIES",
    "CERTIFICATE_FORMAT",
    "CertificateCheck",
    "CheckedPurge",
    "CustomerDigester",
    "PlannedPurge",
    "WaitingDoor",
    "certificate_dir",
    "certificate_path",
    "customer_digest",
    "destroy_customer_data",
    "get_purge_record",
    "installation_key_id",
    "list_purges",
    "purge_due_at",
    "purge_plan",
    "purges_of_reference",
    "run_due_purges",
    "sign_certificate",
    "verify_certificate",
    "waiting_doors",
    "write_certificate",
]

log = logging.getLogger(__name__)

PURGE_CACHE_KIB = 32 * 1024
"""SQLite page cache while a purge deletes (see ``accessd.db.bulk_delete_sessions``): held for
seconds, affordable on a 512 MB Pi."""
CATEGORIES = ("persons", "fingers", "consents", "access_events", "data_keys")
"""The data categories a purge counts and destroys, in the certificate's words."""
_DIGEST_CONTEXT = b"accessd/customer-digest/v1"
_CHECKPOINT_TRIES = 20


def _zone(site_timezone: str | dt.tzinfo | None) -> dt.tzinfo:
    if isinstance(site_timezone, dt.tzinfo):
        return site_timezone
    return zoneinfo.ZoneInfo(site_timezone or AccessSettings().timezone)


def purge_due_at(contract_end: dt.date, grace_days: int, site_timezone: str | dt.tzinfo) -> (
        dt.datetime):
    """The moment (UTC) a customer is due: midnight starting the day after end + grace, local.

    Local midnight, because a contract's last day is a calendar day at the site; converted
    through a timestamp so that a midnight skipped by a DST change still maps to one instant.
    """
    day_after = contract_end + dt.timedelta(days=grace_days + 1)
    local = dt.datetime.combine(day_after, dt.time(0), tzinfo=_zone(site_timezone))
    return dt.datetime.fromtimestamp(local.timestamp(), dt.UTC)


class CustomerDigester:
    """The keyed digest naming a customer in purge records, the ledger and certificates.

    HMAC-SHA256 of the public id under a key derived from the installation's signing key
    (Ed25519 signatures are deterministic, so the derived key is stable): whoever holds only the
    records, a backup or an audit log that mentions the public id cannot link them.
    """

    def __init__(self, provider: KeyProvider) -> None:
        self._key = hashlib.sha256(provider.sign(_DIGEST_CONTEXT)).digest()

    def __call__(self, public_id: uuid.UUID) -> str:
        return hmac.new(self._key, public_id.bytes, hashlib.sha256).hexdigest()


def customer_digest(provider: KeyProvider, public_id: uuid.UUID) -> str:
    """The anonymised name of a customer (64 hex characters); see ``CustomerDigester``."""
    return CustomerDigester(provider)(public_id)


@dataclass(frozen=True, slots=True)
class PlannedPurge:
    """One customer in ``accessd purge --dry-run``: when it is due and what would go."""

    customer_id: int
    name: str
    contract_end: dt.date | None
    grace_days: int
    due_at: dt.datetime | None  # UTC; None while the contract has no end date
    due: bool
    counts: dict[str, int]


def purge_plan(session: Session, now: dt.datetime, *,
               site_timezone: str | dt.tzinfo | None = None) -> list[PlannedPurge]:
    """Every customer with its purge moment and counts per category, soonest first.

    ``site_timezone`` defaults to the settings' default; pass ``settings.access.timezone``.
    """
    zone = _zone(site_timezone)
    counts = {name: _grouped_counts(session, name) for name in CATEGORIES}
    plans = []
    for customer in session.scalars(select(Customer).order_by(Customer.name, Customer.id)):
        due_at = (purge_due_at(customer.contract_end, customer.grace_days, zone)
                  if customer.contract_end is not None else None)
        plans.append(PlannedPurge(
            customer.id, customer.name, customer.contract_end, customer.grace_days, due_at,
            due_at is not None and now >= due_at,
            {name: counts[name].get(customer.id, 0) for name in CATEGORIES}))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(plans, key=lambda p: p.due_at or far)


_COUNTED = {"persons": Person.customer_id, "fingers": Finger.customer_id,
            "consents": Consent.customer_id, "access_events": AccessEvent.customer_id,
            "data_keys": DataKey.customer_id}


def _grouped_counts(session: Session, category: str) -> dict[int, int]:
    column = _COUNTED[category]
    rows = session.execute(select(column, func.count()).group_by(column))
    return {customer_id: n for customer_id, n in rows if customer_id is not None}


def _counts(session: Session, customer_id: int) -> dict[str, int]:
    return {name: int(session.scalar(select(func.count()).where(column == customer_id)) or 0)
            for name, column in _COUNTED.items()}


def run_due_purges(
    sessions: sessionmaker[Session],
    provider: KeyProvider,
    engine: Engine,
    now: dt.datetime,
    *,
    site_timezone: str | dt.tzinfo | None = None,
    certificate_dir: Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    actor: str = "daemon",
    destroy_backups: BackupDestruction = backups_by_data_key,
    progress: Progress = no_progress,
) -> list[PurgeRecord]:
    """Complete every interrupted purge, purge every customer due at ``now``, and certify every
    purge whose doors have all confirmed their sensors.

    Idempotent: a customer already gone is not purged twice, a ``started`` record is finished,
    an ``awaiting_doors`` record is completed once every door's resync finished (a failed one
    is asked again). Returns the records whose status this call moved (detached), oldest first.
    ``certificate_dir``: where each signed certificate is written as a file too (it is always
    kept in the record). ``destroy_backups``: what the purge does about backups, and what the
    certificate says of them (``accessd.privacy.certificate.BackupDestruction``).
    ``progress`` counts access events deleted (the bulk of a purge), of those of the customers
    being purged (the total grows as each customer's purge starts).

    :raises StorageError: the database failed; what was committed stays, the next run resumes.
    """
    zone = _zone(site_timezone)
    run = _Run(sessions, provider, engine, CustomerDigester(provider), _RunClock(now),
               certificate_dir, batch_size, actor, destroy_backups, Tally(progress))
    moved: dict[int, PurgeRecord] = {}
    ledger.seal_pending(sessions, provider)  # rows from before the ledger, on the first run
    with sessions() as session:
        interrupted = session.scalars(select(PurgeRecord.id).where(
            PurgeRecord.status == PurgeStatus.STARTED).order_by(PurgeRecord.id)).all()
    for record_id in interrupted:
        log.warning("completing purge record %d, interrupted before it finished", record_id)
        _note(moved, _carry_out(run, record_id, None))
    with sessions() as session:
        ended = session.execute(select(Customer.id, Customer.contract_end, Customer.grace_days)
                                .where(Customer.contract_end.is_not(None))).all()
    for customer_id, contract_end, grace_days in ended:
        assert contract_end is not None
        if now < purge_due_at(contract_end, grace_days, zone):
            continue
        started = _start(sessions, provider, run.digester, customer_id, now, zone)
        if started is not None:
            _note(moved, _carry_out(run, started, customer_id))
    with sessions() as session:
        awaiting = session.scalars(select(PurgeRecord.id).where(
            PurgeRecord.status == PurgeStatus.AWAITING_DOORS).order_by(PurgeRecord.id)).all()
    for record_id in awaiting:
        _note(moved, _confirm_doors(run, record_id))
    return [moved[record_id] for record_id in sorted(moved)]


def _note(moved: dict[int, PurgeRecord], record: PurgeRecord | None) -> None:
    if record is not None:
        moved[record.id] = record


@dataclass(frozen=True, slots=True)
class _Run:
    """What every step of one ``run_due_purges`` call needs."""

    sessions: sessionmaker[Session]
    provider: KeyProvider
    engine: Engine
    digester: CustomerDigester
    clock: Callable[[], dt.datetime]
    certificate_dir: Path | None
    batch_size: int
    actor: str
    destroy_backups: BackupDestruction
    tally: Tally


class _RunClock:
    """``now`` as given, advanced by the monotonic time spent since: honest completion times
    in production, and still consistent with a clock a test injected."""

    def __init__(self, now: dt.datetime) -> None:
        self._now, self._t0 = now, time.monotonic()

    def __call__(self) -> dt.datetime:
        return self._now + dt.timedelta(seconds=time.monotonic() - self._t0)


def _start(sessions: sessionmaker[Session], provider: KeyProvider, digester: CustomerDigester,
           customer_id: int, now: dt.datetime, zone: dt.tzinfo) -> int | None:
    """Write the started record and the ledger entry, sealed, before any deletion, in one
    transaction."""
    with sessions.begin() as session:
        # The row lock serialises two processes purging at once (SQLite: BEGIN IMMEDIATE).
        customer = session.scalars(
            select(Customer).where(Customer.id == customer_id).with_for_update()).first()
        if customer is None or customer.contract_end is None:
            return None
        digest = digester(customer.public_id)
        existing = session.scalar(select(PurgeRecord.id).where(
            PurgeRecord.customer_digest == digest, PurgeRecord.status == PurgeStatus.STARTED))
        if existing is not None:
            return None  # another process is on it; the next run completes it if it died
        due_at = purge_due_at(customer.contract_end, customer.grace_days, zone)
        if now < due_at:
            return None  # the contract was extended since we looked
        counts = _counts(session, customer.id)
        salt, reference = _reference_of(customer, digest)
        record = PurgeRecord(customer_digest=digest, contract_end=customer.contract_end,
                             grace_days=customer.grace_days, due_at=due_at,
                             status=PurgeStatus.STARTED, counts=counts, started_at=now,
                             reference_salt=salt, reference_digest=reference)
        ledger.append(session, provider, record, now=now)
        ledger.append(session, provider, ErasureLedgerEntry(
            recorded_at=now, action=LedgerAction.PURGE_CUSTOMER, customer_digest=digest,
            details={"purge_record_id": record.id, "contract_end": customer.contract_end
                     .isoformat(), "grace_days": customer.grace_days,
                     "due_at": due_at.isoformat(), "counts": counts}), now=now)
        log.info("purging customer %s… (contract ended %s, grace %d days): %s",
                 digest[:12], customer.contract_end, customer.grace_days, counts)
        return record.id


def _reference_of(customer: Customer, digest: str) -> tuple[str | None, str | None]:
    """The salt and salted digest of the customer's reference; none if it has no usable one
    (a purge never waits for that: the certificate then says it cannot be matched)."""
    if not customer.reference:
        return None, None
    salt = new_reference_salt()
    try:
        return salt, reference_digest(customer.reference, salt)
    except InvalidInputError:
        log.warning("customer %s…'s reference is malformed; its certificate will carry none",
                    digest[:12])
        return None, None


def _carry_out(run: _Run, record_id: int, customer_id: int | None) -> PurgeRecord | None:
    """Destroy what is left of a started purge, then ask every door to confirm its sensor."""
    with run.sessions() as session:
        record = session.get_one(PurgeRecord, record_id)
        digest = record.customer_digest
        if customer_id is None:
            customer_id = next((cid for cid, pid in session.execute(
                select(Customer.id, Customer.public_id)) if run.digester(pid) == digest),
                None)
    if customer_id is not None:  # None: everything was deleted before the interruption
        with run.sessions() as session:
            run.tally.expect(session.scalar(select(func.count()).select_from(AccessEvent)
                                            .where(AccessEvent.customer_id == customer_id)) or 0)
        with bulk_delete_sessions(run.engine, cache_kib=PURGE_CACHE_KIB) as purging:
            destroy_customer_data(purging, customer_id, batch_size=run.batch_size,
                                  events_deleted=run.tally.add)
    key_destroyed_by = run.clock()
    wal = _truncate_wal(run.engine)
    try:
        backups = run.destroy_backups(digest, key_destroyed_by)
    except (AccessdError, OSError) as exc:  # backups still hold the customer: not done
        log.error("purge of customer %s… stays started: its backups could not be dealt with "
                  "(%s); the next run retries", digest[:12], exc)
        return None
    with run.sessions.begin() as session:
        record = session.scalars(select(PurgeRecord).where(PurgeRecord.id == record_id)
                                 .with_for_update()).one()
        if record.status is not PurgeStatus.STARTED:
            return None  # a concurrent run moved it on first
        now = run.clock()
        record.evidence = {"database": {
            "engine": run.engine.dialect.name, "counts": dict(record.counts),
            "deleted_by": _iso(now), "data_key_destroyed_by": _iso(key_destroyed_by),
            "wal": wal}, "backups": backups}
        record.doors = [_ask_door(session, door_id, name, run.actor, digest, now)
                        for door_id, name in session.execute(
                            select(Door.id, Door.name).order_by(Door.id))]
        record.status = PurgeStatus.AWAITING_DOORS
        ledger.append(session, run.provider, record, now=now)
        session.flush()
        session.expunge(record)
    log.info("customer %s…: nothing left in the database; %d door(s) asked to confirm their "
             "sensor", digest[:12], len(record.doors or []))
    return _confirm_doors(run, record_id) or record


def _ask_door(session: Session, door_id: int, name: str, actor: str, digest: str,
              now: dt.datetime, attempts: int = 1) -> dict[str, Any]:
    command = command_table.request(session, door_id, CommandKind.RESYNC, created_by=actor,
                                    why=f"purge of customer {digest[:12]}")
    return {"door_id": door_id, "door": name, "command_id": command.id,
            "requested_at": _iso(now), "attempts": attempts, "confirmed_at": None,
            "slots_wiped": None}


def _confirm_doors(run: _Run, record_id: int) -> PurgeRecord | None:
    """Note each door whose resync finished; ask again where one failed; once every door has
    confirmed, complete the record and sign its certificate. Returns it if completed."""
    with run.sessions() as session:
        record = session.get_one(PurgeRecord, record_id)
        if record.status is not PurgeStatus.AWAITING_DOORS:
            return None
        database = dict((record.evidence or {}).get("database") or {})
    if database.get("wal") not in (WAL_TRUNCATED, WAL_NOT_APPLICABLE):
        database["wal"] = _truncate_wal(run.engine)  # again, before the certificate says so
    with run.sessions.begin() as session:
        record = session.scalars(select(PurgeRecord).where(PurgeRecord.id == record_id)
                                 .with_for_update()).one()
        if record.status is not PurgeStatus.AWAITING_DOORS:
            return None
        doors = copy.deepcopy(record.doors or [])
        changed = any([_check_door(session, run, door, record.customer_digest)
                       for door in doors])
        evidence = copy.deepcopy(record.evidence or {})
        if evidence.get("database") != database:
            evidence["database"] = database
            changed = True
        record.doors, record.evidence = doors, evidence
        if any(_waiting(door) for door in doors):
            if changed:
                ledger.append(session, run.provider, record, now=run.clock())
            return None
        record.status = PurgeStatus.COMPLETED
        record.completed_at = run.clock()
        record.certificate = sign_certificate(run.provider, record,
                                              ledger_seal=_ledger_anchor(session, record))
        ledger.append(session, run.provider, record, now=record.completed_at)
        if run.certificate_dir is not None:
            # Written before the commit: a crash in between rewrites it at the next run.
            path = write_certificate(record, run.certificate_dir)
            log.info("purge certificate written to %s", path)
        session.flush()
        session.expunge(record)
    log.info("purge of customer %s… completed: every door confirmed its sensor",
             record.customer_digest[:12])
    return record


def _waiting(door: dict[str, Any]) -> bool:
    return not door.get("confirmed_at") and not door.get("removed")


def _check_door(session: Session, run: _Run, door: dict[str, Any], digest: str) -> bool:
    """Update one door's entry from its resync command; True if it changed."""
    if not _waiting(door):
        return False
    command = session.get(DeviceCommand, door["command_id"])
    if command is not None and command.state is CommandState.DONE:
        door["confirmed_at"] = _iso(command.finished_at or run.clock())
        door["slots_wiped"] = (command.result or {}).get("deleted")
        if (command.result or {}).get("snapshot_version") is not None:
            # A site door: its snapshot was brought current (without the customer) first.
            door["snapshot_version"] = command.result["snapshot_version"]  # type: ignore[index]
        return True
    if command is not None and command.state is not CommandState.FAILED:
        return False  # pending or running: the door's daemon has not got to it yet
    now = run.clock()
    if session.get(Door, door["door_id"]) is None:
        door["removed"], door["removed_at"] = True, _iso(now)
        log.warning("door %r was removed before it confirmed the purge of %s…", door["door"],
                    digest[:12])
        return True
    log.warning("door %r: its resync for the purge of %s… failed; asked again", door["door"],
                digest[:12])
    door.update(_ask_door(session, door["door_id"], door["door"], run.actor, digest, now,
                          attempts=int(door.get("attempts", 1)) + 1))
    return True


def _ledger_anchor(session: Session, record: PurgeRecord) -> tuple[int, str] | None:
    """(seq, digest) of the seal of this purge's ledger entry: the certificate's anchor."""
    entries = session.scalars(select(ErasureLedgerEntry).where(
        ErasureLedgerEntry.action == LedgerAction.PURGE_CUSTOMER,
        ErasureLedgerEntry.customer_digest == record.customer_digest)).all()
    for entry in entries:
        if (entry.details or {}).get("purge_record_id") == record.id:
            seal = ledger.latest_seal(session, entry)
            if seal is not None and seal.digest is not None:
                return seal.seq, seal.digest
    return None


def destroy_customer_data(sessions: sessionmaker[Session], customer_id: int, *,
                          batch_size: int = DEFAULT_BATCH,
                          events_deleted: Callable[[int], None] = lambda n: None) -> None:
    """Delete everything held for a customer, in committed batches; the data key goes last.

    Safe to repeat after an interruption: every step deletes what is left. Templates go first
    (the most sensitive), then the per-person index person by person, then the history oldest
    first (moving the chain's anchor, so ``verify-log`` holds even mid-purge), consents,
    people (their events unlinked first), and finally, with the customer
    row, its data key: by then no ciphertext under it is left in the database.
    """
    delete_in_batches(sessions, lambda n: delete(Finger).where(Finger.id.in_(
        select(Finger.id).where(Finger.customer_id == customer_id).limit(n))), batch_size)
    people = select(Person.id).where(Person.customer_id == customer_id)
    # The per-person index first, person by person (its own order), then the history in
    # chain order: each is deleted in the order of its own b-tree.
    _delete_person_index(sessions, people, batch_size)
    with sessions() as session:
        chains = session.scalars(
            select(EventChain.id).where(EventChain.customer_id == customer_id)).all()
    for chain_id in chains:
        prune_chain(sessions, chain_id, None, batch_size=batch_size, people_too=False,
                    deleted=events_deleted)
    # Strays: an event recorded for the customer outside its chain, or during the purge.
    delete_in_batches(sessions, lambda n: delete(AccessEvent).where(AccessEvent.id.in_(
        select(AccessEvent.id).where(AccessEvent.customer_id == customer_id).limit(n))),
        batch_size, deleted=events_deleted)
    with sessions.begin() as session:
        # Facility events (no customer) that name one of its people, and any recorded since
        # its person index went, become anonymous: without the salt, the subject digest cannot
        # be linked to anyone. By now this touches a handful of rows at most.
        session.execute(update(AccessEvent).where(
            AccessEvent.customer_id.is_(None), AccessEvent.person_id.in_(people))
            .values(person_id=None, subject_salt=None)
            .execution_options(synchronize_session=False))
        unlink_people(session, people)
    delete_in_batches(sessions, lambda n: delete(Consent).where(Consent.id.in_(
        select(Consent.id).where(Consent.customer_id == customer_id).limit(n))), batch_size)
    # The database cascades each person to its commands; request records get a NULL link.
    delete_in_batches(sessions, lambda n: delete(Person).where(Person.id.in_(
        select(Person.id).where(Person.customer_id == customer_id).limit(n))), batch_size)
    with sessions.begin() as session:
        session.execute(delete(door_customers).where(door_customers.c.customer_id == customer_id))
        # Its zone grants, schedules included (the people's own went with each person).
        session.execute(delete(Grant).where(Grant.customer_id == customer_id))
        session.execute(_unsynced(delete(EventChain).where(EventChain.customer_id == customer_id)))
        # Crypto-shredding, last: every copy of the templates (backups, SD blocks) is now noise.
        session.execute(_unsynced(delete(DataKey).where(DataKey.customer_id == customer_id)))
        session.execute(_unsynced(delete(Customer).where(Customer.id == customer_id)))


def _delete_person_index(sessions: sessionmaker[Session], people: Select[Any],
                         batch_size: int) -> None:
    """Delete the ``PersonEvent`` rows of ``people``, whole people at a time (each a contiguous
    run of the primary key), in committed batches of about the size the others use."""
    with sessions() as session:
        counts = session.execute(
            select(PersonEvent.person_id, func.count()).where(PersonEvent.person_id.in_(people))
            .group_by(PersonEvent.person_id).order_by(PersonEvent.person_id)).all()
    sizer = BatchSizer(batch_size)
    done = 0
    while done < len(counts):
        with sizer.timed() as size, sessions.begin() as session:
            chunk: list[int] = []
            rows = 0
            while done < len(counts) and (not chunk or rows + counts[done][1] <= size):
                chunk.append(counts[done][0])
                rows += counts[done][1]
                done += 1
            session.execute(_unsynced(delete(PersonEvent).where(
                PersonEvent.person_id.in_(chunk))))


def _unsynced(statement: Delete) -> Delete:
    # Bulk deletes: the ORM need not look for loaded objects to update (there are none).
    return statement.execution_options(synchronize_session=False)


WAL_TRUNCATED = "truncated"
WAL_NOT_APPLICABLE = "not applicable"
"""PostgreSQL: no ``-wal`` file to truncate; autovacuum reclaims dead rows, and the destroyed
data key covers the templates."""


def _truncate_wal(engine: Engine) -> str:
    """Move the WAL into the (zeroed) main file and truncate it, retrying while a reader
    holds a snapshot: until then the deleted rows' old pages are still in the ``-wal`` file.
    Returns what the certificate says of it: ``truncated``, ``not applicable`` or why not."""
    if engine.dialect.name != "sqlite":
        return WAL_NOT_APPLICABLE
    for attempt in range(_CHECKPOINT_TRIES):
        try:
            result = checkpoint_wal(engine)
        except StorageError as exc:
            log.warning("WAL checkpoint failed (%s); the next run retries", exc)
            return "not truncated yet: the checkpoint failed"
        if not result.busy:
            return WAL_TRUNCATED
        time.sleep(0.05 * (attempt + 1))
    log.warning("the WAL could not be truncated: another process keeps a read open; deleted "
                "pages stay in the -wal file until the next run's checkpoint")
    return "not truncated yet: another process kept a read open"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class WaitingDoor:
    """A door a purge still waits for: its name, since when, and what its resync is doing."""

    door: str
    asked_at: str
    attempts: int
    state: str  # "pending", "running", or "failed" (asked again at the next check)

    def describe(self) -> str:
        again = f", attempt {self.attempts}" if self.attempts > 1 else ""
        return f"{self.door} (resync {self.state} since {self.asked_at}{again})"


def waiting_doors(session: Session, record: PurgeRecord) -> list[WaitingDoor]:
    """The doors whose sensor has not yet confirmed this purge (empty once completed)."""
    waiting = []
    for door in record.doors or []:
        if not _waiting(door):
            continue
        command = session.get(DeviceCommand, door["command_id"])
        state = command.state.value if command is not None else CommandState.FAILED.value
        waiting.append(WaitingDoor(door["door"], door["requested_at"],
                                   int(door.get("attempts", 1)), state))
    return waiting


@dataclass(frozen=True, slots=True)
class CheckedPurge:
    """A purge record with the check of its certificate (``None`` while it has none), and the
    doors it still waits for."""

    record: PurgeRecord
    check: CertificateCheck | None
    waiting: tuple[WaitingDoor, ...] = ()


def list_purges(session: Session, provider: KeyProvider) -> list[CheckedPurge]:
    """Every purge record, newest first, each certificate checked against this installation's
    key, with the doors still to confirm: what the panel's purge records page and
    ``accessd purge --status`` show."""
    records = session.scalars(select(PurgeRecord).order_by(PurgeRecord.started_at.desc(),
                                                           PurgeRecord.id.desc())).all()
    return [CheckedPurge(r, verify_certificate(r.certificate.encode(), provider=provider)
                         if r.certificate else None, tuple(waiting_doors(session, r)))
            for r in records]


def purges_of_reference(purges: list[CheckedPurge], reference: str) -> set[int]:
    """The ids of the purge records made for the customer holding ``reference`` (the one it
    was given at contract start, which staff keep in their contract records): how staff tell
    which record and certificate is whose, although a record holds no name. A record only
    holds a salted digest of the reference, so this compares digests, record by record.

    :raises InvalidInputError: ``reference`` is not a customer reference.
    """
    canonical = normalise_reference(reference)
    return {item.record.id for item in purges
            if item.record.reference_salt and item.record.reference_digest
            and hmac.compare_digest(reference_digest(canonical, item.record.reference_salt),
                                    item.record.reference_digest)}


def get_purge_record(session: Session, record_id: int) -> PurgeRecord | None:
    """The purge record with this id, if any."""
    return session.get(PurgeRecord, record_id)
