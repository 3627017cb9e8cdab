"""``accessd doctor``: everything a site gets wrong, checked, each failure with one fix.

Each check gives ``Finding``s: ``ok`` (what was seen), ``warn`` (works, but fix it before it
bites) or ``fail`` (something does not work or will not), the last two with the one thing to
do. The checks run in the order a site sets things up (config, keyring, database, backups,
clock, disk, ports, devices, service), and a check that cannot run without an earlier one
(the database without the config) is left out rather than failing twice.

The devices: while the daemon runs it owns both serial ports, and a second process talking on
them would garble its frames, so the doctor then reads the daemon's own last report instead of
opening them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from accessd.errors import AccessdError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from accessd.config import Settings
    from accessd.crypto import FileKeyProvider
    from firmware_bridge.door import DoorBoard
    from firmware_bridge.sensor import Sensor

    OpenDevices = Callable[[Settings, FileKeyProvider], tuple[Sensor, DoorBoard]]

T = TypeVar("T")
Level = Literal["ok", "warn", "fail", "skip"]
Checks = Generator["Finding", None, "T"]

CLOCK_FLOOR = 2024  # no release of accessd ran before: an earlier year is a clock never set
WAL_HEADROOM = 64 * 1024 * 1024  # bytes the WAL may take while a long read holds checkpoints
FILL_WARNING = 0.9  # a sensor library this full cannot take a new customer's people
BACKUP_STALE_DAYS = 7
UNIT = "accessd.service"
PANEL_UNIT = "accessd-web.service"
UNIT_DIR = Path("/etc/systemd/system")
SYSTEMD_RUNNING = Path("/run/systemd/system")  # sd_booted(): systemd is PID 1
STABLE_PORTS = ("/dev/accessd-", "/dev/serial", "/dev/serial/by-id/", "/dev/serial/by-path/")
KERNEL_NAME = re.compile(r"/dev/tty(USB|ACM|AMA|S)\d+")


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the doctor's report, and for a warning or failure its fix."""

    level: Level
    check: str
    detail: str = ""
    fix: str | None = None

    def lines(self) -> list[str]:
        tag = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "--"}[self.level]
        first, *more = f"{self.check}{': ' + self.detail if self.detail else ''}".splitlines()
        out = [f"{tag:<5} {first}", *(f"      {line.strip()}" for line in more)]
        if self.fix:
            out.append(f"      fix: {self.fix}")
        return out


