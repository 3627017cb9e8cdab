"""A restore trusts the erasure ledger, so it checks it first: a ledger changed behind its back,
or one that lost what a backup shows it held, stops the restore before anything changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from accessd.backup.archive import create_backup, restore_backup
from accessd.config import Settings
from accessd.crypto import FileKeyProvider
from accessd.errors import BackupError
from accessd.models import Customer, ErasureLedgerEntry, LedgerSeal, Person
from accessd.privacy.ledger import verify_ledger
from accessd.rights.actions import erase_person
from tests.rights.seed import World, add_customer

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def _erase(sessions: sessionmaker[Session], keys: FileKeyProvider, person_id: int) -> None:
    with sessions.begin() as session:
        erase_person(session, session.get_one(Person, person_id), "operator1", provider=keys,
                     now=NOW)


def _names(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Customer.name)))


def _restore(path: Path, settings: Settings, engine: Engine, keys: FileKeyProvider) -> None:
    restore_backup(path, settings, engine, keys, daemon_stopped=True)


def test_a_restore_refuses_a_ledger_entry_changed_in_sql_and_changes_nothing(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path) -> None:
    path = create_backup(settings, engine, keys, NOW)
    _erase(sessions, keys, world.ada.id)  # after the backup: the restore must re-apply it
    with sessions.begin() as session:
        add_customer(session, "Signed up after the backup")
    # One byte of the erasure's person digest: the restore would no longer find Ada.
    with engine.begin() as conn:
        conn.execute(text("UPDATE erasure_ledger SET person_digest = CASE substr(person_digest, "
                          "1, 1) WHEN '0' THEN '1' ELSE '0' END || substr(person_digest, 2)"))
    before = db_path.read_bytes()

    with pytest.raises(BackupError) as refused:
        _restore(path, settings, engine, keys)

    message = str(refused.value)
    assert "\n" not in message  # one line saying why
    assert "erasure_ledger #1: altered after it was sealed" in message
    assert "nothing changed" in message
    assert db_path.read_bytes() == before
    assert "Signed up after the backup" in _names(sessions)


def test_a_restore_refuses_a_live_ledger_that_lost_seals_the_backup_holds(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    _erase(sessions, keys, world.ada.id)
    path = create_backup(settings, engine, keys, NOW)
    # The newest entry and its seal removed together: the live chain alone still verifies.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_seals WHERE seq = (SELECT max(seq) FROM "
                          "ledger_seals)"))
        conn.execute(text("DELETE FROM erasure_ledger"))
    with sessions() as session:
        assert verify_ledger(session, keys.signing_public_key()).ok

    with pytest.raises(BackupError) as refused:
        _restore(path, settings, engine, keys)

    assert "which the backup holds, is missing from the live ledger" in str(refused.value)


def test_a_restore_with_an_intact_ledger_re_applies_it_and_the_ledger_still_verifies(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    _erase(sessions, keys, world.bob.id)
    path = create_backup(settings, engine, keys, NOW)
    _erase(sessions, keys, world.ada.id)

    _restore(path, settings, engine, keys)

    with sessions() as session:
        assert session.get(Person, world.ada.id) is None and session.get(Person, world.bob.id) \
            is None
        report = verify_ledger(session, keys.signing_public_key())
        assert report.ok, report.describe()
        assert report.entries == 2
        assert len(session.scalars(select(LedgerSeal)).all()) == 3
        assert len(session.scalars(select(ErasureLedgerEntry)).all()) == 2
