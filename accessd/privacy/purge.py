"""Purge at contract end: a customer's people, templates, history and data key, destroyed.

What is due is derived from the contracts table at every run, never from scheduled one-shot
jobs: a customer is due from the start of the day after ``contract_end + grace_days`` in the
site's time zone (the door refuses after the last day; the data stays through the grace period).

A purge is written down before anything is deleted: a ``PurgeRecord`` (status ``started``,
counts per category, dates, a keyed digest of the customer's public id: no name) and an
``ErasureLedgerEntry`` (which a restore keeps and re-applies), in one committed transaction.
Deletion then runs in small committed batches, templates first and the data key last, so a
power cut at any point leaves a ``started`` record that the next run finds and completes. Once
the database holds nothing of the customer, the SQLite WAL is truncated (old pages otherwise
survive in the ``-wal`` file), the customer's backup keys are destroyed (``forget_backup_keys``:
every backup ever taken then holds the customer as noise; a purge that cannot reach the backup
key file stays ``started`` and is resumed), every door is asked to resync its sensor, and the
record is marked ``completed`` with a certificate signed by the installation's Ed25519 key.

Kept on purpose: data-subject request records (their links become NULL; they are the proof a
request was answered and follow their own retention) and the staff audit log (the facility's
own, with its own retention). An SD card may keep old blocks below the file system; the
destroyed data key is what makes any such copy of the templates unreadable, and the destroyed
backup keys every backup (``accessd.backup.keys``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Delete, Engine, Select, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import AccessSettings, Settings
from accessd.crypto import KeyProvider
from accessd.db import bulk_delete_sessions, checkpoint_wal
from accessd.door.command_table import request_resync_everywhere
from accessd.errors import AccessdError, StorageError
from accessd.history.chain import unlink_people
from accessd.models import (
    AccessEvent,
    Consent,
    Customer,
    DataKey,
    ErasureLedgerEntry,
    EventChain,
    Finger,
    LedgerAction,
    Person,
    PersonEvent,
    PurgeRecord,
    PurgeStatus,
    door_customers,
)
from accessd.privacy.retention import DEFAULT_BATCH, BatchSizer, delete_in_batches, prune_chain

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
    forget_backup_keys: Callable[[str], object] | None = None,
) -> list[PurgeRecord]:
    """Complete every interrupted purge, then purge every customer due at ``now``.

    Idempotent: a customer already gone is not purged twice, a ``started`` record is finished.
    Returns the records completed by this call (detached). ``certificate_dir``: where each
    signed certificate is written as a file too (it is always kept in the record).
    ``forget_backup_keys(customer digest)``: destroys the customer's keys in the backup key
    file (``accessd.backup.housekeeping.key_forgetter``); when it raises, that purge stays
    ``started`` (logged) and the next run completes it.

    :raises StorageError: the database failed; what was committed stays, the next run resumes.
    """
    zone = _zone(site_timezone)
    digester = CustomerDigester(provider)
    clock = _RunClock(now)
    done: list[PurgeRecord] = []
    with sessions() as session:
        interrupted = session.scalars(select(PurgeRecord.id).where(
            PurgeRecord.status == PurgeStatus.STARTED).order_by(PurgeRecord.id)).all()
    for record_id in interrupted:
        log.warning("completing purge record %d, interrupted before it finished", record_id)
        done += _carry_out(sessions, provider, engine, digester, record_id, None, clock,
                           certificate_dir, batch_size, actor, forget_backup_keys)
    with sessions() as session:
        ended = session.execute(select(Customer.id, Customer.contract_end, Customer.grace_days)
                                .where(Customer.contract_end.is_not(None))).all()
    for customer_id, contract_end, grace_days in ended:
        assert contract_end is not None
        if now < purge_due_at(contract_end, grace_days, zone):
            continue
        started = _start(sessions, digester, customer_id, now, zone)
        if started is not None:
            done += _carry_out(sessions, provider, engine, digester, started, customer_id,
                               clock, certificate_dir, batch_size, actor, forget_backup_keys)
    return done


class _RunClock:
    """``now`` as given, advanced by the monotonic time spent since: honest completion times
    in production, and still consistent with a clock a test injected."""

    def __init__(self, now: dt.datetime) -> None:
        self._now, self._t0 = now, time.monotonic()

    def __call__(self) -> dt.datetime:
        return self._now + dt.timedelta(seconds=time.monotonic() - self._t0)


def _start(sessions: sessionmaker[Session], digester: CustomerDigester, customer_id: int,
           now: dt.datetime, zone: dt.tzinfo) -> int | None:
    """Write the started record and the ledger entry, before any deletion, in one transaction."""
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
        record = PurgeRecord(customer_digest=digest, contract_end=customer.contract_end,
                             grace_days=customer.grace_days, due_at=due_at,
                             status=PurgeStatus.STARTED, counts=counts, started_at=now)
        session.add(record)
        session.flush()
        session.add(ErasureLedgerEntry(
            recorded_at=now, action=LedgerAction.PURGE_CUSTOMER, customer_digest=digest,
            details={"purge_record_id": record.id, "contract_end": customer.contract_end
                     .isoformat(), "grace_days": customer.grace_days,
                     "due_at": due_at.isoformat(), "counts": counts}))
        log.info("purging customer %s… (contract ended %s, grace %d days): %s",
                 digest[:12], customer.contract_end, customer.grace_days, counts)
        return record.id


def _carry_out(sessions: sessionmaker[Session], provider: KeyProvider, engine: Engine,
               digester: CustomerDigester, record_id: int, customer_id: int | None,
               clock: Callable[[], dt.datetime], certificate_dir: Path | None,
               batch_size: int, actor: str,
               forget_backup_keys: Callable[[str], object] | None) -> list[PurgeRecord]:
    with sessions() as session:
        record = session.get_one(PurgeRecord, record_id)
        digest = record.customer_digest
        if customer_id is None:
            customer_id = next((cid for cid, pid in session.execute(
                select(Customer.id, Customer.public_id)) if digester(pid) == digest),
                None)
    if customer_id is not None:  # None: everything was deleted before the interruption
        with bulk_delete_sessions(engine, cache_kib=PURGE_CACHE_KIB) as purging:
            destroy_customer_data(purging, customer_id, batch_size=batch_size)
    _truncate_wal(engine)
    if forget_backup_keys is not None:
        try:
            forget_backup_keys(digest)
        except (AccessdError, OSError) as exc:  # backups still hold the customer: not done
            log.error("purge of customer %s… stays incomplete: its backup keys could not be "
                      "destroyed (%s); the next run retries", digest[:12], exc)
            return []
    with sessions.begin() as session:
        record = session.scalars(select(PurgeRecord).where(PurgeRecord.id == record_id)
                                 .with_for_update()).one()
        if record.status is PurgeStatus.COMPLETED:
            return []  # a concurrent run finished it first
        record.status = PurgeStatus.COMPLETED
        record.completed_at = clock()
        record.certificate = sign_certificate(provider, record)
        doors = request_resync_everywhere(session, created_by=actor,
                                          why=f"purge of customer {digest[:12]}")
        if certificate_dir is not None:
            # Written before the commit: a crash in between rewrites it at the next run.
            path = write_certificate(record, certificate_dir)
            log.info("purge certificate written to %s", path)
        session.flush()
        session.expunge(record)
    log.info("purge of customer %s… completed; %d door(s) asked to resync their sensor",
             digest[:12], doors)
    return [record]


def destroy_customer_data(sessions: sessionmaker[Session], customer_id: int, *,
                          batch_size: int = DEFAULT_BATCH) -> None:
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
        prune_chain(sessions, chain_id, None, batch_size=batch_size, people_too=False)
    # Strays: an event recorded for the customer outside its chain, or during the purge.
    delete_in_batches(sessions, lambda n: delete(AccessEvent).where(AccessEvent.id.in_(
        select(AccessEvent.id).where(AccessEvent.customer_id == customer_id).limit(n))),
        batch_size)
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


def _truncate_wal(engine: Engine) -> None:
    """Move the WAL into the (zeroed) main file and truncate it, retrying while a reader
    holds a snapshot: until then the deleted rows' old pages are still in the ``-wal`` file."""
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL: autovacuum reclaims dead rows; the destroyed key covers the rest
    for attempt in range(_CHECKPOINT_TRIES):
        try:
            result = checkpoint_wal(engine)
        except StorageError as exc:
            log.warning("WAL checkpoint failed (%s); the next run retries", exc)
            return
        if not result.busy:
            return
        time.sleep(0.05 * (attempt + 1))
    log.warning("the WAL could not be truncated: another process keeps a read open; deleted "
                "pages stay in the -wal file until the next run's checkpoint")


