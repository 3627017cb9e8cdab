"""The backup key file: where the keys of live customers and people survive a dead card, from
which destroyed keys are gone, and without which (or with the wrong one) a restore refuses."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.backup.archive import create_backup, restore_backup, verify_backup
from accessd.backup.housekeeping import backup_destruction, check_backups, key_resealer
from accessd.backup.keys import key_file_path, keys_for_backup, load, sync_key_file
from accessd.backup.sections import check_plan
from accessd.config import Settings
from accessd.crypto import FileKeyProvider, rotate_master_key
from accessd.errors import BackupError, BackupKeysError
from accessd.models import (
    Base,
    Consent,
    Credential,
    Customer,
    ErasureLedgerEntry,
    Finger,
    LedgerAction,
    Person,
    PurgeRecord,
    PurgeStatus,
)
from accessd.privacy.purge import CustomerDigester, certificate_dir, run_due_purges
from accessd.rights.actions import erase_person, withdraw_consent
from tests.privacy.seed import purge_completely
from tests.rights.backup_files import installation_keys, open_everything, write_format_1
from tests.rights.seed import World

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
AFTER_ACME = dt.datetime(2025, 7, 2, tzinfo=dt.UTC)  # Acme's contract ended 2025-06-30


def _lose_the_database(engine: Engine, db_path: Path) -> None:
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def _end_acme(sessions: sessionmaker[Session], world: World) -> None:
    with sessions.begin() as session:
        session.get_one(Customer, world.acme_id).contract_end = dt.date(2025, 6, 30)


def _names(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Person.name)))


def test_the_key_file_is_private_sealed_and_names_nobody(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider) -> None:
    create_backup(settings, engine, keys, NOW)
    path = key_file_path(settings.backup.dir)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    document = json.loads(text)
    assert set(document) == {"format", "version", "installation", "file_id", "generation",
                             "written_at", "master_key_id", "sealed"}
    digester = CustomerDigester(keys)
    for public_id in (world.acme_public_id, world.ada.public_id, world.carol.public_id):
        assert digester(public_id) not in text and public_id.hex not in text
    opened = load(path, keys)
    assert set(opened.customers) == {digester(world.acme_public_id),
                                     digester(world.globex_public_id)}
    assert set(opened.customers[digester(world.acme_public_id)].people) == {
        digester(world.ada.public_id), digester(world.bob.public_id)}


def test_a_purge_destroys_the_customers_keys_before_it_completes(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    create_backup(settings, engine, keys, NOW)
    _end_acme(sessions, world)

    [record] = purge_completely(sessions, keys, engine, AFTER_ACME,
                                destroy_backups=backup_destruction(settings, sessions, keys))

    acme = CustomerDigester(keys)(world.acme_public_id)
    held = load(key_file_path(settings.backup.dir), keys)
    assert acme not in held.customers and len(held.customers) == 1
    assert [row["action"] for row in held.ledger] == ["purge_customer"]
    assert record.status is PurgeStatus.COMPLETED
    assert record.certificate is not None
    backups = json.loads(record.certificate)["certificate"]["destroyed"]["backups"]
    assert backups["method"] == "backup_keys_destroyed" and backups["keys_destroyed_at"]


def test_a_purge_that_cannot_reach_the_key_file_stays_started_and_the_next_run_completes_it(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    create_backup(settings, engine, keys, NOW)
    _end_acme(sessions, world)
    path = key_file_path(settings.backup.dir)
    good = path.read_bytes()
    path.write_bytes(good[:-40] + b"damaged\n")  # the backup disk hands back garbage
    forget = backup_destruction(settings, sessions, keys)

    assert run_due_purges(sessions, keys, engine, AFTER_ACME, destroy_backups=forget) == []
    with sessions() as session:
        assert session.scalars(select(PurgeRecord.status)).all() == [PurgeStatus.STARTED]
        assert session.get(Customer, world.acme_id) is None  # the database part is done

    path.write_bytes(good)  # the disk is back
    [record] = purge_completely(sessions, keys, engine, AFTER_ACME, destroy_backups=forget)

    assert record.status is PurgeStatus.COMPLETED
    assert CustomerDigester(keys)(world.acme_public_id) not in load(path, keys).customers


def test_an_erasure_drops_the_persons_key_when_the_key_file_is_next_brought_in_line(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    path = create_backup(settings, engine, keys, NOW)
    with sessions.begin() as session:
        erase_person(session, session.get_one(Person, world.ada.id), "operator1", provider=keys)

    done = sync_key_file(settings.backup.dir, sessions, keys, NOW)

    assert (done.customer_keys_dropped, done.person_keys_dropped, done.written) == (0, 1, True)
    opened = open_everything(path, keys, installation_keys(settings.backup.dir, keys))
    assert opened.sealed_records == 3 and opened.records == 2
    assert not opened.contains(b"CANARY-ADA") and not opened.contains(b"ada.canary")
    assert opened.contains(b"CANARY-BOB") and opened.contains(b"CANARY-ACME")


def test_a_person_erased_while_a_backup_runs_gets_no_key_in_it(
        world: World, settings: Settings, keys: FileKeyProvider) -> None:
    digester = CustomerDigester(keys)
    acme, ada = digester(world.acme_public_id), digester(world.ada.public_id)
    erased = {"action": "erase_person", "customer_digest": acme, "person_digest": ada}
    settings.backup.dir.mkdir()

    held = keys_for_backup(settings.backup.dir, keys, {acme: [ada]}, [erased], NOW,
                           has_sections=False)

    assert held.customer_key(acme) is not None and held.person_key(acme, ada) is None


@pytest.mark.parametrize("replace", [
    pytest.param("another-installation", id="another-installation"),
    pytest.param("older-copy", id="an-older-copy"),
    pytest.param("new-file", id="a-new-key-file"),
])
def test_a_restore_refuses_a_key_file_it_cannot_trust(
        replace: str, world: World, settings: Settings, engine: Engine,
        sessions: sessionmaker[Session], keys: FileKeyProvider, tmp_path: Path) -> None:
    path = key_file_path(settings.backup.dir)
    if replace == "older-copy":
        create_backup(settings, engine, keys, NOW - dt.timedelta(days=1))
        shutil.copyfile(path, tmp_path / "old-keys")
    backup = create_backup(settings, engine, keys, NOW)
    if replace == "another-installation":
        stranger = FileKeyProvider.create(tmp_path / "stranger.json")
        other = tmp_path / "other"
        other.mkdir()
        keys_for_backup(other, stranger, {}, [], NOW, has_sections=False)
        shutil.copyfile(key_file_path(other), path)
    elif replace == "older-copy":
        shutil.copyfile(tmp_path / "old-keys", path)
    else:
        path.unlink()
        keys_for_backup(settings.backup.dir, keys, {}, [], NOW, has_sections=False)

    with pytest.raises(BackupKeysError, match={
            "another-installation": "belongs to installation",
            "older-copy": "is older than",
            "new-file": "is not the one"}[replace]):
        restore_backup(backup, settings, engine, keys, daemon_stopped=True)
    assert len(_names(sessions)) == 3


def test_a_new_backup_refuses_to_start_a_new_key_file_while_backups_need_the_old_one(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider) -> None:
    create_backup(settings, engine, keys, NOW)
    key_file_path(settings.backup.dir).unlink()

    with pytest.raises(BackupKeysError, match="is missing, and the backups"):
        create_backup(settings, engine, keys, NOW + dt.timedelta(hours=1))


def test_a_consent_withdrawn_after_the_backup_stays_withdrawn_when_the_database_is_lost(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path) -> None:
    backup = create_backup(settings, engine, keys, NOW)
    with sessions.begin() as session:
        withdraw_consent(session, session.get_one(Person, world.bob.id), "operator1",
                         provider=keys, now=NOW + dt.timedelta(days=1))
    sync_key_file(settings.backup.dir, sessions, keys, NOW)
    _lose_the_database(engine, db_path)

    report = restore_backup(backup, settings, engine, keys, daemon_stopped=True,
                            live_database_lost=True)

    assert report.replay.consents_withdrawn == 1 and report.replay.fingers_deleted == 1
    with sessions() as session:
        bob = session.get_one(Person, world.bob.id)
        assert bob.credential == Credential.PIN
        assert session.scalars(select(Finger).where(Finger.person_id == bob.id)).all() == []
        assert session.scalars(select(Consent.withdrawn_at).where(
            Consent.person_id == bob.id)).one() == NOW + dt.timedelta(days=1)


def test_a_purge_certificate_beside_the_database_is_honoured_by_a_restore(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path) -> None:
    backup = create_backup(settings, engine, keys, NOW)
    _end_acme(sessions, world)
    # A purge that did not reach the backups (run without the key file at hand), then the
    # database is lost: only the signed certificate in the data directory still says so.
    purge_completely(sessions, keys, engine, AFTER_ACME,
                     certificate_dir=certificate_dir(settings))
    _lose_the_database(engine, db_path)

    report = restore_backup(backup, settings, engine, keys, daemon_stopped=True,
                            live_database_lost=True)

    assert report.replay.purges_from_certificates == 1 and report.replay.customers_purged == 1
    assert _names(sessions) == ["Carol CANARY-CAROL-Shaw"]
    with sessions() as session:
        record = session.scalars(select(PurgeRecord)).one()
        assert record.status is PurgeStatus.COMPLETED and record.certificate
        assert session.scalars(select(ErasureLedgerEntry.action)).all() == [
            LedgerAction.PURGE_CUSTOMER]
    held = load(key_file_path(settings.backup.dir), keys)  # the restore brought it in line
    assert CustomerDigester(keys)(world.acme_public_id) not in held.customers


def test_a_format_1_backup_still_verifies_and_restores_with_every_erasure_honoured(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path, tmp_path: Path) -> None:
    from accessd.db import checkpoint_wal

    checkpoint_wal(engine)
    settings.backup.dir.mkdir()
    old = write_format_1(settings.backup.dir / "accessd-20250501T000000Z.backup", keys,
                         db_path, NOW - dt.timedelta(days=31))
    assert verify_backup(old, keys).version == 1
    with pytest.raises(BackupKeysError, match="restore needs the backup key file"):
        restore_backup(old, settings, engine, keys, daemon_stopped=True)
    create_backup(settings, engine, keys, NOW)  # the first backup with sections starts it
    with sessions.begin() as session:
        erase_person(session, session.get_one(Person, world.ada.id), "operator1", provider=keys)
    sync_key_file(settings.backup.dir, sessions, keys, NOW)
    _lose_the_database(engine, db_path)

    report = restore_backup(old, settings, engine, keys, daemon_stopped=True,
                            live_database_lost=True)

    assert report.replay.persons_erased == 1 and report.replay.fingers_deleted == 2
    assert report.replay.fingers_without_key == 2  # format 1 blanked the data keys
    assert _names(sessions) == ["Bob CANARY-BOB-Builder", "Carol CANARY-CAROL-Shaw"]


def test_a_rotation_reseals_the_key_file_before_retiring_the_old_master_key(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    create_backup(settings, engine, keys, NOW)
    before = load(key_file_path(settings.backup.dir), keys)

    result = rotate_master_key(keys, sessions, before_retire=key_resealer(settings, keys))

    assert result.retired_key_ids and result.new_key_id == keys.active_key_id
    after = load(key_file_path(settings.backup.dir), keys)
    assert after.customers == before.customers and after.generation == before.generation + 1
    backup = create_backup(settings, engine, keys, NOW + dt.timedelta(days=1))
    restore_backup(backup, settings, engine, keys, daemon_stopped=True)
    assert len(_names(sessions)) == 3


def test_every_table_naming_customers_or_people_is_planned() -> None:
    tables = {t.name: [c.name for c in t.columns] for t in Base.metadata.tables.values()}
    check_plan(tables)  # raises if one is not
    with pytest.raises(BackupError, match="table visits names customers or people"):
        check_plan({**tables, "visits": ["id", "person_id"]})


def test_doctor_names_backups_past_their_age_and_backups_a_purge_cannot_reach(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider,
        db_path: Path) -> None:
    assert check_backups(settings, keys, NOW) == f"no backups in {settings.backup.dir} yet"
    create_backup(settings, engine, keys, NOW - dt.timedelta(days=10))
    assert "1 backup(s)" in check_backups(settings, keys, NOW)
    old = create_backup(settings, engine, keys, NOW - dt.timedelta(days=400))

    with pytest.raises(BackupError, match=f"older than 12 months: {old.name}"):
        check_backups(settings, keys, NOW)
    old.unlink()
    first = write_format_1(settings.backup.dir / "accessd-20250520T000000Z.backup", keys,
                           db_path, NOW - dt.timedelta(days=12))
    with pytest.raises(BackupError, match=f"of format 1 \\({first.name}\\)"):
        check_backups(settings, keys, NOW)
