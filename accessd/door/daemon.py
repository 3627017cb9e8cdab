"""``accessd run``: the door's daemon, the imperative shell around ``DoorLogic``.

Three threads, each owning one thing: the sensor thread owns the sensor (pyfingerprint is not
thread-safe) and runs every job that needs it (enrol, reconcile, wipe); the door thread owns
the door board's events and heartbeats; the main thread polls the command table and writes the
door's status. The hot path (finger -> search -> decision -> event -> relay) runs on the sensor
thread with nothing in between: one indexed lookup, one committed insert, one serial command.

Fail-secure throughout: a fault closes the device and reconnects with backoff while the board
relocks on its own; an event that cannot be recorded keeps the door shut; a database that fails
its integrity check stops the daemon before it decides anything.
"""

from __future__ import annotations

import collections
import datetime as dt
import gc
import logging
import threading
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.db import check_integrity, checkpoint_wal
from accessd.door import command_table
from accessd.door.directory import SqlDirectory
from accessd.door.logic import (
    Action,
    DoorLogic,
    DoorRules,
    Pulse,
    RaiseAlarm,
    Record,
    WipeSensor,
)
from accessd.errors import AccessdError, DaemonRefusedError, EnrollmentError
from accessd.fingers.enrolment import EnrollmentPlan, enrol
from accessd.fingers.library import forget_library, reconcile_sensor
from accessd.history.chain import record_event
from accessd.models import (
    Alarm,
    AlarmKind,
    CommandKind,
    Customer,
    DeviceCommand,
    Door,
    DoorStatus,
    EventKind,
    FingerLabel,
    Person,
)
from firmware_bridge.door import DoorBoard
from firmware_bridge.errors import (
    DoorError,
    NoFingerError,
    PoorImageError,
    SensorBadPasswordError,
    SensorError,
)
from firmware_bridge.sensor import Sensor

log = logging.getLogger("accessd.door.daemon")

FACTORY_PASSWORD = 0
LIFT_TIMEOUT = 10.0
STATUS_INTERVAL = 1.0
COMMAND_POLL = 0.25
CHECKPOINT_INTERVAL = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0




@dataclass
class _Device:
    """Connection state of one device: fault text, and when to try again."""

    name: str
    connected: bool = False
    fault: str | None = None
    retry_at: float = 0.0
    backoff: float = BACKOFF_FIRST

    def failed(self, now: float, message: str) -> bool:
        """Note a fault; true when it is a new one (worth an event)."""
        new = self.fault is None
        self.connected = False
        self.fault = message
        self.retry_at = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        return new

    def recovered(self) -> bool:
        had_fault = self.fault is not None
        self.connected, self.fault, self.backoff = True, None, BACKOFF_FIRST
        return had_fault


@dataclass
class _Job:
    """Work for the sensor thread, with the command it answers (if any)."""

    kind: str  # "wipe", "reconcile", "enroll"
    command_id: int | None = None
    args: dict[str, Any] = field(default_factory=dict)


