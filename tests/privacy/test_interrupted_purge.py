"""A purge killed (-9) at any moment is completed by the next run, never left half-done, and
the ledger verifies whatever the moment: each row and its seal are committed together."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accessd.crypto import FileKeyProvider
from accessd.db import checkpoint_wal, create_db_engine, make_sessionmaker, upgrade
from accessd.fingers.sealed import open_sealed
from accessd.history.chain import verify_chains
from accessd.models import (
    AccessEvent,
    Customer,
    DataKey,
    ErasureLedgerEntry,
    Finger,
    Person,
    PurgeRecord,
    PurgeStatus,
)
from accessd.privacy.ledger import check_ledger, verify_ledger
from accessd.privacy.purge import run_due_purges
from tests.privacy.seed import add_customer, add_door, bulk_history, confirm_resyncs, enrol

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 9, 1, tzinfo=dt.UTC)
BATCH = 400  # many small committed steps: kills land between and inside them


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FileKeyProvider, float]:
    """A database with a customer due for purge (200 people, 20,000 events) and one that is
    not, and how long an uninterrupted purge of it takes in a worker (the kill window)."""
    base = tmp_path_factory.mktemp("interrupted")
    keyring = FileKeyProvider.create(base / "keyring.json")
    db = base / "template.sqlite3"
    engine = create_db_engine(f"sqlite:///{db}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        gone = add_customer(session, "Gone BV", contract_end=dt.date(2025, 6, 30))
        kept = add_customer(session, "Kept BV")
        add_door(session, "main", [gone, kept])
        people = [enrol(session, keyring, gone, f"Person {i}")[0].id for i in range(200)]
        enrol(session, keyring, kept, "Keeper One")
    bulk_history(engine, gone, people, 20_000, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    checkpoint_wal(engine)
    engine.dispose()
    probe = _copy(db, base / "probe.sqlite3")
    started = time.monotonic()
    _worker(probe, keyring, kill_after=None)
    return db, keyring, time.monotonic() - started


def _copy(template: Path, to: Path) -> Path:
    shutil.copyfile(template, to)
    return to


def _worker(db: Path, keyring: FileKeyProvider, kill_after: float | None) -> str:
    """Run the purge in a child; kill -9 it ``kill_after`` seconds after it is ready."""
    with subprocess.Popen(
            [sys.executable, "-m", "tests.privacy.purge_worker", f"sqlite:///{db}",
             str(keyring.path), NOW.isoformat(), str(BATCH)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        if kill_after is None:
            assert child.wait(timeout=120) == 0
            return "finished"
        time.sleep(kill_after)
        child.kill()  # SIGKILL: no cleanup, no rollback, like a power cut for the process
        child.wait(timeout=30)
        return f"killed after {time.monotonic() - started:.3f} s"


def test_a_purge_killed_at_random_points_is_always_completed_by_the_next_run(
        seeded: tuple[Path, FileKeyProvider, float], tmp_path: Path) -> None:
    template, keyring, full = seeded
    rng = random.Random(4)
    states = []
    for attempt in range(6):
        db = _copy(template, tmp_path / f"attempt{attempt}.sqlite3")
        how = _worker(db, keyring, kill_after=rng.uniform(0.0, full * 0.9))
        engine = create_db_engine(f"sqlite:///{db}")
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            states.append(session.scalar(select(PurgeRecord.status)))
        # Whatever the kill interrupted, the ledger holds (once a run with the key sealed
        # the genesis, if the kill came even before that).
        assert check_ledger(sessions, keyring).ok, how
        run_due_purges(sessions, keyring, engine, NOW)
        with sessions() as session:  # the database holds nothing more; the door must confirm
            assert [r.status for r in session.scalars(select(PurgeRecord))] == [
                PurgeStatus.AWAITING_DOORS], how
        confirm_resyncs(sessions)
        run_due_purges(sessions, keyring, engine, NOW)
        with sessions() as session:
            assert [r.status for r in session.scalars(select(PurgeRecord))] == [
                PurgeStatus.COMPLETED], how
            assert verify_ledger(session, keyring.signing_public_key()).ok, how
            assert session.scalar(select(func.count()).select_from(ErasureLedgerEntry)) == 1
            assert session.scalars(select(Customer.name)).all() == ["Kept BV"], how
            for model in (Person, Finger, AccessEvent, DataKey):
                assert session.scalar(select(func.count()).where(
                    model.customer_id != session.scalar(select(Customer.id)))  # type: ignore[attr-defined]
                ) == 0, (model, how)
            assert list(verify_chains(session)) == [], how
            kept = session.scalars(select(Customer)).one()
            assert kept.data_key is not None
            finger = kept.persons[0].fingers[0]
            assert open_sealed(keyring, finger, kept.persons[0], kept, kept.data_key)
        engine.dispose()
    # The kills must have hit the purge in progress, or this test proved nothing.
    assert PurgeStatus.STARTED in states, states
