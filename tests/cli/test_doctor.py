"""`accessd doctor` names what a site got wrong, each failure with its fix (issue 14): an
installation made by `accessd init`, the simulated sensor and door board, one thing broken at a
time."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from accessd.backup.archive import create_backup
from accessd.cli.door import make_devices
from accessd.cli.main import main as accessd_main
from accessd.db import create_db_engine, upgrade
from accessd.doctor import Finding, Site, examine
from accessd.door.status import door_states
from hardware_sim.rig import RigOptions
from tests.daemon.conftest import Door, eventually, installed
from tests.deploy.conftest import DEPLOY
from tests.installation import set_config

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Door]:
    with installed(tmp_path) as door:
        yield door


def run(door: Door, *, now: dt.datetime = NOW, unit_dir: Path | None = None,
        systemd_running: bool = False) -> list[Finding]:
    return list(examine(Site(door.config, open_devices=make_devices, now=now,
                             environ={}, unit_dir=unit_dir or door.config.parent / "no-units",
                             systemd_running=systemd_running)))


def finding(findings: list[Finding], check: str) -> Finding:
    found = [f for f in findings if f.check.startswith(check)]
    assert found, f"no {check!r} in {[f.check for f in findings]}"
    return found[0]


def set_up_once(door: Door) -> None:
    """The daemon ran once: the sensor has this installation's password, the door a row."""
    door.start()
    door.stop()