# --- the purge certificate -------------------------------------------------------------------

CERTIFICATE_FORMAT = "accessd-purge-certificate"
_STATEMENT = ("Every person, enrolled fingerprint template, consent record and access event held "
              "for this customer was deleted, and its data key destroyed, so that copies of its "
              "templates in backups or on storage media can no longer be decrypted.")


def installation_key_id(public_key: bytes) -> str:
    """A short, stable name for an Ed25519 public key: what an operator reads out to check."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_certificate(provider: KeyProvider, record: PurgeRecord) -> str:
    """The certificate of a completed purge (JSON), signed with the installation's key."""
    public = provider.signing_public_key()
    body: dict[str, Any] = {
        "format": CERTIFICATE_FORMAT, "version": 1, "statement": _STATEMENT,
        "customer_digest": record.customer_digest,
        "contract_end": record.contract_end.isoformat() if record.contract_end else None,
        "grace_days": record.grace_days, "due_at": _iso(record.due_at),
        "started_at": _iso(record.started_at),
        "completed_at": _iso(record.completed_at) if record.completed_at else None,
        "counts": dict(record.counts),
        "installation_key_id": installation_key_id(public),
        "installation_public_key": base64.b64encode(public).decode(),
    }
    signature = base64.b64encode(provider.sign(_canonical(body))).decode()
    return json.dumps({"certificate": body, "algorithm": "Ed25519", "signature": signature},
                      indent=2, sort_keys=True) + "\n"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def certificate_dir(settings: Settings) -> Path:
    """Where purge certificates are written for the operator: ``data_dir/purge-certificates``."""
    return settings.data_dir / "purge-certificates"