class Daemon:
    """One door: its sensor, its door board, its rules.

    :param clock: monotonic seconds (timers, backoff); tests may pass their own.
    :param wall: aware UTC datetimes (events, contract dates).
    """

    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
                 provider: KeyProvider, sensor: Sensor, door: DoorBoard, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.provider = provider
        self.sensor = sensor
        self.door = door
        self.clock = clock
        self.wall = wall
        self.tz = zoneinfo.ZoneInfo(settings.access.timezone)
        self.door_id = 0
        self.stop_event = threading.Event()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._logic_lock = threading.Lock()
        self._door_lock = threading.Lock()
        self._sensor_dev = _Device("sensor")
        self._door_dev = _Device("door board")
        self._threads: list[threading.Thread] = []
        self.logic: DoorLogic | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def preflight(self) -> None:
        """Checks before the first decision.

        :raises DaemonRefusedError: the database fails its integrity check.
        """
        report = check_integrity(self.engine)
        if not report.ok:
            raise DaemonRefusedError(
                "the database failed its integrity check (" + "; ".join(report.problems[:3])
                + "); the door stays locked. Restore the latest backup with `accessd restore`")
        a = self.settings.access
        with self.sessions.begin() as session:
            door = session.scalars(select(Door).where(Door.name == self.settings.door.name)).first()
            if door is None:
                door = Door(name=self.settings.door.name)
                session.add(door)
                session.flush()
            self.door_id = door.id
            tamper = session.scalars(select(Alarm).where(
                Alarm.door_id == door.id, Alarm.kind == AlarmKind.TAMPER,
                Alarm.cleared_at.is_(None))).first() is not None
        command_table.fail_abandoned(self.sessions, self.door_id)
        directory = SqlDirectory(self.sessions, pin_max_failures=a.pin_max_failures,
                                 pin_lockout=dt.timedelta(seconds=a.pin_lockout_seconds),
                                 clock=self.wall)
        rules = DoorRules(release_seconds=a.release_seconds,
                          held_open_alarm_seconds=a.held_open_alarm_seconds,
                          max_failures=a.max_failures,
                          failure_window_seconds=a.failure_window_seconds,
                          backoff_seconds=a.backoff_seconds,
                          keypad_timeout_seconds=a.keypad_timeout_seconds)
        self.logic = DoorLogic(self.door_id, rules, directory, today=self._today, tamper=tamper)
        # Everything loaded so far (modules, SQLAlchemy's metadata) lives as long as the
        # process: freezing it keeps the garbage collector's full passes, which walk every
        # tracked object, from pausing a door decision for several milliseconds.
        gc.collect()
        gc.freeze()
        # Fewer, larger young collections: the daemon makes little garbage per decision, and
        # each collection is a pause in whichever thread triggers it.
        gc.set_threshold(20_000, 20, 20)

    def start(self) -> None:
        """Preflight, then the sensor and door threads (returns at once)."""
        self.preflight()
        self._jobs.append(_Job("reconcile"))
        for target, name in ((self._sensor_loop, "sensor"), (self._door_loop, "door")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self) -> None:
        """Run until ``stop()``: the main thread polls commands and writes status."""
        self.start()
        next_status = next_checkpoint = 0.0
        try:
            while not self.stop_event.is_set():
                self._poll_commands()
                now = self.clock()
                if now >= next_status:
                    self._write_status()
                    next_status = now + STATUS_INTERVAL
                if now >= next_checkpoint:
                    self._checkpoint()
                    next_checkpoint = now + CHECKPOINT_INTERVAL
                self.stop_event.wait(COMMAND_POLL)
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._door_lock:
            try:
                self.door.lock()
            except DoorError:
                pass  # unreachable board: it relocks by itself without heartbeats
            self.door.close()
        self.sensor.close()
        self._write_status(online=False)

    def _today(self) -> dt.date:
        return self.wall().astimezone(self.tz).date()

    # --- the sensor thread ------------------------------------------------------------------

    def _sensor_loop(self) -> None:
        while not self.stop_event.is_set():
            now = self.clock()
            if not self._sensor_dev.connected:
                if now < self._sensor_dev.retry_at:
                    self.stop_event.wait(min(0.1, self._sensor_dev.retry_at - now))
                    continue
                self._guard_sensor(self._connect_sensor)
                continue
            if self._jobs:
                self._guard_sensor(lambda: self._run_job(self._jobs.popleft()))
                continue
            self._guard_sensor(self._identify_once)

    def _identify_once(self) -> None:
        logic = self._logic()
        if logic.tamper or not logic.accepting(self.clock()):
            self.stop_event.wait(0.1)
            return
        if not self.sensor.finger_present():
            self.stop_event.wait(self.settings.sensor.poll_interval_seconds)
            return
        try:
            self.sensor.capture(1)
        except PoorImageError:
            self._wait_lift()
            return
        result = self.sensor.search()
        with self._logic_lock:
            actions = logic.finger(result.slot, self.clock())
        self._execute(actions)
        self._wait_lift()

    def _wait_lift(self) -> None:
        # One placement, one attempt. A finger left on the glass past LIFT_TIMEOUT is searched
        # again: harmless, and recorded.
        deadline = self.clock() + LIFT_TIMEOUT
        while (not self.stop_event.is_set() and self.clock() < deadline
               and self.sensor.finger_present()):
            self.stop_event.wait(self.settings.sensor.poll_interval_seconds)

    def _connect_sensor(self) -> None:
        own = self.provider.sensor_password()
        try:
            self._open_sensor(own)
        except SensorBadPasswordError:
            # A sensor still on the factory password is new (or was reset): it must not keep
            # whatever it holds, and must never stay on a password anyone can look up.
            self._open_sensor(FACTORY_PASSWORD)
            self.sensor.wipe()
            self.sensor.set_password(own)
            forget_library(self.sessions, self.door_id)
            self._record(Record(EventKind.SENSOR_INSTALLED,
                                reason="new sensor: library wiped, installation password set"))
        if self._sensor_dev.recovered():
            self._record(Record(EventKind.RECOVERED, reason="sensor answers again"))
        self._jobs.appendleft(_Job("reconcile"))

    def _open_sensor(self, password: int) -> None:
        self.sensor.password = password
        self.sensor.open()

    def _guard_sensor(self, work: Callable[[], None]) -> None:
        try:
            work()
        except SensorError as exc:
            self.sensor.close()
            if self._sensor_dev.failed(self.clock(), str(exc)):
                log.warning("sensor fault: %s", exc)
                self._record(Record(EventKind.FAULT, reason=f"sensor: {exc}"[:200]))
        except AccessdError as exc:
            log.error("sensor job failed: %s", exc)
        except Exception:
            # A bug must not end the door's only sensor thread: log it, pause, carry on.
            log.exception("unexpected error on the sensor thread")
            self.sensor.close()
            self._sensor_dev.failed(self.clock(), "internal error (see the log)")

    def _run_job(self, job: _Job) -> None:
        if job.kind == "wipe":
            self.sensor.wipe()
            forget_library(self.sessions, self.door_id)
            return
        if job.kind == "reconcile":
            if self._logic().tamper:
                return  # the library stays empty until staff clear the tamper alarm
            report = reconcile_sensor(self.sensor, self.sessions, self.provider, self.door_id)
            if job.command_id is not None:
                command_table.finish(self.sessions, job.command_id, ok=True,
                                message=f"sensor in step: {report.uploaded} uploaded, "
                                        f"{report.deleted} wiped, {report.kept} kept",
                                result=report.__dict__)
            return
        if job.kind == "enroll":
            self._enrol(job)

    def _enrol(self, job: _Job) -> None:
        assert job.command_id is not None
        command_id = job.command_id
        try:
            plan = EnrollmentPlan(
                person_id=int(job.args["person_id"]), label=FingerLabel(job.args["finger"]),
                captures=int(job.args.get("captures", self.settings.enrollment.captures)),
                finger_timeout=float(job.args.get(
                    "timeout", self.settings.enrollment.capture_timeout_seconds)),
                enrolled_by=str(job.args.get("by") or ""))
        except (KeyError, ValueError) as exc:
            command_table.finish(self.sessions, command_id, ok=False,
                            message=f"bad enrolment request: {exc}")
            return
        try:
            finger = enrol(self.sensor, self.sessions, self.provider, self.door_id, plan,
                           lambda text: command_table.report(self.sessions, command_id, text),
                           max_fingers=self.settings.access.max_fingers_per_person,
                           today=self._today)
        except (EnrollmentError, SensorError) as exc:
            command_table.finish(self.sessions, command_id, ok=False, message=str(exc))
            if isinstance(exc, SensorError) and not isinstance(exc, PoorImageError | NoFingerError):
                raise  # a real fault: the sensor thread reconnects
            return
        command_table.finish(self.sessions, command_id, ok=True,
                        message=f"enrolled at slot {finger.sensor_slot}",
                        result={"slot": finger.sensor_slot, "finger_id": finger.id})
        # Other doors' sensors need the new template too.
        with self.sessions.begin() as session:
            for other in session.scalars(select(Door.id).where(Door.id != self.door_id)):
                command_table.request(session, other, CommandKind.RESYNC, created_by="accessd",
                                 why="new finger enrolled")

    # --- the door thread --------------------------------------------------------------------

    def _door_loop(self) -> None:
        heartbeat_every = max(0.2, self.settings.door.heartbeat_timeout / 3)
        next_beat = 0.0
        while not self.stop_event.is_set():
            now = self.clock()
            try:
                if not self._door_dev.connected:
                    if now < self._door_dev.retry_at:
                        self.stop_event.wait(min(0.1, self._door_dev.retry_at - now))
                        continue
                    with self._door_lock:
                        self.door.open()
                    if self._door_dev.recovered():
                        self._record(Record(EventKind.RECOVERED, reason="door board answers"))
                    next_beat = 0.0
                if now >= next_beat:
                    with self._door_lock:
                        self.door.heartbeat()
                    next_beat = now + heartbeat_every
                event = self.door.next_event(0.05)
                with self._logic_lock:
                    actions = self._logic().board(event, self.clock()) if event else []
                    actions += self._logic().tick(self.clock())
                self._execute(actions)
            except DoorError as exc:
                with self._door_lock:
                    self.door.close()
                if self._door_dev.failed(self.clock(), str(exc)):
                    log.warning("door board fault: %s", exc)
                    self._record(Record(EventKind.FAULT, reason=f"door board: {exc}"[:200]))

    # --- carrying out actions ---------------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        """Records first (committed), then the relay: no opening without its event."""
        recorded = True
        for action in actions:
            if isinstance(action, Record):
                recorded = self._record(action) and recorded
            elif isinstance(action, RaiseAlarm):
                self._raise_alarm(action)
            elif isinstance(action, WipeSensor):
                self._jobs.appendleft(_Job("wipe"))
            elif isinstance(action, Pulse):
                if not recorded:
                    log.error("event not recorded: the door stays locked")
                    continue
                self._pulse(action.seconds)

    def _pulse(self, seconds: float) -> None:
        try:
            with self._door_lock:
                self.door.pulse(seconds)
        except DoorError as exc:
            log.error("relay pulse failed, the door stays locked: %s", exc)
            if self._door_dev.failed(self.clock(), str(exc)):
                self._record(Record(EventKind.FAULT, reason=f"door board: {exc}"[:200]))

    def _record(self, record: Record) -> bool:
        try:
            with self.engine.begin() as conn:
                customer_uuid, person_uuid = record.customer_public_id, record.person_public_id
                if record.customer_id is not None and customer_uuid is None:
                    customer_uuid = conn.execute(select(Customer.public_id).where(
                        Customer.id == record.customer_id)).scalar_one()
                if record.person_id is not None and person_uuid is None:
                    person_uuid = conn.execute(select(Person.public_id).where(
                        Person.id == record.person_id)).scalar_one()
                record_event(conn, kind=record.kind, customer_id=record.customer_id,
                             customer_public_id=customer_uuid, person_id=record.person_id,
                             person_public_id=person_uuid, door_id=self.door_id or None,
                             method=record.method, reason=record.reason, at=self.wall())
        except Exception:  # any database failure: log it; the caller keeps the door shut
            log.exception("could not record %s", record.kind)
            return False
        return True

    def _raise_alarm(self, alarm: RaiseAlarm) -> None:
        with self.sessions.begin() as session:
            open_alarm = session.scalars(select(Alarm).where(
                Alarm.door_id == self.door_id, Alarm.kind == alarm.kind,
                Alarm.cleared_at.is_(None))).first()
            if open_alarm is None:
                session.add(Alarm(door_id=self.door_id, kind=alarm.kind, detail=alarm.detail,
                                  raised_at=self.wall()))
        log.warning("alarm %s: %s", alarm.kind, alarm.detail)

    # --- commands and status ----------------------------------------------------------------

    def _poll_commands(self) -> None:
        command = command_table.claim_next(self.sessions, self.door_id)
        if command is None:
            return
        kind = command.kind
        if kind is CommandKind.ENROLL:
            self._jobs.append(_Job("enroll", command.id, {**command.args,
                                                          "person_id": command.person_id}))
        elif kind is CommandKind.RESYNC:
            self._jobs.append(_Job("reconcile", command.id))
        elif kind in (CommandKind.TEST_RELAY, CommandKind.REMOTE_UNLOCK):
            self._remote_unlock(command)
        elif kind is CommandKind.CLEAR_ALARM:
            self._clear_alarms(command)

    def _remote_unlock(self, command: DeviceCommand) -> None:
        reason = str(command.args.get("reason") or command.kind.value)
        with self._logic_lock:
            actions = self._logic().remote_unlock(self.clock(),
                                                  f"{reason} (by {command.created_by})"[:200])
        self._execute(actions)
        command_table.finish(self.sessions, command.id, ok=True, message="door released")

    def _clear_alarms(self, command: DeviceCommand) -> None:
        with self.sessions.begin() as session:
            cleared = session.execute(
                update(Alarm).where(Alarm.door_id == self.door_id, Alarm.cleared_at.is_(None))
                .values(cleared_at=self.wall(), cleared_by=command.created_by))
            count = int(getattr(cleared, "rowcount", 0) or 0)
        with self._logic_lock:
            refill = self._logic().tamper
            self._logic().tamper_cleared()
        self._record(Record(EventKind.ALARM_CLEARED, reason=f"by {command.created_by}"))
        if refill:
            self._jobs.append(_Job("reconcile"))
        command_table.finish(self.sessions, command.id, ok=True,
                        message=f"{count} alarm(s) cleared" + ("; refilling the sensor"
                                                                if refill else ""))

    def _checkpoint(self) -> None:
        """Move the WAL into the database here, on the idle main thread, not inside a door
        event's commit (the daemon's engine has SQLite's auto-checkpoint off)."""
        if self.engine.dialect.name != "sqlite":
            return
        try:
            checkpoint_wal(self.engine, passive=True)
        except AccessdError as exc:
            log.warning("WAL checkpoint failed: %s", exc)

    def _write_status(self, *, online: bool | None = None) -> None:
        if not self.door_id:
            return
        logic = self.logic
        locked = logic is None or logic.unlocked_until <= self.clock()
        fault = self._sensor_dev.fault or self._door_dev.fault
        try:
            with self.sessions.begin() as session:
                status = session.get(DoorStatus, self.door_id)
                if status is None:
                    status = DoorStatus(door_id=self.door_id)
                    session.add(status)
                status.online = self._door_dev.connected if online is None else online
                status.sensor_online = self._sensor_dev.connected and online is not False
                status.locked = locked
                status.door_open = None if logic is None else logic.door_open_since is not None
                status.fault = fault[:500] if fault else None
                status.heartbeat_at = self.wall()
        except Exception:  # status is advisory; never let it stop the door
            log.exception("could not write the door status")

    def _logic(self) -> DoorLogic:
        if self.logic is None:
            raise DaemonRefusedError("the daemon ran before its preflight")
        return self.logic
