"""What a restore does to the restored copy before it goes live: keep, check, re-apply, re-attach.

1. Tables flagged ``RESTORE_KEEPS`` (purge records, the erasure ledger, their seals) get the
   live database's rows: the live ledger knows every destruction, including those after the
   backup was taken. Before anything is added or re-applied, that ledger (the backup's own when
   the live database is lost) must verify (``accessd.privacy.ledger``: chain, signatures, every
   row as sealed) and extend every signed seal the backup holds (a ledger only grows);
   otherwise the restore stops, saying why. The erasure ledger then gets more: the union of the
   live ledger, the backup key file's copy and the backup's own, so a restore honours every
   destruction any of them knows of, also when the live database is lost (or is the empty one
   `accessd init` made on a new card). Purge certificates the installation signed
   (``data_dir/purge-certificates``) count as purges too, and bring their purge record back
   when the live database is lost. What is added is sealed into the ledger like any new entry
   (``accessd.privacy.ledger.append``).
2. Every ledger entry is applied again, matched by the keyed digest that wrote it
   (``accessd.privacy.purge.CustomerDigester``); a purge through
   ``accessd.privacy.purge.destroy_customer_data``
   itself, so a restore destroys exactly what a purge does. All entries, not only those after
   the backup's time: an old entry finds nothing left to do (public ids are never reused), and
   a Pi without a real-time clock may have stamped the backup or the entries with a wrong time.
   The digests depend on the keyring's signing key: restore with the installation's keyring.
   (A customer or person whose backup key was destroyed is not even in the restored copy:
   their sections could not be decrypted, see ``accessd.backup.sections``.)
3. Data keys are re-attached from the live database where it has them (a rotation may have
   rewrapped them since); otherwise the backup's own copy (from the customer's section) is kept
   if it still unwraps. A customer with neither keeps no fingers: staff re-enrol them.
4. Every door is asked to resync, so the sensors hold exactly the restored library.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.backup.keys import decode_row, encode_row, row_identity
from accessd.crypto import KeyProvider, WrappedDataKey, unwrap_data_key
from accessd.door.command_table import request_resync_everywhere
from accessd.errors import BackupError, CryptoError
from accessd.models import (
    RESTORE_KEEPS,
    Base,
    Consent,
    Customer,
    DataKey,
    ErasureLedgerEntry,
    Finger,
    LedgerAction,
    LedgerSeal,
    Person,
    PurgeRecord,
    PurgeStatus,
)
from accessd.privacy import ledger as signed_ledger
from accessd.privacy.purge import CustomerDigester, destroy_customer_data, verify_certificate
from accessd.rights.actions import delete_fingers, remove_person_rows, without_finger

RESTORED_BY = "restore"


@dataclass(frozen=True, slots=True)
class LiveState:
    """What a restore reads from the live database before replacing it."""

    kept_rows: dict[str, list[dict[str, Any]]]  # RESTORE_KEEPS table name -> its rows
    data_keys: dict[uuid.UUID, tuple[str, bytes]] = field(repr=False)  # customer -> wrapped key


@dataclass(frozen=True, slots=True)
class PurgeCertificate:
    """A purge certificate this installation signed, found beside the database."""

    body: dict[str, Any]
    text: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What preparing the restored copy changed in it."""

    ledger_entries: int = 0
    customers_purged: int = 0
    persons_erased: int = 0
    fingers_deleted: int = 0
    consents_withdrawn: int = 0
    fingers_without_key: int = 0
    doors_asked_to_resync: int = 0
    ledger_entries_from_key_file: int = 0
    purges_from_certificates: int = 0


def kept_tables() -> list[Table]:
    """The tables a restore leaves as they are live (``Table.info[RESTORE_KEEPS]``)."""
    return [t for t in Base.metadata.sorted_tables if t.info.get(RESTORE_KEEPS)]


def read_live_state(engine: Engine) -> LiveState:
    """The kept tables' rows and every customer's wrapped data key, from the live database."""
    with engine.connect() as connection:
        kept = {t.name: [dict(r) for r in connection.execute(select(t)).mappings()]
                for t in kept_tables()}
        keys = connection.execute(
            select(Customer.public_id, DataKey.master_key_id, DataKey.wrapped_key)
            .join(DataKey, DataKey.customer_id == Customer.id)).all()
    return LiveState(kept, {public_id: (key_id, wrapped) for public_id, key_id, wrapped in keys})


def purge_certificates(directory: Path, provider: KeyProvider) -> list[PurgeCertificate]:
    """The certificates in ``directory`` signed by this installation (others are ignored)."""
    found = []
    for path in sorted(directory.glob("purge-certificate-*.json")) if directory.is_dir() else []:
        check = verify_certificate(path, provider=provider)
        if check.valid and check.body is not None:
            found.append(PurgeCertificate(check.body, path.read_text(encoding="utf-8")))
    return found