def certificate_path(record: PurgeRecord, directory: Path) -> Path:
    """The file name a completed record's certificate gets in ``directory``."""
    completed = record.completed_at or record.started_at
    return directory / f"purge-certificate-{completed:%Y%m%d}-{record.customer_digest[:16]}.json"


def write_certificate(record: PurgeRecord, directory: Path) -> Path:
    """Write the record's certificate as a file the operator can hand to the customer."""
    if record.certificate is None or record.completed_at is None:
        raise ValueError(f"purge record {record.id} has no certificate yet: it is not completed")
    directory.mkdir(parents=True, exist_ok=True)
    path = certificate_path(record, directory)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(record.certificate, encoding="utf-8")
    os.replace(tmp, path)  # atomic: never a half-written certificate
    return path


@dataclass(frozen=True, slots=True)
class CertificateCheck:
    """The outcome of ``verify_certificate``: valid or not, why, and what it certifies."""

    valid: bool
    reason: str
    body: dict[str, Any] | None = None


def verify_certificate(source: Path | str | bytes, public_key: bytes | None = None, *,
                       provider: KeyProvider | None = None) -> CertificateCheck:
    """Check a purge certificate's signature, and that the expected installation made it.

    The expected key is ``public_key`` (raw 32 bytes, as a customer would be given it), else
    this installation's (``provider``). With neither, nothing can be trusted: invalid.
    """
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        return CertificateCheck(False, f"cannot read {source!s}: {exc.strerror}")
    try:
        document = json.loads(raw)
        body, signature = document["certificate"], base64.b64decode(document["signature"],
                                                                      validate=True)
        claimed = base64.b64decode(body["installation_public_key"], validate=True)
        if not isinstance(body, dict) or body.get("format") != CERTIFICATE_FORMAT:
            raise ValueError("not an accessd purge certificate")
    except (ValueError, KeyError, TypeError) as exc:
        return CertificateCheck(False, f"not a well-formed purge certificate: {exc}")
    expected = public_key if public_key is not None else (
        provider.signing_public_key() if provider is not None else None)
    if expected is None:
        return CertificateCheck(False, "no public key to check against: give the installation's "
                                       "public key, or run this on the installation", body)
    if claimed != expected:
        return CertificateCheck(
            False, f"made by installation key {installation_key_id(claimed)}, not by the "
                   f"expected {installation_key_id(expected)}", body)
    try:
        Ed25519PublicKey.from_public_bytes(expected).verify(signature, _canonical(body))
    except (InvalidSignature, ValueError):
        return CertificateCheck(False, "the signature does not match: the certificate was "
                                       "altered after it was signed, or is not genuine", body)
    return CertificateCheck(True, f"valid: signed by {installation_key_id(expected)}", body)
