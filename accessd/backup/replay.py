"""What a restore does to the restored copy before it goes live: keep, check, re-apply, re-attach.

1. Tables flagged ``RESTORE_KEEPS`` (the erasure ledger, purge records, their seals) get the
   live database's rows: the live ledger knows every destruction, including those after the
   backup was taken. Before anything is re-applied, that ledger must verify
   (``accessd.privacy.ledger``: chain, signatures, every row as sealed) and extend every signed
   seal the backup holds (a ledger only grows); otherwise the restore stops, saying why.
2. Every ledger entry is applied again, matched by the keyed digest that wrote it
   (``accessd.privacy.purge.CustomerDigester``); a purge through
   ``accessd.privacy.purge.destroy_customer_data``
   itself, so a restore destroys exactly what a purge does. All entries, not only those after
   the backup's time: an old entry finds nothing left to do (public ids are never reused), and
   a Pi without a real-time clock may have stamped the backup or the entries with a wrong time.
   The digests depend on the keyring's signing key: restore with the installation's keyring.
3. Data keys are re-attached from the live database: backups never hold a usable data key
   (see ``accessd.backup.archive``). A customer with no live key (the live database lost) keeps no
   fingers: their templates cannot be decrypted, and staff re-enrol them.
4. Every door is asked to resync, so the sensors hold exactly the restored library.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import KeyProvider
from accessd.customers.consent import ACTIVE_CONSENT
from accessd.door.command_table import request_resync_everywhere
from accessd.errors import BackupError
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
)
from accessd.privacy.ledger import missing_signed_seals, seal_pending, verify_ledger
from accessd.privacy.purge import CustomerDigester, destroy_customer_data
from accessd.rights.actions import delete_fingers, remove_person_rows, without_finger

RESTORED_BY = "restore"


@dataclass(frozen=True, slots=True)
class LiveState:
    """What a restore reads from the live database before replacing it."""

    kept_rows: dict[str, list[dict[str, Any]]]  # RESTORE_KEEPS table name -> its rows
    data_keys: dict[uuid.UUID, tuple[str, bytes]] = field(repr=False)  # customer -> wrapped key


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


def prepare_restored(sessions: sessionmaker[Session], live: LiveState | None,
                     provider: KeyProvider) -> ReplayReport:
    """Make the restored copy that ``sessions`` opens safe to go live. Commits as it goes: the
    copy is not live yet, and a failure discards it.

    ``live`` is ``None`` only when the live database is lost: then there is no ledger to
    re-apply beyond the backup's own, and no data key to re-attach.

    :raises BackupError: the ledger to re-apply does not verify; nothing was re-applied.
    """
    backup_seals: list[dict[str, Any]] = []
    if live is not None:
        with sessions.begin() as session:
            seals = LedgerSeal.__table__
            backup_seals = [dict(r) for r in session.execute(select(seals)).mappings()]
            for table in kept_tables():
                session.execute(table.delete())
                rows = live.kept_rows.get(table.name, [])
                if rows:
                    session.execute(table.insert(), rows)
    _check_ledger(sessions, provider, backup_seals, live)
    counts = _replay_ledger(sessions, CustomerDigester(provider))
    with sessions.begin() as session:
        counts["fingers_without_key"] = _reattach_keys(session, live.data_keys if live else {})
        counts["doors_asked_to_resync"] = request_resync_everywhere(
            session, created_by=RESTORED_BY, why="database restored from a backup")
    return ReplayReport(**counts)


def _check_ledger(sessions: sessionmaker[Session], provider: KeyProvider,
                  backup_seals: list[dict[str, Any]], live: LiveState | None) -> None:
    """The ledger about to be re-applied must verify, and extend what the backup holds."""
    seal_pending(sessions, provider)  # rows from before the ledger, if never sealed yet
    with sessions() as session:
        report = verify_ledger(session, provider.signing_public_key())
    problem = report.problems[0] if report.problems else None
    if problem is None and live is not None:
        problem = missing_signed_seals(backup_seals,
                                       live.kept_rows.get(LedgerSeal.__tablename__, []))
    if problem is not None:
        whose = "live" if live is not None else "backup's"
        raise BackupError(f"restore refused, nothing changed: the {whose} erasure ledger does "
                          f"not verify ({problem}); a restore would re-apply a ledger someone "
                          "altered. Run `accessd verify-log` and investigate before restoring")


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
        update(Consent).where(Consent.person_id == person_id, ACTIVE_CONSENT,
                              Consent.given_at <= at)
        .values(withdrawn_at=at, withdrawal_recorded_by=RESTORED_BY))
    credential = session.scalar(select(Person.credential).where(Person.id == person_id))
    if credential is not None and not session.scalar(
            select(Finger.id).where(Finger.person_id == person_id).limit(1)):
        session.execute(update(Person).where(Person.id == person_id)
                        .values(credential=without_finger(credential)))
    return deleted, int(getattr(result, "rowcount", 0) or 0)


def _reattach_keys(session: Session, live_keys: dict[uuid.UUID, tuple[str, bytes]]) -> int:
    without_key = 0
    rows = session.execute(select(DataKey.id, DataKey.customer_id, Customer.public_id)
                           .join(Customer, Customer.id == DataKey.customer_id)).all()
    for key_row_id, customer_id, public_id in rows:
        live = live_keys.get(public_id)
        if live is None:
            without_key += delete_fingers(session, Finger.customer_id == customer_id)
            session.execute(delete(DataKey).where(DataKey.id == key_row_id))
            continue
        session.execute(update(DataKey).where(DataKey.id == key_row_id)
                        .values(master_key_id=live[0], wrapped_key=live[1]))
    return without_key
