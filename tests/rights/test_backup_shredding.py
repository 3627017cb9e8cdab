"""A purge and an erasure reach every backup ever taken, through the command line; a restore on
a new card brings everyone else back and nobody destroyed; a restore that cannot prove what it
must honour refuses."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accessd.backup.keys import key_file_path, load
from accessd.db import create_db_engine, make_sessionmaker
from accessd.fingers.sealed import open_sealed
from accessd.history.chain import verify_chains
from accessd.models import (
    AccessEvent,
    Consent,
    Customer,
    DataSubjectRequest,
    ErasureLedgerEntry,
    Finger,
    LedgerAction,
    Person,
)
from tests.rights.backup_files import canaries, open_everything, windows
from tests.rights.sites import (
    CanaryWorld,
    Site,
    contract_ended,
    make_site,
    replace_keyring,
    seed_canaries,
)

ENDED = dt.date.today() - dt.timedelta(days=3)  # Acme's last day: its purge is due


@pytest.fixture
def site(tmp_path: Path, capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> Site:
    return make_site(tmp_path / "pi", tmp_path / "usb-disk" / "backups", capsys, monkeypatch)


def _needles(world: CanaryWorld, *who: str) -> list[bytes]:
    found: list[bytes] = []
    for key in who:
        canary = world.people[key]
        for text in canary.strings():
            found += canaries(text)
        found += windows(canary.template)
    return found


def _assert_absent(blobs: list[bytes], needles: list[bytes]) -> None:
    for blob in blobs:
        hits = [n for n in needles if n in blob]
        assert hits == [], f"{len(hits)} canaries found, e.g. {hits[:3]}"


def test_a_purge_and_an_erasure_leave_no_readable_byte_in_an_older_backup_and_a_new_card_restores_everyone_else(  # noqa: E501
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = seed_canaries(site)
    site.ok("backup")
    [backup] = sorted(site.settings.backup.dir.glob("accessd-*.backup"))

    # Before: the keys the installation holds open everyone (the helper is not blind).
    before = open_everything(backup, site.keys(), load(key_file_path(site.settings.backup.dir),
                                                       site.keys()))
    for key in ("ada", "bob", "carol"):
        assert before.contains(world.people[key].name.encode())
    assert sorted(before.templates) == sorted(c.template for c in world.people.values())

    contract_ended(site, world.acme, ENDED)
    erased = site.ok("erase", "person", world.people["bob"].name, "--yes")
    assert "erased person" in erased and "warning" not in erased
    purged = site.ok("purge", "--now")
    assert "customer" in purged and "awaiting doors" in purged  # backups first, then doors

    # After: every key the installation still holds, on the old backup.
    keys = load(key_file_path(site.settings.backup.dir), site.keys())
    after = open_everything(backup, site.keys(), keys)
    assert (after.sections, after.unreadable_sections) == (3, 1)
    assert after.sealed_records == 2 and after.records == 1  # Bob's record stays shut
    _assert_absent([*after.plaintext, backup.read_bytes()],
                   _needles(world, "ada", "alan", "bob") + canaries(world.acme))
    for text in world.people["carol"].strings():
        assert after.contains(text.encode())
    assert after.templates == [world.people["carol"].template]

    # The card dies. A new card: `accessd init`, the keyring's offline copy, the backup disk.
    offline_keyring = tmp_path / "offline-keyring.json"
    shutil.copyfile(site.keyring, offline_keyring)
    disk = tmp_path / "usb-disk-copy"
    shutil.copytree(site.settings.backup.dir, disk / "backups")
    new = make_site(tmp_path / "new-pi", disk / "backups", capsys, monkeypatch)
    replace_keyring(new, offline_keyring)
    restored = new.ok("restore", str(disk / "backups" / backup.name),
                      "--yes-i-stopped-the-daemon", "--live-database-lost")
    assert "1 customers and 1 persons stay gone" in restored

    engine = create_db_engine(new.settings.database.url)
    try:
        with make_sessionmaker(engine)() as session:
            assert session.scalars(select(Customer.name)).all() == [world.globex]
            assert session.scalars(select(Person.name)).all() == [world.people["carol"].name]
            carol = session.scalars(select(Person)).one()
            finger = session.scalars(select(Finger)).one()
            globex = session.get_one(Customer, carol.customer_id)
            assert globex.data_key is not None  # Carol keeps her finger: no re-enrolment
            assert open_sealed(new.keys(), finger, carol, globex, globex.data_key) == \
                world.people["carol"].template
            assert carol.pin_hash == world.people["carol"].pin_hash
            assert session.scalar(select(func.count()).select_from(Consent)) == 1
            assert session.scalars(select(DataSubjectRequest.requester_name)).all() == [
                world.people["carol"].requester]
            # Carol's history is hers again; Bob's stays in Globex's chain, naming nobody.
            assert session.scalar(select(func.count()).select_from(AccessEvent).where(
                AccessEvent.person_id == carol.id)) == 3
            assert session.scalar(select(func.count()).select_from(AccessEvent).where(
                AccessEvent.customer_id == globex.id, AccessEvent.person_id.is_(None),
                AccessEvent.subject_salt.is_(None))) == 3
            assert list(verify_chains(session)) == []
            actions = sorted(session.scalars(select(ErasureLedgerEntry.action)).all())
            assert actions == [LedgerAction.ERASE_PERSON, LedgerAction.PURGE_CUSTOMER]
    finally:
        engine.dispose()


def test_a_restore_without_the_key_file_refuses_in_one_line_saying_what_it_needs(
        site: Site) -> None:
    seed_canaries(site)
    site.ok("backup")
    [backup] = site.settings.backup.dir.glob("accessd-*.backup")
    key_file_path(site.settings.backup.dir).unlink()

    refused = site.run("restore", str(backup), "--yes-i-stopped-the-daemon",
                       "--live-database-lost")

    assert refused.code == 1
    assert refused.err.count("\n") == 1
    assert refused.err.startswith(
        f"accessd: restore needs the backup key file {key_file_path(site.settings.backup.dir)}")
    assert "copy it from your backup directory" in refused.err