def ok(check: str, detail: str = "") -> Finding:
    return Finding("ok", check, detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding("warn", check, detail, fix)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding("fail", check, detail, fix)


@dataclass
class Site:
    """What the checks look at, with where to find the parts a test may move."""

    config_path: Path | None
    open_devices: OpenDevices
    now: dt.datetime
    environ: dict[str, str]
    unit_dir: Path = UNIT_DIR
    systemd_running: bool = SYSTEMD_RUNNING.is_dir()


def examine(site: Site) -> Iterator[Finding]:
    """Every check, in order."""
    settings = yield from check_config(site)
    if settings is None:
        return
    keys = yield from check_keyring(site, settings)
    engine = yield from check_database(settings)
    if engine is not None and keys is not None:
        yield from _guarded("erasure ledger and purge records",
                            lambda: _ledger(engine, keys), "accessd verify-log")
    if keys is not None:
        yield from check_backups(settings, keys, site.now)
    yield from check_clock(site)
    yield from check_disk(settings)
    ports = [finding for device, port in (("sensor", settings.sensor.port),
                                          ("door board", settings.door.port))
             for finding in check_port(device, port)]
    yield from ports
    running = _daemon_report(site, engine, settings) if engine is not None else None
    if running is not None:
        yield from running
    elif keys is not None and not any(f.level == "fail" for f in ports):
        yield from check_devices(site, settings, keys, engine)
    if engine is not None:
        yield from check_library_records(engine, settings)
        engine.dispose()
    yield from check_units(site)


# --- config and keyring ----------------------------------------------------------------------


def check_config(site: Site) -> Checks[Settings | None]:
    from accessd.config import config_path, load_settings

    path = Path(config_path(site.config_path, site.environ))
    try:
        settings = load_settings(path, env=site.environ)
    except AccessdError as exc:
        yield fail("config", str(exc), f"edit {path} (`accessd init` writes every key, "
                                       "commented)")
        return None
    mode = path.stat().st_mode if path.exists() else 0
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        yield fail("config", f"{path} is writable by others (mode {mode & 0o777:o}): anyone "
                   "who can edit it chooses the database and the ports",
                   f"chmod 600 {path}")
    elif mode & stat.S_IROTH and _has_password(settings.database.url):
        yield fail("config", f"{path} holds the database's password and is readable by "
                   "everyone", f"chmod 600 {path}")
    else:
        yield ok("config", str(path))
    return settings


def check_keyring(site: Site, settings: Settings) -> Checks[FileKeyProvider | None]:
    from accessd.crypto.installation import open_key_provider

    keys = settings.keys
    try:
        provider = open_key_provider(settings)
        count = len(provider.key_ids())
    except AccessdError as exc:
        path = keys.master_key_file
        if keys.from_credential:
            fix = "encrypt the keyring again: sudo deploy/install (systemd-creds encrypt)"
        elif path is not None and path.exists():
            fix = f"chmod 600 {path}, owned by the daemon's user (sudo chown accessd {path})"
        else:
            fix = f"restore {path} from your offline copy (mode 0600, owned by the daemon's user)"
        yield fail("keyring", str(exc), fix)
        provider = None
    else:
        source = "the systemd credential" if keys.from_credential else str(keys.master_key_file)
        yield ok("keyring", f"{count} master key(s) from {source}")
    credential = _unit_credential(site.unit_dir / UNIT)
    if credential is not None and not credential.exists():
        yield fail("keyring credential", f"{UNIT} loads {credential}, which is missing: "
                   "systemd will not start the daemon",
                   "sudo deploy/install (it encrypts the keyring with systemd-creds)")
    elif credential is not None and not keys.from_credential and keys.master_key_file \
            and keys.master_key_file.exists():
        yield warn("keyring credential", f"the service reads {credential}, and the keyring is "
                   f"also on the card in clear ({keys.master_key_file})",
                   "copy it to an offline medium, then sudo deploy/install "
                   "--remove-plaintext-keyring (`sudo accessd ...` then runs with the "
                   "credential)")
    return provider


def _unit_credential(unit: Path) -> Path | None:
    """The keyring credential an installed unit loads, if any."""
    try:
        text = unit.read_text()
    except OSError:
        return None
    match = re.search(r"^LoadCredential(?:Encrypted)?=[^:\n]+:(\S+)", text, re.MULTILINE)
    return Path(match.group(1)) if match else None


# --- database and backups --------------------------------------------------------------------


def check_database(settings: Settings) -> Checks[Engine | None]:
    from alembic.script import ScriptDirectory

    from accessd.db import alembic_config, check_integrity, create_db_engine, current_revision

    try:
        engine = create_db_engine(settings.database.url)
        report = check_integrity(engine)
        revision = current_revision(engine)
    except Exception as exc:
        yield fail("database", _first_line(exc), "check database.url in the config, and that "
                   "the daemon's user can read and write the data directory")
        return None
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    if not report.ok:
        yield fail("database", "integrity check failed: " + "; ".join(report.problems[:3]),
                   "restore the latest backup: accessd restore FILE")
    elif revision != head:
        yield fail("database", f"schema {revision or 'empty'}, this accessd needs {head}",
                   "accessd migrate (the service runs it before the daemon starts)")
        engine.dispose()
        return None  # the checks that read it would only repeat this in other words
    else:
        yield ok("database", f"schema {revision}")
    return engine


def _ledger(engine: Engine, keys: FileKeyProvider) -> str:
    from accessd.db import make_sessionmaker
    from accessd.privacy.ledger import ledger_status

    return str(ledger_status(make_sessionmaker(engine), keys))


def check_backups(settings: Settings, keys: FileKeyProvider, now: dt.datetime
                  ) -> Iterator[Finding]:
    from accessd.backup.housekeeping import backup_dir, check_backups, list_backups

    directory = backup_dir(settings)
    try:
        summary = check_backups(settings, keys, now)
    except AccessdError as exc:
        yield fail("backups", str(exc), "accessd backup prune, then accessd backup")
        return
    backups = list_backups(directory)
    if not backups:
        yield warn("backups", f"none in {directory} yet",
                   "accessd backup (daily, to another medium than the SD card)")
    elif (age := now - backups[-1][1]).days >= BACKUP_STALE_DAYS:
        yield warn("backups", f"the newest is {age.days} days old ({backups[-1][0].name})",
                   "accessd backup (daily: a restore brings back only what the newest holds)")
    else:
        yield ok("backups", summary)
    if directory.is_dir() and _same_device(directory, settings.data_dir):
        yield warn("backups", f"{directory} is on the same disk as the database: the card that "
                   "dies takes both", "set backup.dir to a USB disk or network share mounted "
                   "at boot")


def _same_device(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


# --- the machine -----------------------------------------------------------------------------


def check_clock(site: Site) -> Iterator[Finding]:
    if site.now.year < CLOCK_FLOOR:
        yield fail("clock", f"it is {site.now:%Y-%m-%d %H:%M} UTC by this machine: the clock "
                   "was never set (a Pi has no battery clock)",
                   "enable time sync (sudo timedatectl set-ntp true, with the network up) or "
                   "fit an RTC module; contracts and events go by this clock")
        return
    synced = _timedatectl("NTPSynchronized") if site.systemd_running else None
    if synced == "no":
        yield warn("clock", f"{site.now:%Y-%m-%d %H:%M} UTC, not synchronised",
                   "sudo timedatectl set-ntp true, and let it reach an NTP server")
    else:
        yield ok("clock", f"{site.now:%Y-%m-%d %H:%M} UTC"
                 + (", synchronised" if synced == "yes" else ""))


def _timedatectl(prop: str) -> str | None:
    if shutil.which("timedatectl") is None:
        return None
    result = subprocess.run(["timedatectl", "show", "-p", prop, "--value"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def disk_needed(settings: Settings) -> int:
    """Bytes the data directory's disk must have free: the reserve journal if it is not
    allocated yet, and room for the WAL to grow to the database's size (a long read holds
    checkpoints back; a purge or restore rewrites every page), at least ``WAL_HEADROOM``."""
    from accessd.door.journal import CAPACITY, JOURNAL_FILE, RECORD_SIZE

    journal = 0 if (settings.data_dir / JOURNAL_FILE).exists() else RECORD_SIZE * (1 + CAPACITY)
    database = _sqlite_file(settings.database.url)
    size = database.stat().st_size if database is not None and database.exists() else 0
    return journal + max(WAL_HEADROOM, size)


def check_disk(settings: Settings) -> Iterator[Finding]:
    free = shutil.disk_usage(settings.data_dir).free
    needed = disk_needed(settings)
    mib = 1024 * 1024
    if free < needed:
        yield fail("disk", f"{free // mib} MiB free on {settings.data_dir}'s disk; the WAL and "
                   f"the event reserve journal need {needed // mib} MiB",
                   "free space there (old logs: sudo journalctl --vacuum-size=50M), or move "
                   "backup.dir off the card")
    else:
        yield ok("disk", f"{free // mib} MiB free, {needed // mib} MiB needed")


def _has_password(url: str) -> bool:
    from sqlalchemy.engine import make_url

    try:
        return bool(make_url(url).password)
    except Exception:
        return False


def _sqlite_file(url: str) -> Path | None:
    prefix, sep, rest = url.partition(":///")
    return Path(rest) if prefix.startswith("sqlite") and sep and rest != ":memory:" else None


# --- serial ports and devices ----------------------------------------------------------------


def check_port(device: str, port: str) -> Iterator[Finding]:
    """The port is there, the daemon's user may open it, and its name survives a reboot."""
    what = f"{device} port {port}"
    path = Path(port)
    udev = ("sudo deploy/install (udev rules for /dev/accessd-sensor and /dev/accessd-door), "
            "then check the cable; `ls -l /dev/accessd-*` shows the names")
    if not path.exists():
        yield fail(what, "no such device", "plug it in; " + udev if port.startswith(
            "/dev/accessd-") else f"set the {device}'s port to its stable name: {udev}")
        return
    if not os.access(path, os.R_OK | os.W_OK):
        owner = path.stat()
        group = _group_name(owner.st_gid)
        yield fail(what, f"not readable and writable by this user (group {group}, mode "
                   f"{owner.st_mode & 0o777:o})",
                   f"sudo usermod -aG {group} accessd (and the udev rules give the port "
                   "MODE 0660)")
        return
    if KERNEL_NAME.fullmatch(port):
        yield warn(what, "a kernel name: another USB device plugged in first takes it",
                   f"use its stable name in the config: {udev}")
        return
    yield ok(what, f"-> {os.path.realpath(path)}" if path.is_symlink() else "")


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _daemon_report(site: Site, engine: Engine, settings: Settings) -> list[Finding] | None:
    """The running daemon's view of its devices, or None when it is not running.

    Running: systemd says the unit is active, or (without systemd) its report is fresh and is
    not the one a daemon writes as it stops (both devices offline, no fault to say why).
    """
    from sqlalchemy.orm import Session

    from accessd.door.status import door_states

    try:
        with Session(engine) as session:
            state = next((d for d in door_states(session, site.now)
                          if d.name == settings.door.name), None)
    except Exception:
        return None
    if state is None or state.report is None:
        return None
    report = state.report
    if site.systemd_running and (site.unit_dir / UNIT).exists():
        if _systemctl("is-active", UNIT) != "active":
            return None
    elif not state.reporting or not (report.board_online or report.sensor_online
                                     or report.fault):
        return None
    found = []
    for device, online in (("sensor", report.sensor_online), ("door board",
                                                               report.board_online)):
        what = f"{device} (the running daemon's report)"
        found.append(ok(what, "online") if online else
                     fail(what, f"offline: {report.fault or 'no answer'}",
                          f"check the {device}'s cable and power; `journalctl -u accessd` "
                          "says since when"))
    return found


def check_devices(site: Site, settings: Settings, keys: FileKeyProvider,
                  engine: Engine | None) -> Iterator[Finding]:
    from firmware_bridge.errors import BridgeError

    try:
        sensor, door = site.open_devices(settings, keys)
    except (BridgeError, AccessdError) as exc:
        yield fail("devices", str(exc), "check sensor.driver and door.driver in the config")
        return
    yield from check_sensor(sensor, settings, keys, engine)
    yield from check_door(door, settings)
    if "authenticated" not in door.capabilities:
        yield warn("door wire", f"the door driver {settings.door.driver!r} cannot authenticate "
                   f"its wire: whoever reaches the cable of {settings.door.port} can open the door "
                   "(accepted by `unauthenticated_wire = true`)",
                   "fit the door board (firmware_bridge/firmware/) and run "
                   "`accessd door provision`")


def check_sensor(sensor: Sensor, settings: Settings, keys: FileKeyProvider,
                 engine: Engine | None) -> Iterator[Finding]:
    from firmware_bridge.errors import BridgeError, SensorBadPasswordError

    what = f"sensor on {settings.sensor.port}"
    try:
        sensor.password = keys.sensor_password()
        try:
            sensor.open()
        except SensorBadPasswordError:
            sensor.password = 0
            try:
                sensor.open()
            except SensorBadPasswordError:
                yield fail(what, "it answers to neither this installation's password nor the "
                           "factory one: it was set up by another installation",
                           "fit a new sensor, or restore that installation's keyring")
                return
            sensor.close()
            yield warn(what, "a new sensor on the factory password",
                       "start the daemon: it wipes the sensor and sets this installation's "
                       "password before it decides anything")
            return
        try:
            used, capacity = sensor.template_count(), sensor.capacity()
            occupied = sensor.occupied_slots()
        finally:
            sensor.close()
    except BridgeError as exc:
        yield fail(what, str(exc), "check the sensor's wiring and power, and that the serial "
                   "console is off (README: serial set-up)")
        return
    if used >= FILL_WARNING * capacity:
        yield warn(what, f"{used} of {capacity} slots used",
                   "fit a larger sensor (R307: 1000 slots) before enrolling more people")
    else:
        yield ok(what, f"password ok, {used} of {capacity} slots used")
    if engine is not None:
        wanted = _wanted_slots(engine)
        too_high = sorted(s for s in wanted if s >= capacity)
        missing = sorted(set(wanted) - occupied)
        extra = sorted(occupied - set(wanted))
        if too_high:
            yield fail("sensor library", f"fingers are enrolled at slots up to {too_high[-1]}, "
                       f"beyond the sensor's {capacity}",
                       f"fit a sensor with at least {too_high[-1] + 1} slots")
        elif missing or extra:
            yield warn("sensor library", f"{len(missing)} template(s) missing from the sensor, "
                       f"{len(extra)} on it that the database does not hold",
                       "accessd resync (the daemon also does it at start)")
        else:
            yield ok("sensor library", f"in step with the database ({len(wanted)} templates)")


def check_door(door: DoorBoard, settings: Settings) -> Iterator[Finding]:
    from firmware_bridge.errors import BridgeError, DoorNotProvisionedError

    what = f"door board on {settings.door.port}"
    try:
        door.open()
        try:
            inputs = door.inputs()
        finally:
            door.close()
    except DoorNotProvisionedError as exc:
        yield fail(what, str(exc), "close the board's provisioning jumper and run "
                   "`accessd door provision` with the daemon stopped")
        return
    except BridgeError as exc:
        yield fail(what, str(exc), "check the board's USB cable, that it runs "
                   "firmware_bridge/firmware/, and door.driver and door.baud in the config")
        return
    state = (f"{'locked' if inputs.locked else 'UNLOCKED'}, door "
             f"{'open' if inputs.door_open else 'closed'}")
    if inputs.tamper:
        yield fail(what, f"{state}, the reader's housing is open (tamper)",
                   "close the housing; the daemon raises an alarm and empties the sensor while "
                   "it is open")
    elif not inputs.locked:
        yield fail(what, f"{state} with nobody let in",
                   "check the relay wiring: the strike must be fail-secure (locked unpowered)")
    else:
        yield ok(what, state)


def _wanted_slots(engine: Engine) -> dict[int, int]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from accessd.models import Finger

    with Session(engine) as session:
        return {slot: finger for slot, finger in session.execute(
            select(Finger.sensor_slot, Finger.id))}


def check_library_records(engine: Engine, settings: Settings) -> Iterator[Finding]:
    """What the database records as on this door's sensor against what it should hold (the
    daemon's reconciliation keeps them equal; a difference that lasts means it cannot)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from accessd.door.doors import door_named
    from accessd.models import SensorSlot

    try:
        with Session(engine) as session:
            door_id = door_named(session, settings.door.name).id
            recorded = {slot: finger for slot, finger in session.execute(
                select(SensorSlot.slot, SensorSlot.finger_id).where(
                    SensorSlot.door_id == door_id))}
    except AccessdError:
        yield warn("reconciliation", f"door {settings.door.name!r} has never run",
                   "start the daemon (sudo systemctl start accessd)")
        return
    wanted = _wanted_slots(engine)
    behind = sum(1 for slot, finger in wanted.items() if recorded.get(slot) != finger)
    stale = sum(1 for slot in recorded if slot not in wanted)
    if behind or stale:
        yield warn("reconciliation", f"{behind} template(s) not yet on this door's sensor, "
                   f"{stale} still there that left the database",
                   "accessd resync; if it stays, `accessd status` and the daemon's log say why")
    else:
        yield ok("reconciliation", f"{len(wanted)} template(s) recorded on the sensor")


# --- the service -----------------------------------------------------------------------------


def check_units(site: Site) -> Iterator[Finding]:
    if not site.systemd_running:
        yield Finding("skip", "units", "not under systemd (no /run/systemd/system): nothing "
                      "restarts the daemon if it stops")
        return
    for unit in (UNIT, PANEL_UNIT):
        if not (site.unit_dir / unit).exists():
            if unit == UNIT:
                yield fail(unit, "not installed", "sudo deploy/install")
            continue
        state = _systemctl("is-active", unit)
        enabled = _systemctl("is-enabled", unit)
        if state != "active":
            yield fail(unit, f"{state}, {enabled}", f"sudo systemctl enable --now {unit}; "
                       f"journalctl -u {unit} -e says why it stopped")
        elif enabled != "enabled":
            yield warn(unit, f"active but {enabled}: it will not start at boot",
                       f"sudo systemctl enable {unit}")
        else:
            yield ok(unit, "active, enabled")


def _systemctl(verb: str, unit: str) -> str:
    result = subprocess.run(["systemctl", verb, unit], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() or f"unknown ({result.returncode})"


# --- helpers -------------------------------------------------------------------------------


def _guarded(what: str, check: Callable[[], str], fix: str) -> Iterator[Finding]:
    try:
        yield ok(what, check())
    except (AccessdError, OSError) as exc:
        yield fail(what, str(exc), fix)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]
