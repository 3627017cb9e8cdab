"""The ledger on SQLite and on a real PostgreSQL server: a purge waits for its door, is
certified, verifies; a byte changed is named; writers appending at once get one chain."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine, select, text

from accessd.crypto import FileKeyProvider
from accessd.db import make_sessionmaker
from accessd.models import ErasureLedgerEntry, LedgerAction, LedgerSeal, PurgeStatus
from accessd.privacy import ledger
from tests.privacy.seed import add_customer, add_door, enrol, purge_completely

NOW = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)


def test_a_purge_is_sealed_certified_and_checked_on_both_databases(
        engine: Engine, keyring: FileKeyProvider) -> None:
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        leaving = add_customer(session, "Leaving BV", contract_end=dt.date(2025, 6, 30))
        add_door(session, "main", [leaving])
        enrol(session, keyring, leaving, "Lea Vink")
    [record] = purge_completely(sessions, keyring, engine, NOW)
    assert record.status is PurgeStatus.COMPLETED
    assert ledger.check_ledger(sessions, keyring).ok
    with engine.begin() as conn:
        conn.execute(text("UPDATE purge_records SET grace_days = grace_days + 1"))
    with sessions() as session:
        report = ledger.verify_ledger(session, keyring.signing_public_key())
    assert str(report.problems[0]).startswith("purge_records #1: altered after it was sealed")


def test_writers_appending_at_once_get_one_unbroken_chain(
        engine: Engine, keyring: FileKeyProvider) -> None:
    sessions = make_sessionmaker(engine)
    ledger.seal_pending(sessions, keyring)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(5):
                with sessions.begin() as session:
                    ledger.append(session, keyring, ErasureLedgerEntry(
                        action=LedgerAction.ERASE_PERSON, customer_digest=f"{n}{i}" * 32,
                        details={"writer": n}))
        except BaseException as exc:  # reported below
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert failures == []
    with sessions() as session:
        seqs = session.scalars(select(LedgerSeal.seq).order_by(LedgerSeal.seq)).all()
        report = ledger.verify_ledger(session, keyring.signing_public_key())
    assert seqs == list(range(21))
    assert report.ok and report.entries == 20, report.describe()
