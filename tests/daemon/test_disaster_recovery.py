"""The README's procedure for a dead SD card, step by step, with the door on the simulator: a new
card (`accessd init`), the keyring's offline copy, the backup disk, `accessd restore
--live-database-lost`. The purged customer and the erased person stay gone at the door (finger
and PIN), everyone else is back, and keeps their finger without enrolling again."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from accessd.cli.main import main as accessd_main
from accessd.config import load_settings
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker
from accessd.models import CommandState, Consent, Credential, Customer, LawfulBasis, Person
from accessd.zones.grants import grant_default_zones
from tests.daemon.conftest import Door, People, eventually
from tests.installation import set_config


def _accessd(config: Path, *argv: str) -> int:
    return accessd_main(["--config", str(config), *argv])


def _present(door: Door, finger: str, kind: str) -> None:
    before = door.last_event_id()
    door.present(finger)
    door.wait_event(kind, after=before)
    door.lift()


def test_a_dead_sd_card_is_recovered_without_bringing_back_what_was_destroyed(
        door: Door, people: People, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usb = tmp_path / "usb-disk" / "backups"  # the backup directory lives on another medium
    set_config(door.config, {"backup.dir": str(usb)})
    with door.sessions.begin() as session:  # Globex stays: Gina, and Erik, who will be erased
        globex = Customer(name="Globex Colo", contract_start=dt.date.today() - dt.timedelta(30),
                          lawful_basis=LawfulBasis.CONSENT)
        session.add(globex)
        session.flush()
        grant_default_zones(session, globex)  # the site's zone, as `accessd customer add` does
        gina = Person(customer_id=globex.id, name="Gina Stays", credential=Credential.FINGER)
        erik = Person(customer_id=globex.id, name="Erik Erased", credential=Credential.FINGER)
        session.add_all([gina, erik])
        session.flush()
        for person in (gina, erik):
            session.add(Consent(person_id=person.id, customer_id=globex.id, text_version="1",
                                witnessed_by="alice-staff"))
        gina_id, erik_id = gina.id, erik.id
    door.start()
    for person_id, finger in ((people.alice, "alice-right-index"), (gina_id, "gina-thumb"),
                              (erik_id, "erik-index")):
        assert door.enrol(person_id, finger).state is CommandState.DONE
    _present(door, "gina-thumb", "granted")

    # Monday night's backup; on Tuesday Erik is erased and Acme's contract ends.
    assert _accessd(door.config, "backup") == 0
    [backup] = usb.glob("accessd-*.backup")
    assert _accessd(door.config, "erase", "person", "Erik Erased", "--yes") == 0
    with door.sessions.begin() as session:
        acme = session.get_one(Customer, people.acme)
        acme.contract_start = dt.date.today() - dt.timedelta(days=90)
        acme.contract_end = dt.date.today() - dt.timedelta(days=2)
    assert _accessd(door.config, "purge", "--now") == 0
    offline_keyring = tmp_path / "offline" / "keyring.json"  # made at installation time
    offline_keyring.parent.mkdir()
    assert door.settings.keys.master_key_file is not None
    shutil.copyfile(door.settings.keys.master_key_file, offline_keyring)

    # Wednesday the SD card dies (the daemon with it); the sensor and the door board survive.
    door.stop()
    door.engine.dispose()
    shutil.rmtree(door.settings.data_dir)

    # The README: 1. a new card, `accessd init`; 2. the keyring's offline copy in place of the
    # new one; 3. the backup disk mounted where backup.dir says; 4. restore the newest backup.
    config = tmp_path / "new-card" / "accessd.toml"
    assert _accessd(config, "init", "--data-dir", str(tmp_path / "new-card" / "data")) == 0
    set_config(config, {"backup.dir": str(usb), "sensor.port": door.rig.sensor.path,
                        "door.port": door.rig.door.path, "access.release_seconds": 3,
                        "sensor.timeout_seconds": 0.5})
    settings = load_settings(config)
    assert settings.keys.master_key_file is not None
    shutil.copyfile(offline_keyring, settings.keys.master_key_file)
    capsys.readouterr()
    assert _accessd(config, "restore", str(backup), "--yes-i-stopped-the-daemon",
                    "--live-database-lost") == 0
    said = capsys.readouterr().out
    assert "1 customers and 1 persons stay gone" in said

    engine = create_db_engine(settings.database.url)
    recovered = Door(door.rig, settings, engine, make_sessionmaker(engine),
                     FileKeyProvider(settings.keys.master_key_file), config)
    door.engine = engine  # the fixture disposes it at the end
    recovered.start()
    try:
        with recovered.sessions() as session:
            assert session.scalars(select(Person.name)).all() == ["Gina Stays"]
            assert session.scalar(select(Customer).where(Customer.id == people.acme)) is None
        eventually(lambda: recovered.rig.sensor.template_count == 1,
                   what="the sensor to hold Gina's template only")
        _present(recovered, "gina-thumb", "granted")  # no re-enrolment
        eventually(lambda: recovered.rig.door.relay_locked, what="the board to relock")
        for gone in ("alice-right-index", "erik-index"):
            _present(recovered, gone, "unknown_finger")
        before = recovered.last_event_id()
        recovered.rig.door.keys(f"{people.alice_code}*{people.alice_pin}#")
        refused = recovered.wait_event("denied", after=before)
        assert refused.person_id is None and refused.method == "pin"
        assert recovered.rig.door.relay_locked
    finally:
        recovered.stop()
