"""The door's subcommands: init, run, migrate, enroll, status, verify-log, keys, alarm, resync,
door, sensor, doctor. (``accessd web`` is the panel's own: ``web.cli``.)"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import func, select

from accessd.errors import AccessdError

if TYPE_CHECKING:
    from accessd.cli.main import Context
    from accessd.clock import SiteClock
    from accessd.config import Settings
    from accessd.crypto import KeyProvider
    from accessd.door.daemon import Daemon
    from accessd.door.status import DoorState
    from accessd.door.supervision import Supervisor
    from accessd.metrics import MetricsServer
    from firmware_bridge.door import DoorBoard
    from firmware_bridge.sensor import Sensor


def _actor(args: argparse.Namespace) -> str:
    return str(getattr(args, "by", None) or f"cli:{getpass.getuser()}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help="create the data directory, config, keyring and database")
    p.add_argument("--data-dir", type=Path, required=True)
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("run", help="run the door daemon (sensor, door board, commands)")
    p.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="default: [log] level in the config")
    p.set_defaults(handler=cmd_run, configures_logging=True)

    p = sub.add_parser("enroll", help="enrol a person's finger at a door's reader")
    p.add_argument("person", help="person id or public id")
    p.add_argument("--finger", required=True, help="e.g. right_index, left_thumb")
    p.add_argument("--door", help="door name (default: this installation's door)")
    p.add_argument("--captures", type=int, choices=(2, 3))
    p.add_argument("--by", help="staff member at the reader (default: your login)")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for the daemon")
    p.add_argument("--no-wait", action="store_true", help="queue it and return")
    p.set_defaults(handler=cmd_enroll)

    p = sub.add_parser("status", help="doors, devices, alarms and pending commands")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("verify-log", help="check every access history hash chain")
    p.set_defaults(handler=cmd_verify_log)

    keys = sub.add_parser("keys", help="master keys").add_subparsers(dest="keys_cmd",
                                                                      required=True)
    p = keys.add_parser("rotate", help="rewrap every data key under a new master key")
    p.set_defaults(handler=cmd_keys_rotate)

    alarm = sub.add_parser("alarm", help="alarms").add_subparsers(dest="alarm_cmd", required=True)
    p = alarm.add_parser("clear", help="clear a door's alarms (refills a tampered sensor)")
    p.add_argument("--door")
    p.add_argument("--by")
    p.set_defaults(handler=cmd_alarm_clear)

    p = sub.add_parser("resync", help="bring a door's sensor back to the database's truth")
    p.add_argument("--door")
    p.set_defaults(handler=cmd_resync)

    door = sub.add_parser("door", help="the lock").add_subparsers(dest="door_cmd", required=True)
    p = door.add_parser("unlock", help="release the door once (an escorted visitor)")
    p.add_argument("--reason", required=True,
                   help="who is let in and why (kept in the access history with your name)")
    p.add_argument("--door")
    p.add_argument("--by")
    p.add_argument("--no-wait", action="store_true", help="queue it and return")
    p.set_defaults(handler=cmd_door_unlock)
    p = door.add_parser("provision", help="give the door board a new key for its wire (once, "
                        "at installation, with the daemon stopped)")
    p.set_defaults(handler=cmd_door_provision)

    sensor = sub.add_parser("sensor", help="the fingerprint sensor").add_subparsers(
        dest="sensor_cmd", required=True)
    p = sensor.add_parser("approve", help="approve a replaced sensor the door refused (check "
                          "the reader first: it sits outside the door)")
    p.add_argument("--door")
    p.add_argument("--by", help="staff member approving it (default: your login)")
    p.set_defaults(handler=cmd_sensor_approve)

    p = sub.add_parser("migrate", help="bring the database's schema up to date (the service "
                                       "runs it before the daemon starts deciding)")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("doctor", help="check config, keys, database and both devices")
    p.set_defaults(handler=cmd_doctor)


# --- init and run ---------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.config import load_settings, write_default_config
    from accessd.crypto import FileKeyProvider
    from accessd.db import create_db_engine, upgrade

    data_dir: Path = args.data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    config = Path(ctx.config_path) if ctx.config_path else data_dir / "accessd.toml"
    write_default_config(config, data_dir)
    settings = load_settings(config)
    keyring = settings.keys.master_key_file
    assert keyring is not None
    if keyring.exists():
        print(f"keyring {keyring} exists: kept")
    else:
        FileKeyProvider.create(keyring)
    secret = settings.web.secret_key_file
    if not secret.exists():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    engine = create_db_engine(settings.database.url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print(f"created {config}\n  data directory {data_dir}\n  keyring {keyring} (mode 0600: "
          f"keep a copy offline; without it no template can be read)\n"
          f"next: edit the [sensor] and [door] ports, then `accessd --config {config} run`")
    return 0


def cmd_migrate(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.db import current_revision, upgrade

    before = current_revision(ctx.engine)
    upgrade(ctx.engine)
    after = current_revision(ctx.engine)
    if before == after:
        print(f"database schema {after}: up to date")
    else:
        print(f"database schema {before or 'empty'} -> {after}")
    return 0


def build_daemon(settings: Settings, ctx: Context, supervisor: Supervisor | None = None
                 ) -> Daemon:
    """The daemon on the configured drivers.

    :raises AccessdError: the door driver cannot authenticate its wire and the site did not
        accept that in its config.
    """
    from accessd.door.daemon import Daemon

    sensor, door = make_devices(settings, ctx.keys)
    return Daemon(settings, ctx.engine, ctx.sessions, ctx.keys, sensor, door,
                  supervisor=supervisor)


def make_devices(settings: Settings, keys: KeyProvider) -> tuple[Sensor, DoorBoard]:
    """The configured sensor and door drivers, built, not opened (the daemon and doctor).

    :raises AccessdError: the door driver cannot authenticate its wire and the site did not
        accept that in its config.
    """
    from firmware_bridge.registry import make_door, make_sensor

    sensor = make_sensor(settings.sensor.driver, settings.sensor.port, baud=settings.sensor.baud,
                         timeout=settings.sensor.timeout_seconds)
    door_options: dict[str, object] = {"baud": settings.door.baud}
    if settings.door.driver == "doorboard":
        door_options["heartbeat_timeout"] = settings.door.heartbeat_timeout
        door_options["link_key"] = keys.door_link_key()
    door = make_door(settings.door.driver, settings.door.port, **door_options)
    if "authenticated" not in door.capabilities:
        if not settings.door.unauthenticated_wire:
            raise AccessdError(unauthenticated_wire_text(settings) + "; use the door board, or "
                               "accept the risk with `unauthenticated_wire = true` in [door]")
        logging.getLogger("accessd").warning("%s (accepted in the config)",
                                             unauthenticated_wire_text(settings))
    return sensor, door


def unauthenticated_wire_text(settings: Settings) -> str:
    return (f"the door driver {settings.door.driver!r} cannot authenticate its wire: whoever "
            f"reaches the cable of {settings.door.port} can open the door with a well-formed "
            "command")


def cmd_door_provision(args: argparse.Namespace, ctx: Context) -> int:
    """A new random key: first into the board (which proves it stored it), then the keyring.
    Never the key already in the keyring: a replaced board may have left with it."""
    from accessd.crypto import FileKeyProvider
    from firmware_bridge.doorboard import provision_board
    from firmware_bridge.errors import BridgeError

    settings = ctx.settings
    if settings.door.driver != "doorboard":
        raise AccessdError(f"the door driver {settings.door.driver!r} has no key to provision: "
                           "only the door board authenticates its wire")
    keys = ctx.keys
    if not isinstance(keys, FileKeyProvider) or keys.read_only:
        raise AccessdError("the keyring is read-only here (a systemd credential); provision "
                           "with `--config` naming a config whose keyring is the source file, "
                           "then install the new credential")
    key = secrets.token_bytes(32)
    try:
        provision_board(settings.door.port, key, baud=settings.door.baud)
    except BridgeError as exc:
        raise AccessdError(f"{exc}; the keyring is unchanged") from exc
    try:
        keys.set_door_link_key(key)
    except AccessdError as exc:
        raise AccessdError(
            f"the door board took its new key, but the keyring could not be written ({exc}); "
            "fix that, close the board's provisioning jumper and run this again") from exc
    print(f"door board on {settings.door.port}: provisioned; its wire key is in the keyring "
          f"{keys.path}. Remove the provisioning jumper if you closed it, then start the daemon")
    return 0


# The daemon's allocator: glibc overwrites every freed block (MALLOC_PERTURB_; its per-thread
# cache would keep small blocks as they were, so it is off) and Python frees through glibc
# (PYTHONMALLOC=malloc, not its own arenas), so that a purged person's name or template
# ciphertext does not linger in freed memory after the daemon let go of it.
SCRUBBING_ALLOCATOR = {"PYTHONMALLOC": "malloc", "MALLOC_PERTURB_": "165",
                       "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}


def _with_scrubbing_allocator(ctx: Context) -> None:
    """Start `accessd run` again (same process id) with the allocator above, once. Both settings
    are read when a process starts, so the environment must carry them before Python runs;
    the systemd unit sets them too."""
    if not ctx.own_process or all(os.environ.get(k) == v for k, v in SCRUBBING_ALLOCATOR.items()):
        return
    env = {**os.environ, **SCRUBBING_ALLOCATOR}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "accessd.cli", *sys.argv[1:]], env)  # noqa: S606 - our own interpreter and arguments


def cmd_run(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.cli.main import log_settings
    from accessd.door.supervision import Heartbeats, Supervisor
    from accessd.logs import configure_logging

    _with_scrubbing_allocator(ctx)
    configure_logging(*log_settings(args, ctx, args.log_level))
    # Under systemd (Type=notify): READY=1 once every loop turned, WATCHDOG=1 while they do.
    supervisor = Supervisor.from_environ(Heartbeats())
    try:
        return _run_daemon(args, ctx, supervisor)
    except AccessdError as exc:
        if supervisor is not None:
            supervisor.status(f"refused to start: {exc}")
        raise
    finally:
        if supervisor is not None:
            supervisor.close()


def _run_daemon(args: argparse.Namespace, ctx: Context, supervisor: Supervisor | None) -> int:
    from firmware_bridge.errors import BridgeError

    if supervisor is not None:
        supervisor.status("starting: checking the keyring and the database")
    settings = ctx.settings
    ctx.autocheckpoint = False
    ctx.keys  # noqa: B018 - a missing or unsafe keyring stops us here, before any device
    try:
        daemon = build_daemon(settings, ctx, supervisor)
    except BridgeError as exc:
        raise AccessdError(str(exc)) from exc

    def on_signal(signum: int, frame: FrameType | None) -> None:
        daemon.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics = _serve_metrics(settings, daemon)  # a bad [metrics] bind stops us here
    logging.getLogger("accessd").info("door %r: sensor %s, door %s", settings.door.name,
                                      settings.sensor.port, settings.door.port)
    schedulers: list[_Stoppable] = []

    def start_scheduler() -> None:
        scheduler = _privacy_scheduler(settings, ctx, daemon)
        _scheduler_metrics(daemon, scheduler)
        if scheduler is not None:
            schedulers.append(scheduler)

    try:
        daemon.run(after_start=start_scheduler)
    finally:
        if metrics is not None:
            metrics.close()
        for scheduler in schedulers:
            scheduler.stop()
    return 0


def _serve_metrics(settings: Settings, daemon: Daemon) -> MetricsServer | None:
    """The daemon's /metrics, with what only this process knows: the newest backup's age.

    :raises ConfigError: a ``[metrics] daemon_bind`` that is not host:port.
    """
    if not settings.metrics.enabled:
        return None
    from accessd.backup.housekeeping import newest_backup_age
    from accessd.metrics import serve

    daemon.metrics.gauge("accessd_backup_age_seconds",
                         "Seconds since the newest backup was written (none: no backup)",
                         lambda: newest_backup_age(settings, dt.datetime.now(dt.UTC)))
    return serve(daemon.metrics.registry, settings.metrics.daemon_bind)


def _scheduler_metrics(daemon: Daemon, scheduler: object) -> None:
    """The privacy scheduler's job runs and last successes, read at each scrape."""
    from accessd.door.metrics import JobRuns, SchedulerCollector

    stats = getattr(scheduler, "job_stats", None)
    if stats is not None:
        daemon.metrics.add(SchedulerCollector(lambda: {
            job: JobRuns(s.succeeded, s.failed,
                         s.last_success.timestamp() if s.last_success else None)
            for job, s in list(stats.items())}))


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def _privacy_scheduler(settings: Settings, ctx: Context, daemon: Daemon) -> _Stoppable | None:
    """Purges and retention run inside the daemon, so a purge due while the Pi was off runs
    at the next start (see ``accessd.privacy.scheduler``)."""
    try:
        from accessd.privacy.scheduler import PrivacyScheduler
    except ModuleNotFoundError:
        return None
    scheduler = PrivacyScheduler(settings, ctx.sessions, ctx.keys, ctx.engine)
    scheduler.start()
    return scheduler