def test_a_healthy_door_is_all_well_on_the_command_line(site: Door,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    set_up_once(site)
    create_backup(site.settings, site.engine, site.keys, NOW)
    assert accessd_main(["--config", str(site.config), "doctor"]) == 0
    out = capsys.readouterr().out
    for line in ("ok    config", "ok    keyring: 1 master key(s) from", "ok    database: schema",
                 "ok    clock", "ok    disk", f"ok    sensor port {site.settings.sensor.port}",
                 "ok    sensor on", "password ok, 0 of 100 slots used",
                 "ok    sensor library: in step with the database (0 templates)",
                 "ok    door board on", "locked, door closed", "ok    reconciliation",
                 "--    units: not under systemd"):
        assert line in out, line
    assert out.count("fix:") == 1
    # Same disk as the database, here: the one warning, and it does not fail the doctor.
    assert "WARN  backups" in out and "doctor: 0 failure(s), 1 warning(s)" in out


def test_a_broken_config_is_the_first_and_only_failure(site: Door,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    site.config.write_text(site.config.read_text() + "\n[sensr]\nport = 1\n")
    assert accessd_main(["--config", str(site.config), "doctor"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL  config: invalid configuration in")
    assert any("sensr" in line for line in out)
    assert out[-2] == f"      fix: edit {site.config} (`accessd init` writes every key, commented)"
    assert out[-1] == "doctor: 1 failure(s), 0 warning(s)"


def test_a_config_others_may_write(site: Door) -> None:
    os.chmod(site.config, 0o666)
    config = finding(run(site), "config")
    assert config.level == "fail" and "writable by others" in config.detail
    assert config.fix == f"chmod 600 {site.config}"


def test_a_keyring_others_may_read(site: Door) -> None:
    keyring = site.settings.keys.master_key_file
    assert keyring is not None
    os.chmod(keyring, 0o644)
    found = finding(run(site), "keyring")
    assert found.level == "fail"
    assert found.fix == f"chmod 600 {keyring}, owned by the daemon's user (sudo chown accessd " \
                        f"{keyring})"


def test_a_missing_keyring(site: Door) -> None:
    keyring = site.settings.keys.master_key_file
    assert keyring is not None
    keyring.unlink()
    found = finding(run(site), "keyring")
    assert found.level == "fail"
    assert found.fix == f"restore {keyring} from your offline copy (mode 0600, owned by the " \
                        "daemon's user)"


def test_an_installed_unit_whose_credential_is_missing(site: Door, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(DEPLOY / "systemd" / "accessd.service", units)
    found = finding(run(site, unit_dir=units), "keyring credential")
    assert found.level == "fail"
    assert "/etc/accessd/keyring.cred, which is missing" in found.detail
    assert found.fix == "sudo deploy/install (it encrypts the keyring with systemd-creds)"


def test_a_credential_beside_a_keyring_left_in_clear(site: Door, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    credential = tmp_path / "keyring.cred"
    credential.write_bytes(b"encrypted")
    text = (DEPLOY / "systemd" / "accessd.service").read_text()
    (units / "accessd.service").write_text(text.replace("/etc/accessd/keyring.cred",
                                                        str(credential)))
    found = finding(run(site, unit_dir=units), "keyring credential")
    assert found.level == "warn" and "in clear" in found.detail
    assert found.fix is not None and "--remove-plaintext-keyring" in found.fix


def test_a_database_behind_this_accessd(site: Door, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = create_db_engine(url)
    upgrade(engine, "0005")
    engine.dispose()
    set_config(site.config, {"database.url": url})
    found = finding(run(site), "database")
    assert found.level == "fail" and found.detail.startswith("schema 0005, this accessd needs")
    assert found.fix == "accessd migrate (the service runs it before the daemon starts)"
    assert accessd_main(["--config", str(site.config), "migrate"]) == 0
    assert "database schema 0005 -> " in capsys.readouterr().out
    assert finding(run(site), "database").level == "ok"


def test_no_backup_yet_then_one_too_old(site: Door) -> None:
    found = finding(run(site), "backups")
    assert found.level == "warn" and found.detail.startswith("none in")
    assert found.fix == "accessd backup (daily, to another medium than the SD card)"
    create_backup(site.settings, site.engine, site.keys, NOW - dt.timedelta(days=9))
    found = finding(run(site), "backups")
    assert found.level == "warn" and found.detail.startswith("the newest is 9 days old")


def test_a_clock_never_set(site: Door) -> None:
    found = finding(run(site, now=dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC)), "clock")
    assert found.level == "fail" and "1970-01-01 00:01 UTC" in found.detail
    assert found.fix is not None and found.fix.startswith("enable time sync (sudo timedatectl "
                                                          "set-ntp true")


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """An 8 MiB file system: room for an installation, not for its reserve journal and WAL."""
    mount = Path(tempfile.mkdtemp(prefix="accessd-small-"))
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                            capture_output=True, check=False)
    if result.returncode != 0:
        os.rmdir(mount)
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        os.rmdir(mount)


def test_a_disk_too_small_for_the_wal_and_the_reserve_journal(tmp_path: Path,
                                                              small_disk: Path) -> None:
    with installed(tmp_path, data_dir=small_disk / "data") as door:
        found = finding(run(door), "disk")
    assert found.level == "fail"
    assert "the WAL and the event reserve journal need 73 MiB" in found.detail
    assert found.fix == ("free space there (old logs: sudo journalctl --vacuum-size=50M), or "
                         "move backup.dir off the card")


def test_a_port_that_is_not_there(site: Door) -> None:
    set_config(site.config, {"door.port": "/dev/ttyUSB7"})
    findings = run(site)
    found = finding(findings, "door board port /dev/ttyUSB7")
    assert found.level == "fail" and found.detail == "no such device"
    assert found.fix is not None and found.fix.startswith(
        "set the door board's port to its stable name: sudo deploy/install (udev rules")
    # The devices are not opened on top: one failure, one fix.
    assert not [f for f in findings if f.check.startswith("door board on")]


def test_a_new_sensor_on_the_factory_password(site: Door) -> None:
    found = finding(run(site), "sensor on")
    assert found.level == "warn" and found.detail == "a new sensor on the factory password"
    assert found.fix is not None and "wipes the sensor and sets this installation's password" \
        in found.fix


def test_a_sensor_of_another_installation(tmp_path: Path) -> None:
    options = RigOptions(capacity=100, password=0x5EC2E7)
    with installed(tmp_path, options=options) as door:
        found = finding(run(door), "sensor on")
    assert found.level == "fail" and "set up by another installation" in found.detail
    assert found.fix == "fit a new sensor, or restore that installation's keyring"


def test_a_sensor_library_out_of_step_and_nearly_full(site: Door) -> None:
    set_up_once(site)
    for slot in range(95):
        site.rig.sensor.enrol(f"stranger-{slot}", slot)
    findings = run(site)
    full = finding(findings, "sensor on")
    assert full.level == "warn" and full.detail == "95 of 100 slots used"
    assert full.fix == "fit a larger sensor (R307: 1000 slots) before enrolling more people"
    library = finding(findings, "sensor library")
    assert library.level == "warn"
    assert library.detail == ("0 template(s) missing from the sensor, 95 on it that the "
                              "database does not hold")
    assert library.fix == "accessd resync (the daemon also does it at start)"


def test_a_tampered_reader(site: Door) -> None:
    set_up_once(site)
    site.rig.door.tamper()
    found = finding(run(site), "door board on")
    assert found.level == "fail" and "the reader's housing is open (tamper)" in found.detail
    assert found.fix is not None and found.fix.startswith("close the housing")


def test_a_door_that_never_ran(site: Door) -> None:
    found = finding(run(site), "reconciliation")
    assert found.level == "warn" and found.detail == "door 'main' has never run"
    assert found.fix == "start the daemon (sudo systemctl start accessd)"


def test_while_the_daemon_runs_its_report_stands_for_the_devices(site: Door) -> None:
    """Two processes on one serial line garble both: the doctor reads the daemon's report."""
    site.start()
    try:
        eventually(lambda: _reported_online(site), what="the daemon to report its devices")
        sensor_commands = len(site.rig.sensor.history)
        findings = run(site)
    finally:
        site.stop()
    assert finding(findings, "sensor (the running daemon's report)").detail == "online"
    assert finding(findings, "door board (the running daemon's report)").level == "ok"
    assert not [f for f in findings if f.check.startswith(("sensor on", "door board on"))]
    assert sensor_commands > 0


def _reported_online(door: Door) -> bool:
    with Session(door.engine) as session:
        states = door_states(session, dt.datetime.now(dt.UTC))
    return any(s.online and s.sensor_online for s in states)


def test_the_unit_not_installed_under_systemd(site: Door, tmp_path: Path) -> None:
    found = finding(run(site, unit_dir=tmp_path, systemd_running=True), "accessd.service")
    assert found.level == "fail" and found.detail == "not installed"
    assert found.fix == "sudo deploy/install"
