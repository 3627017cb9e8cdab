"""Backups: encrypted, verified, private, and a restore that never brings destroyed data back."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.backup import sections
from accessd.backup.archive import (
    create_backup,
    list_backups,
    prune_backups,
    restore_backup,
    verify_backup,
)
from accessd.config import BackupSettings, Settings
from accessd.crypto import (
    FileKeyProvider,
    WrappedDataKey,
)
from accessd.db import create_db_engine
from accessd.errors import BackupError
from accessd.fingers.sealed import open_sealed
from accessd.history.chain import append_event, verify_chains
from accessd.models import (
    CommandKind,
    Customer,
    DataKey,
    DeviceCommand,
    ErasureLedgerEntry,
    EventKind,
    EventMethod,
    Finger,
    Person,
    PurgeRecord,
)
from tests.rights.backup_files import (
    chunk_offsets,
    flip,
    installation_keys,
    layout,
    open_everything,
)
from tests.rights.seed import World, add_customer, raw_database_bytes

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 KiB, so that even a small database spans several."""
    monkeypatch.setattr("accessd.backup.archive.CHUNK_SIZE", 4096)


def _names(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Customer.name)).all())


def _add_later_customer(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        add_customer(session, "Signed up after the backup")


def _restore(path: Path, settings: Settings, engine: Engine, keys: FileKeyProvider,
             **options: bool) -> None:
    restore_backup(path, settings, engine, keys, daemon_stopped=True, **options)


def test_round_trip_brings_the_database_back_as_it_was(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    path = create_backup(settings, engine, keys, NOW)
    _add_later_customer(sessions)

    _restore(path, settings, engine, keys)

    assert _names(sessions) == {"Acme Hosting CANARY-ACME", "Globex CANARY-GLOBEX"}
    with sessions() as session:
        for finger in session.scalars(select(Finger)):
            person = session.get_one(Person, finger.person_id)
            customer = session.get_one(Customer, finger.customer_id)
            assert customer.data_key is not None
            template = open_sealed(keys, finger, person, customer, customer.data_key)
            assert template.startswith(b"TEMPLATE[")
        assert list(verify_chains(session)) == []
        resyncs = session.scalars(select(DeviceCommand.door_id)
                                  .where(DeviceCommand.kind == CommandKind.RESYNC)).all()
        assert sorted(resyncs) == sorted(world.door_ids)


def test_every_event_keeps_its_person_and_salt_through_a_restore(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path) -> None:
    """The links from events to people travel in the people's records: several per person,
    one from the facility's chain, and one whose salt is unlike the others (as an older
    accessd may have written it), which goes link by link."""
    with sessions.begin() as session:
        ada = session.get_one(Person, world.ada.id)
        append_event(session, kind=EventKind.UNKNOWN_FINGER, person=ada,
                     door_id=world.door_ids[0], method=EventMethod.FINGER)
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE access_events SET subject_salt = x'0102030405' WHERE id = "
                   "(SELECT min(id) FROM access_events WHERE person_id = ?)", (world.bob.id,))
    query = "SELECT id, customer_id, person_id, subject_salt FROM access_events ORDER BY id"
    links = "SELECT person_id, event_id FROM person_events ORDER BY event_id"
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        events, indexed = db.execute(query).fetchall(), db.execute(links).fetchall()
    assert {row[2] for row in events} == {None, world.ada.id, world.bob.id, world.carol.id}
    path = create_backup(settings, engine, keys, NOW)
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE access_events SET person_id = NULL, subject_salt = NULL")

    _restore(path, settings, engine, keys)

    with contextlib.closing(sqlite3.connect(db_path)) as db:
        assert db.execute(query).fetchall() == events
        assert db.execute(links).fetchall() == indexed


def test_a_backup_of_format_2_still_restores_with_its_links(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 2 packed every link on its own; format 3 may pack them in bulk. A backup written
    before (header 2, records link by link) restores as it did."""
    query = "SELECT id, person_id, subject_salt FROM access_events ORDER BY id"
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        events = db.execute(query).fetchall()
    bulk = sections.pack_record
    monkeypatch.setattr("accessd.backup.format.FORMAT_VERSION", 2)
    monkeypatch.setattr(sections, "pack_record", lambda tables, links: bulk(
        tables, [sections._one_by_one(part) for part in links]))
    path = create_backup(settings, engine, keys, NOW)
    monkeypatch.undo()
    assert verify_backup(path, keys).version == 2
    _add_later_customer(sessions)

    _restore(path, settings, engine, keys)

    assert _names(sessions) == {"Acme Hosting CANARY-ACME", "Globex CANARY-GLOBEX"}
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        assert db.execute(query).fetchall() == events


def test_backup_files_are_private_and_the_backup_is_named_by_its_time(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider,
        data_dir: Path) -> None:
    path = create_backup(settings, engine, keys, NOW)

    assert path.name == "accessd-20250601T120000Z.backup"
    assert verify_backup(path, keys).created_at == NOW
    assert sorted(p.name for p in path.parent.iterdir()) == [
        ".backup-keys.lock", path.name, "backup-keys"]  # no leftovers
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for made in path.parent.iterdir():
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".")] == []


def test_two_backups_in_one_second_both_keep_their_file(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider) -> None:
    first = create_backup(settings, engine, keys, NOW)
    second = create_backup(settings, engine, keys, NOW)

    assert first != second and first.exists() and second.exists()


def test_the_installation_section_holds_no_customer_person_or_data_key(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider,
        tmp_path: Path) -> None:
    path = create_backup(settings, engine, keys, NOW)

    alone = open_everything(path, keys, None)  # the keyring without the backup key file
    assert (alone.sections, alone.unreadable_sections) == (3, 2)  # installation, two customers
    inside = tmp_path / "inside.sqlite3"
    inside.write_bytes(alone.plaintext[0])
    with sqlite3.connect(inside) as copy:
        for table in ("customers", "persons", "fingers", "consents", "data_keys",
                      "door_customers", "sensor_slots", "person_events"):
            assert copy.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        assert copy.execute("SELECT count(*) FROM doors").fetchone() == (2,)
        assert copy.execute("SELECT scope FROM event_chains").fetchall() == [("facility",)]
        # The facility's unknown-finger event stays, naming nobody.
        assert copy.execute("SELECT customer_id, person_id, subject_salt FROM access_events"
                            ).fetchall() == [(None, None, None)]
    for someone in world.people:
        assert not alone.contains(someone.name.encode())


def _without_section(data: bytes, index: int) -> bytes:
    span = layout(data)[1][index]
    return data[:span.start] + data[span.end:]


def _swap_sections(data: bytes, first: int, second: int) -> bytes:
    a, b = layout(data)[1][first], layout(data)[1][second]
    assert a.end == b.start
    return data[:a.start] + data[b.start:b.end] + data[a.start:a.end] + data[b.end:]


@pytest.mark.parametrize("damage", [
    pytest.param(lambda data, header, chunks: data[:chunks[-1][0]], id="final-chunk-cut-off"),
    pytest.param(lambda data, header, chunks: data[:chunks[1][0]], id="cut-at-a-chunk-boundary"),
    pytest.param(lambda data, header, chunks: data[:chunks[1][0] + 100], id="cut-mid-chunk"),
    pytest.param(lambda data, header, chunks: data[:header], id="header-only"),
    pytest.param(lambda data, header, chunks: flip(data, 25), id="bit-flip-in-created-at"),
    pytest.param(lambda data, header, chunks: flip(data, header - 5), id="bit-flip-in-file-key"),
    pytest.param(lambda data, header, chunks: flip(data, chunks[1][0] + 50),
                 id="bit-flip-in-a-chunk"),
    pytest.param(lambda data, header, chunks: flip(data, chunks[-1][0] + 6),
                 id="bit-flip-in-the-final-chunk"),
    pytest.param(lambda data, header, chunks: data[:chunks[0][0]]
                 + data[chunks[1][0]:chunks[1][0] + chunks[1][1]]
                 + data[chunks[0][0]:chunks[0][0] + chunks[0][1]]
                 + data[chunks[2][0]:], id="chunks-swapped"),
    pytest.param(lambda data, header, chunks: data + b"\x00\x00\x00\x10" + bytes(16),
                 id="bytes-after-the-final-chunk"),
    pytest.param(lambda data, header, chunks: b"\x89accessd-backup?" + data[16:],
                 id="wrong-magic"),
    pytest.param(lambda data, header, chunks: _without_section(data, 1),
                 id="a-customer-section-dropped"),
    pytest.param(lambda data, header, chunks: _swap_sections(data, 1, 2),
                 id="customer-sections-swapped"),
    pytest.param(lambda data, header, chunks: flip(data, layout(data)[1][2].chunks[0][0] + 9),
                 id="bit-flip-in-a-customer-section"),
    pytest.param(lambda data, header, chunks: flip(data, layout(data)[1][1].start + 70),
                 id="bit-flip-in-a-customer-section-key"),
    pytest.param(lambda data, header, chunks: data[:layout(data)[1][-1].start],
                 id="manifest-cut-off"),
])
def test_a_damaged_backup_is_refused_before_anything_changes(
        damage: Callable[[bytes, int, list[tuple[int, int]]], bytes], small_chunks: None,
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, data_dir: Path) -> None:
    path = create_backup(settings, engine, keys, NOW)
    data = path.read_bytes()
    header, chunks = chunk_offsets(data)
    assert len(chunks) >= 3  # the cases need several chunks
    path.write_bytes(damage(data, header, chunks))
    _add_later_customer(sessions)
    before = sorted(p.name for p in data_dir.iterdir())

    with pytest.raises(BackupError, match=r"use another backup|not an accessd backup"):
        verify_backup(path, keys)
    with pytest.raises(BackupError):
        _restore(path, settings, engine, keys)

    assert "Signed up after the backup" in _names(sessions)
    assert sorted(p.name for p in data_dir.iterdir()) == before  # no temporary file left


def test_a_backup_under_another_keyring_is_refused(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, tmp_path: Path) -> None:
    path = create_backup(settings, engine, keys, NOW)
    stranger = FileKeyProvider.create(tmp_path / "other-keyring.json")
    _add_later_customer(sessions)

    with pytest.raises(BackupError, match="which this keyring does not hold"):
        verify_backup(path, stranger)
    with pytest.raises(BackupError, match="belongs to installation"):
        _restore(path, settings, engine, stranger)
    assert "Signed up after the backup" in _names(sessions)


def test_restore_asks_for_the_daemon_to_be_stopped(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider) -> None:
    path = create_backup(settings, engine, keys, NOW)

    with pytest.raises(BackupError, match="--yes-i-stopped-the-daemon"):
        restore_backup(path, settings, engine, keys, daemon_stopped=False)


def test_restore_refuses_while_another_process_has_the_database_open(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path) -> None:
    path = create_backup(settings, engine, keys, NOW)
    _add_later_customer(sessions)
    other = sqlite3.connect(db_path)  # stands for the daemon: it keeps the WAL alive
    try:
        other.execute("SELECT count(*) FROM customers").fetchall()
        with pytest.raises(BackupError, match="still open in another process"):
            _restore(path, settings, engine, keys)
    finally:
        other.close()
    assert "Signed up after the backup" in _names(sessions)


def test_a_backup_taken_before_a_purge_restores_nothing_readable_of_that_customer(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path, tmp_path: Path) -> None:
    from accessd.db import checkpoint_wal
    from accessd.privacy.purge import run_due_purges

    path = create_backup(settings, engine, keys, NOW)
    with sessions.begin() as session:
        session.get_one(Customer, world.acme_id).contract_end = dt.date(2025, 6, 30)
        acme_key = session.scalars(select(DataKey).where(DataKey.customer_id == world.acme_id)
                                   ).one()
        acme_wrapped = WrappedDataKey(acme_key.master_key_id, acme_key.wrapped_key)
    run_due_purges(sessions, keys, engine, dt.datetime(2025, 7, 2, tzinfo=dt.UTC),
                   site_timezone="Europe/Amsterdam")

    _restore(path, settings, engine, keys)

    with sessions() as session:
        assert session.scalar(select(Customer).where(
            Customer.public_id == world.acme_public_id)) is None
        assert session.scalar(select(func.count()).select_from(Person).where(
            Person.public_id.in_([world.ada.public_id, world.bob.public_id]))) == 0
        assert session.scalar(select(func.count()).select_from(Finger).where(
            Finger.public_id.in_(world.ada.finger_public_ids + world.bob.finger_public_ids))) == 0
        keys_left = session.execute(select(Customer.public_id).join(
            DataKey, DataKey.customer_id == Customer.id)).scalars().all()
        assert keys_left == [world.globex_public_id]
        assert session.scalar(select(func.count()).select_from(ErasureLedgerEntry)) == 1
        # The proof of the purge survives the restore of a backup older than it.
        assert session.scalar(select(func.count()).select_from(PurgeRecord)) == 1
        carol_finger = session.scalars(select(Finger)).one()
        carol = session.get_one(Person, carol_finger.person_id)
        globex = session.get_one(Customer, carol.customer_id)
        assert globex.data_key is not None
        assert open_sealed(keys, carol_finger, carol, globex, globex.data_key) == \
            world.carol.templates[0]
        assert list(verify_chains(session)) == []
    checkpoint_wal(engine)
    raw = raw_database_bytes(db_path)
    for canary in (b"CANARY-ACME", b"CANARY-ADA", b"CANARY-BOB", b"ada.canary", b"bob.canary",
                   *world.ada.ciphertexts, *world.bob.ciphertexts):
        assert canary not in raw
    assert acme_wrapped.wrapped not in raw
    # The backup still holds Acme's section, but no key the installation holds opens it.
    opened = open_everything(path, keys, installation_keys(settings.backup.dir, keys))
    assert (opened.sections, opened.unreadable_sections) == (3, 1)
    for canary in (b"CANARY-ACME", b"CANARY-ADA", b"CANARY-BOB", b"ada.canary", b"bob.canary",
                   acme_wrapped.wrapped, *world.ada.ciphertexts, *world.bob.ciphertexts,
                   *world.ada.templates, *world.bob.templates):
        assert not opened.contains(canary)
    assert opened.contains(b"CANARY-CAROL") and world.carol.templates == opened.templates


def test_a_backup_taken_before_an_erasure_does_not_bring_the_person_back(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path) -> None:
    from accessd.db import checkpoint_wal
    from accessd.rights.actions import erase_person

    path = create_backup(settings, engine, keys, NOW)
    with sessions.begin() as session:
        erase_person(session, session.get_one(Person, world.ada.id), "operator1", provider=keys)

    _restore(path, settings, engine, keys)

    with sessions() as session:
        assert session.scalar(select(Person).where(Person.public_id == world.ada.public_id)) \
            is None
        assert session.scalar(select(func.count()).select_from(Finger).where(
            Finger.public_id.in_(world.ada.finger_public_ids))) == 0
        assert session.get(Person, world.bob.id) is not None
        assert list(verify_chains(session)) == []
    checkpoint_wal(engine)
    raw = raw_database_bytes(db_path)
    for canary in (b"CANARY-ADA", b"ada.canary", world.ada.public_id.hex.encode(),
                   *world.ada.ciphertexts):
        assert canary not in raw
    assert b"CANARY-BOB" in raw  # the rest came back


def test_a_backup_taken_before_a_consent_withdrawal_withdraws_it_again(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    from accessd.models import Consent, Credential
    from accessd.rights.actions import withdraw_consent

    path = create_backup(settings, engine, keys, NOW)
    with sessions.begin() as session:
        withdraw_consent(session, session.get_one(Person, world.bob.id), "operator1",
                         provider=keys, now=NOW + dt.timedelta(days=1))

    report = restore_backup(path, settings, engine, keys, daemon_stopped=True)

    assert report.replay.consents_withdrawn == 1 and report.replay.fingers_deleted == 1
    assert report.ledger_entries_since_backup == 1
    with sessions() as session:
        bob = session.get_one(Person, world.bob.id)
        assert bob.credential == Credential.PIN
        assert session.scalars(select(Finger).where(Finger.person_id == bob.id)).all() == []
        consent = session.scalars(select(Consent).where(Consent.person_id == bob.id)).one()
        assert consent.withdrawn_at == NOW + dt.timedelta(days=1)


def test_restore_without_the_live_database_needs_saying_so_and_keeps_the_fingers(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider, db_path: Path) -> None:
    path = create_backup(settings, engine, keys, NOW)
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)

    with pytest.raises(BackupError, match="--live-database-lost"):
        _restore(path, settings, engine, keys)
    report = restore_backup(path, settings, engine, keys, daemon_stopped=True,
                            live_database_lost=True)

    assert report.replay.fingers_without_key == 0
    assert (report.merged.customers, report.merged.persons) == (2, 3)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 3
        for finger in session.scalars(select(Finger)):
            person = session.get_one(Person, finger.person_id)
            customer = session.get_one(Customer, finger.customer_id)
            assert customer.data_key is not None
            assert open_sealed(keys, finger, person, customer, customer.data_key) in [
                t for someone in world.people for t in someone.templates]
        assert session.scalar(select(func.count()).select_from(Finger)) == 4
        assert list(verify_chains(session)) == []


def test_prune_deletes_only_backups_older_than_the_cap(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider) -> None:
    def months_ago(months: int, days: int = 0) -> dt.datetime:
        year, month0 = divmod(NOW.year * 12 + NOW.month - 1 - months, 12)
        return NOW.replace(year=year, month=month0 + 1) - dt.timedelta(days=days)

    old = create_backup(settings, engine, keys, months_ago(12, days=1))
    edge = create_backup(settings, engine, keys, months_ago(12))
    young = create_backup(settings, engine, keys, months_ago(11))
    unrelated = settings.backup.dir / "README.txt"
    unrelated.write_text("not a backup")

    assert prune_backups(settings, NOW) == [old]
    assert [p for p, _ in list_backups(settings.backup.dir)] == [edge, young]
    assert unrelated.exists()


def test_prune_follows_the_configured_cap(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider) -> None:
    three_months = Settings(data_dir=settings.data_dir, database=settings.database,
                            keys=settings.keys,
                            backup=BackupSettings(dir=settings.backup.dir, max_age_months=3))
    old = create_backup(settings, engine, keys, NOW - dt.timedelta(days=100))
    young = create_backup(settings, engine, keys, NOW - dt.timedelta(days=80))

    assert prune_backups(three_months, NOW) == [old]
    assert young.exists()


def test_postgresql_is_left_to_pg_dump(settings: Settings, keys: FileKeyProvider) -> None:
    engine = create_db_engine("postgresql+psycopg://accessd@127.0.0.1:1/accessd")
    try:
        with pytest.raises(BackupError, match="pg_dump"):
            create_backup(settings, engine, keys, NOW)
    finally:
        engine.dispose()


def test_backup_of_a_damaged_database_is_refused(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider,
        db_path: Path) -> None:
    from accessd.db import checkpoint_wal

    checkpoint_wal(engine)
    engine.dispose()
    with sqlite3.connect(db_path) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'persons'").fetchone()
        (page,) = db.execute("PRAGMA page_size").fetchone()
    with db_path.open("r+b") as handle:  # scribble over the people's table
        handle.seek((root - 1) * page)
        handle.write(b"\xff" * page)

    with pytest.raises(BackupError, match=r"malformed|integrity"):
        create_backup(settings, engine, keys, NOW)
    assert list(settings.backup.dir.glob("*.backup")) == []
    assert [p.name for p in db_path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_every_directory_a_backup_creates_is_private(
        world: World, settings: Settings, engine: Engine, keys: FileKeyProvider,
        tmp_path: Path) -> None:
    nested = tmp_path / "usb" / "accessd" / "backups"

    path = create_backup(settings, engine, keys, NOW, out_dir=nested)

    for folder in (nested, nested.parent, nested.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