# --- commands through the daemon -------------------------------------------------------------


def _door_id(ctx: Context, name: str | None) -> int:
    from accessd.door.doors import door_named

    with ctx.sessions() as session:
        return door_named(session, name or ctx.settings.door.name).id


def _queue_and_follow(ctx: Context, args: argparse.Namespace, door: str | None, kind: str,
                      *, person_id: int | None = None, timeout: float = 60,
                      counting: tuple[str, str] | None = None,
                      fields: dict[str, object] | None = None) -> int:
    from accessd.door import command_table
    from accessd.models import CommandKind

    door_id = _door_id(ctx, door)
    with ctx.sessions.begin() as session:
        command = command_table.request(session, door_id, CommandKind(kind),
                                        created_by=_actor(args), person_id=person_id,
                                        **(fields or {}))
        command_id = command.id
    return _follow(ctx, args, command_id, timeout=timeout, counting=counting)


def _follow(ctx: Context, args: argparse.Namespace, command_id: int, *, timeout: float,
            counting: tuple[str, str] | None = None) -> int:
    """Wait for a command, printing its messages; ``counting`` (what, unit): long work
    whose counts the daemon reports, shown as a bar on a terminal, as lines elsewhere."""
    from accessd.cli.progress_bar import progress_for
    from accessd.door import command_table
    from accessd.models import CommandState

    if getattr(args, "no_wait", False):
        print(f"queued command {command_id}")
        return 0
    with contextlib.ExitStack() as stack:
        on_count = (stack.enter_context(progress_for(*counting)) if counting else None)
        done = command_table.wait(ctx.sessions, command_id, timeout=timeout,
                                  on_progress=lambda text: print(f"  {text}", flush=True),
                                  on_count=on_count)
    if done.state is CommandState.FAILED:
        raise AccessdError(done.progress or "the daemon reported a failure")
    if counting and done.progress:
        print(done.progress)
    return 0