def prepare_restored(sessions: sessionmaker[Session], live: LiveState | None,
                     provider: KeyProvider, *, key_file_ledger: Sequence[dict[str, Any]] = (),
                     certificates: Sequence[PurgeCertificate] = ()) -> ReplayReport:
    """Make the restored copy that ``sessions`` opens safe to go live. Commits as it goes: the
    copy is not live yet, and a failure discards it.

    ``live`` is ``None`` only when the live database is lost; then the ledger is the backup key
    file's copy (``key_file_ledger``, encoded rows) joined to the backup's own, and there is no
    live data key to prefer.

    :raises BackupError: the ledger does not verify; nothing was added or re-applied.
    """
    with sessions.begin() as session:
        backup_seals = [dict(r) for r in session.execute(select(LedgerSeal.__table__)).mappings()]
        own = _keep(session, live)
    _check_ledger(sessions, provider, backup_seals, live)
    with sessions.begin() as session:
        added = _join_ledgers(session, provider, live, own, key_file_ledger)
        from_certificates = _certified_purges(session, provider, live, certificates)
    counts = _replay_ledger(sessions, CustomerDigester(provider))
    with sessions.begin() as session:
        counts["fingers_without_key"] = _reattach_keys(session, live.data_keys if live else {},
                                                       provider)
        counts["doors_asked_to_resync"] = request_resync_everywhere(
            session, created_by=RESTORED_BY, why="database restored from a backup")
    return ReplayReport(**counts, ledger_entries_from_key_file=added,
                        purges_from_certificates=from_certificates)


def _keep(session: Session, live: LiveState | None) -> list[dict[str, Any]]:
    """Put the live kept tables in place (when there is a live database); returns the backup's
    own erasure-ledger rows, which the ledgers' union needs."""
    ledger = cast(Table, ErasureLedgerEntry.__table__)
    own = [dict(row) for row in session.execute(select(ledger)).mappings()]
    if live is None:
        return own  # nothing better than the backup's own, seals included
    for table in kept_tables():
        rows = live.kept_rows.get(table.name, [])
        session.execute(table.delete())
        if rows:
            session.execute(table.insert(), rows)
    return own


def _check_ledger(sessions: sessionmaker[Session], provider: KeyProvider,
                  backup_seals: list[dict[str, Any]], live: LiveState | None) -> None:
    """The ledger about to be extended and re-applied must verify, and extend what the backup
    holds."""
    signed_ledger.seal_pending(sessions, provider)  # rows from before the ledger, if any
    with sessions() as session:
        report = signed_ledger.verify_ledger(session, provider.signing_public_key())
    problem = report.problems[0] if report.problems else None
    if problem is None and live is not None:
        problem = signed_ledger.missing_signed_seals(
            backup_seals, live.kept_rows.get(LedgerSeal.__tablename__, []))
    if problem is not None:
        whose = "live" if live is not None else "backup's"
        raise BackupError(f"restore refused, nothing changed: the {whose} erasure ledger does "
                          f"not verify ({problem}); a restore would re-apply a ledger someone "
                          "altered. Run `accessd verify-log` and investigate before restoring")


def _join_ledgers(session: Session, provider: KeyProvider, live: LiveState | None,
                  own: list[dict[str, Any]], key_file_ledger: Sequence[dict[str, Any]]) -> int:
    """The erasure ledger becomes the union of all its copies; what it lacked is appended and
    sealed. Returns how many entries only the key file knew."""
    ledger = cast(Table, ErasureLedgerEntry.__table__)
    present = [dict(row) for row in session.execute(select(ledger)).mappings()]
    held = {row_identity(encode_row(row)) for row in present}
    added = 0
    for source, row in [("backup", r) for r in own] + [
            ("key file", decode_row(r)) for r in key_file_ledger]:
        identity = row_identity(encode_row(row))
        if identity in held:
            continue
        held.add(identity)
        fields = {k: v for k, v in row.items() if k != "id"}  # a new row of this ledger
        signed_ledger.append(session, provider, ErasureLedgerEntry(**fields))
        added += source == "key file"
    return added


def _certified_purges(session: Session, provider: KeyProvider, live: LiveState | None,
                      certificates: Sequence[PurgeCertificate]) -> int:
    """Enter each signed certificate's purge into the ledger if no entry records it, and its
    record when the live database (and so its records) is lost."""
    purged = set(session.scalars(select(ErasureLedgerEntry.customer_digest).where(
        ErasureLedgerEntry.action == LedgerAction.PURGE_CUSTOMER)))
    recorded = set(session.scalars(select(PurgeRecord.customer_digest).where(
        PurgeRecord.status == PurgeStatus.COMPLETED)))
    entered = 0
    for certificate in certificates:
        body = certificate.body
        digest = str(body["customer_digest"])
        completed = _time(body.get("completed_at") or body["started_at"])
        if digest not in purged:
            signed_ledger.append(session, provider, ErasureLedgerEntry(
                recorded_at=completed, action=LedgerAction.PURGE_CUSTOMER, customer_digest=digest,
                details={"from_certificate": True, "counts": body.get("counts", {})}))
            purged.add(digest)
            entered += 1
        if live is None and digest not in recorded:
            end = body.get("contract_end")
            signed_ledger.append(session, provider, PurgeRecord(
                customer_digest=digest, contract_end=dt.date.fromisoformat(end) if end else None,
                grace_days=int(body.get("grace_days") or 0), due_at=_time(body["due_at"]),
                status=PurgeStatus.COMPLETED, counts=dict(body.get("counts", {})),
                started_at=_time(body["started_at"]), completed_at=completed,
                certificate=certificate.text))
            recorded.add(digest)
    session.flush()
    return entered