def cmd_enroll(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.customers.people import get_person
    from accessd.fingers.enrolment import check_door_may_enrol, check_may_enrol
    from accessd.models import FingerLabel

    try:
        label = FingerLabel(args.finger)
    except ValueError:
        raise AccessdError(f"unknown finger {args.finger!r}; use one of: "
                           + ", ".join(f.value for f in FingerLabel)) from None
    with ctx.sessions() as session:
        person = get_person(session, args.person)
        check_may_enrol(session, person, label, ctx.settings.access.max_fingers_per_person,
                        today=ctx.clock.today())
        person_id, name = person.id, person.name
    with ctx.sessions() as session:
        check_door_may_enrol(session, _door_id(ctx, args.door))
    print(f"enrolling {name}'s {label.value.replace('_', ' ')}: follow the steps at the reader")
    fields: dict[str, object] = {"finger": label.value, "by": _actor(args)}
    if args.captures:
        fields["captures"] = args.captures
    return _queue_and_follow(ctx, args, args.door, "enroll", person_id=person_id,
                             timeout=args.timeout, fields=fields)


def cmd_alarm_clear(args: argparse.Namespace, ctx: Context) -> int:
    return _queue_and_follow(ctx, args, args.door, "clear_alarm")


def cmd_resync(args: argparse.Namespace, ctx: Context) -> int:
    return _queue_and_follow(ctx, args, args.door, "resync", timeout=600,
                             counting=("resync", "templates"))


def cmd_door_unlock(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.door.doors import door_named
    from accessd.door.remote_unlock import request_unlock

    with ctx.sessions.begin() as session:
        door = door_named(session, args.door or ctx.settings.door.name)
        command_id = request_unlock(session, door.id, args.reason, actor=_actor(args)).id
    return _follow(ctx, args, command_id, timeout=60)


def cmd_sensor_approve(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.door.doors import door_named
    from accessd.door.sensor_identity import approve_sensor

    with ctx.sessions.begin() as session:
        door = door_named(session, args.door or ctx.settings.door.name)
        name = door.name
        identity = approve_sensor(session, door.id, by=_actor(args), at=dt.datetime.now(dt.UTC))
    print(f"door {name}: sensor approved ({identity}); its daemon takes it into use and "
          "refills it within a second")
    return 0


# --- reading -------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    from sqlalchemy.orm import Session

    from accessd.clock import SiteClock
    from accessd.db import read_only_engine
    from accessd.door.alarms import describe_alarm
    from accessd.door.status import overview

    clock = SiteClock.of(ctx.settings)
    now = clock.now()
    # Reading only: a deferred transaction, so that status answers while another process
    # holds the database's write lock (which is when it is needed most).
    with Session(read_only_engine(ctx.engine)) as session:
        site = overview(session, now)
        if not site.doors:
            print("no doors yet: start `accessd run`")
        for door in site.doors:
            print("\n".join(_door_lines(door, clock)))
        for alarm in site.alarms:
            print(f"ALARM {describe_alarm(alarm, clock.label)}")
    print(f"{site.unfinished_commands} command(s) pending, {site.events} events on record; "
          f"times in the site's zone ({ctx.settings.access.timezone})")
    return 0


def _door_lines(door: DoorState, clock: SiteClock) -> list[str]:
    """One door as ``accessd status`` shows it: online or OFFLINE by the same rule as the
    panel and the API, then each device as the dashboard shows it (``accessd.door.devices``),
    and the devices' own words for a technician."""
    from accessd.door.devices import Health, devices

    report = door.report
    if report is None:
        head = f"door {door.name}: OFFLINE, never reported"
    elif not door.reporting:
        head = f"door {door.name}: OFFLINE, daemon not running"
    elif not door.online:
        head = f"door {door.name}: OFFLINE, daemon running; lock and door contact unknown"
    else:
        head = (f"door {door.name}: online, daemon running; "
                f"{'locked' if report.locked else 'UNLOCKED'}, {_contact(report.door_open)}")
    lines = [head]
    for device in devices(door):
        seen = ("never" if device.last_contact is None
                else clock.label(device.last_contact))
        state = device.state if device.health is not Health.DOWN else device.state.upper()
        line = f"  {device.label.lower()}: {state}, last contact {seen}"
        if device.problem:
            line += f". {device.problem}"
        if device.action:
            line += f" What to do: {device.action}"
        lines.append(line)
    if report is not None and report.fault:
        lines.append(f"  detail for a technician: {report.fault}")
    return lines


def _contact(door_open: bool | None) -> str:
    if door_open is None:
        return "no door contact"
    return "door open" if door_open else "door closed"


def cmd_verify_log(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.history.chain import verify_chains
    from accessd.models import AccessEvent, EventChain
    from accessd.privacy.ledger import check_ledger

    with ctx.sessions() as session:
        problems = list(verify_chains(session))
        chains = session.scalar(select(func.count()).select_from(EventChain))
        events = session.scalar(select(func.count()).select_from(AccessEvent))
    ledger = check_ledger(ctx.sessions, ctx.keys)
    for problem in problems:
        print(f"{problem.scope}: {problem.message}")
    for broken in ledger.problems:
        print(f"erasure ledger: {broken}")
    if problems or not ledger.ok:
        print(f"verify-log: {len(problems)} of {chains} chains do not verify; erasure ledger: "
              f"{'ok' if ledger.ok else ledger.describe()}", file=sys.stderr)
        return 1
    print(f"verify-log: ok, {chains} chains and {events} events verified; erasure ledger: "
          f"{ledger.describe()}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.backup.housekeeping import key_resealer
    from accessd.cli.progress_bar import progress_for
    from accessd.crypto import rotate_master_key

    with progress_for("key rotation", "keys") as progress:
        result = rotate_master_key(ctx.keys, ctx.sessions,
                                   before_retire=key_resealer(ctx.settings, ctx.keys),
                                   progress=progress)
    print(result)
    return 0


def cmd_doctor(args: argparse.Namespace, ctx: Context) -> int:
    from accessd.doctor import Site, examine

    now = ctx.wall() if ctx.wall is not None else dt.datetime.now(dt.UTC)
    site = Site(Path(ctx.config_path) if ctx.config_path else None, open_devices=make_devices,
                now=now, environ=dict(os.environ))
    failed = warned = 0
    for finding in examine(site):
        for line in finding.lines():
            print(line, flush=True)
        failed += finding.level == "fail"
        warned += finding.level == "warn"
    print(f"doctor: {failed} failure(s), {warned} warning(s)" if failed or warned
          else "doctor: all well")
    return 1 if failed else 0