def _time(text: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _replay_ledger(sessions: sessionmaker[Session], digester: CustomerDigester) -> dict[str, int]:
    counts = dict.fromkeys(("ledger_entries", "customers_purged", "persons_erased",
                            "fingers_deleted", "consents_withdrawn"), 0)
    with sessions() as session:
        entries = session.scalars(select(ErasureLedgerEntry).order_by(
            ErasureLedgerEntry.recorded_at, ErasureLedgerEntry.id)).all()
        customers = {digester(p): i for p, i in session.execute(
            select(Customer.public_id, Customer.id))}
    counts["ledger_entries"] = len(entries)
    for entry in entries:
        customer_id = (customers.pop(entry.customer_digest, None)
                       if entry.action == LedgerAction.PURGE_CUSTOMER else None)
        if customer_id is not None:
            with sessions() as session:
                counts["fingers_deleted"] += session.scalar(
                    select(func.count()).select_from(Finger)
                    .where(Finger.customer_id == customer_id)) or 0
            destroy_customer_data(sessions, customer_id)
            counts["customers_purged"] += 1
    with sessions.begin() as session:
        persons = {digester(p): i for p, i in session.execute(
            select(Person.public_id, Person.id))}
        fingers = {digester(p): i for p, i in session.execute(
            select(Finger.public_id, Finger.id))}
        for entry in entries:
            person_id = persons.get(entry.person_digest) if entry.person_digest else None
            if entry.action == LedgerAction.ERASE_PERSON and person_id is not None:
                fingers_gone, _, _, erased = remove_person_rows(session, person_id)
                counts["fingers_deleted"] += fingers_gone
                counts["persons_erased"] += erased
            elif entry.action == LedgerAction.DELETE_FINGER:
                finger_id = fingers.get(entry.finger_digest) if entry.finger_digest else None
                if finger_id is not None:
                    counts["fingers_deleted"] += delete_fingers(session, Finger.id == finger_id)
                withdrawn = (entry.details or {}).get("consent_withdrawn_at")
                if withdrawn and person_id is not None:
                    deleted, consents = _withdraw(session, person_id,
                                                  dt.datetime.fromisoformat(withdrawn))
                    counts["fingers_deleted"] += deleted
                    counts["consents_withdrawn"] += consents
    return counts


def _withdraw(session: Session, person_id: int, at: dt.datetime) -> tuple[int, int]:
    deleted = delete_fingers(session, Finger.person_id == person_id, Finger.enrolled_at <= at)
    result = session.execute(
        update(Consent).where(Consent.person_id == person_id, Consent.withdrawn_at.is_(None),
                              Consent.given_at <= at)
        .values(withdrawn_at=at, withdrawal_recorded_by=RESTORED_BY))
    credential = session.scalar(select(Person.credential).where(Person.id == person_id))
    if credential is not None and not session.scalar(
            select(Finger.id).where(Finger.person_id == person_id).limit(1)):
        session.execute(update(Person).where(Person.id == person_id)
                        .values(credential=without_finger(credential)))
    return deleted, int(getattr(result, "rowcount", 0) or 0)


def _reattach_keys(session: Session, live_keys: dict[uuid.UUID, tuple[str, bytes]],
                   provider: KeyProvider) -> int:
    without_key = 0
    rows = session.execute(select(DataKey.id, DataKey.customer_id, Customer.public_id,
                                  DataKey.master_key_id, DataKey.wrapped_key)
                           .join(Customer, Customer.id == DataKey.customer_id)).all()
    for key_row_id, customer_id, public_id, key_id, wrapped in rows:
        live = live_keys.get(public_id)
        if live is not None:
            session.execute(update(DataKey).where(DataKey.id == key_row_id)
                            .values(master_key_id=live[0], wrapped_key=live[1]))
        elif not _unwraps(provider, public_id, key_id, wrapped):
            without_key += delete_fingers(session, Finger.customer_id == customer_id)
            session.execute(delete(DataKey).where(DataKey.id == key_row_id))
    return without_key


def _unwraps(provider: KeyProvider, customer: uuid.UUID, key_id: str, wrapped: bytes) -> bool:
    if not wrapped:
        return False  # a backup of format 1: its data keys were blanked
    try:
        unwrap_data_key(provider, WrappedDataKey(key_id, wrapped), customer_id=customer)
    except CryptoError:
        return False  # its master key was retired since, or the row is not this customer's
    return True
