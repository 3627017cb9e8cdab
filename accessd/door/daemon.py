"""``accessd run``: the door's daemon, the imperative shell around ``DoorLogic``.

Three threads, each owning one thing: the sensor thread owns the sensor (pyfingerprint is not
thread-safe) and runs every job that needs it (``accessd.door.jobs``); the door thread owns the
door board's events and heartbeats; the main thread polls the command table and writes the
door's status. Both device threads keep their device connected the same way
(``accessd.door.health``). The hot path (finger -> search -> decision -> event -> relay) runs on
the sensor thread with nothing in between: one indexed lookup, one committed insert, one serial
command.

Fail-secure throughout: a fault closes the device and reconnects with backoff while the board
relocks on its own; an event (or a PIN attempt's count) that cannot be recorded keeps the door
shut; a database that fails its integrity check stops the daemon before it decides anything.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.clock import SiteClock
from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.db import check_integrity, checkpoint_wal
from accessd.door import alarms, command_table, remote_unlock, status
from accessd.door.directory import SqlDirectory
from accessd.door.doors import register_door
from accessd.door.health import DeviceHealth
from accessd.door.jobs import EnrolFinger, JobQueue, ReconcileLibrary, SensorJobs
from accessd.door.logic import (
    Action,
    CountPinAttempt,
    DoorLogic,
    DoorRules,
    Pulse,
    RaiseAlarm,
    Record,
    WipeSensor,
)
from accessd.door.pin_attempts import PinAttempts
from accessd.errors import AccessdError, DaemonRefusedError, InvalidInputError
from accessd.fingers.library import forget_library
from accessd.history.chain import record_event
from accessd.models import (
    AlarmKind,
    CommandKind,
    Customer,
    DeviceCommand,
    EventKind,
    Person,
)
from firmware_bridge.door import DoorBoard
from firmware_bridge.errors import (
    DoorError,
    PoorImageError,
    SensorBadPasswordError,
    SensorError,
)
from firmware_bridge.sensor import Sensor

log = logging.getLogger("accessd.door.daemon")

FACTORY_PASSWORD = 0
LIFT_TIMEOUT = 10.0
COMMAND_POLL = 0.25
CHECKPOINT_INTERVAL = 10.0


class Daemon:
    """One door: its sensor, its door board, its rules.

    :param clock: the site's time: monotonic seconds for timers and backoff, aware UTC for
        events, the local date for contracts; tests may pass their own.
    """

    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
                 provider: KeyProvider, sensor: Sensor, door: DoorBoard, *,
                 clock: SiteClock | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.provider = provider
        self.sensor = sensor
        self.door = door
        self.clock = clock or SiteClock.of(settings)
        self.door_id = 0
        self.stop_event = threading.Event()
        self.jobs = JobQueue()
        self._logic_lock = threading.Lock()
        self._door_lock = threading.Lock()
        self.sensor_health = DeviceHealth(
            "sensor", open=self._connect_sensor, close=self.sensor.close, faults=SensorError,
            monotonic=self.clock.monotonic, report=self._report, recovered="sensor answers again")
        self.door_health = DeviceHealth(
            "door board", open=self._open_door, close=self._close_door, faults=DoorError,
            monotonic=self.clock.monotonic, report=self._report, recovered="door board answers")
        self._next_beat = 0.0
        self._threads: list[threading.Thread] = []
        self.logic: DoorLogic | None = None
        self._sensor_jobs: SensorJobs | None = None
        self._pin_attempts: PinAttempts | None = None

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
            self.door_id = register_door(session, self.settings.door.name)
            tamper = alarms.is_open(session, self.door_id, AlarmKind.TAMPER)
        command_table.fail_abandoned(self.sessions, self.door_id)
        directory = SqlDirectory(self.sessions, clock=self.clock.now)
        self._pin_attempts = PinAttempts(self.sessions, max_failures=a.pin_max_failures,
                                         lockout=dt.timedelta(seconds=a.pin_lockout_seconds),
                                         clock=self.clock.now)
        rules = DoorRules(release_seconds=a.release_seconds,
                          held_open_alarm_seconds=a.held_open_alarm_seconds,
                          max_failures=a.max_failures,
                          failure_window_seconds=a.failure_window_seconds,
                          backoff_seconds=a.backoff_seconds,
                          keypad_timeout_seconds=a.keypad_timeout_seconds)
        self.logic = DoorLogic(self.door_id, rules, directory, today=self.clock.today,
                               tamper=tamper)
        self._sensor_jobs = SensorJobs(self.sensor, self.sessions, self.provider, self.door_id,
                                       max_fingers=a.max_fingers_per_person,
                                       tampered=lambda: self._logic().tamper,
                                       after_resync=self._forget_cached_data)
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
        self.jobs.add(ReconcileLibrary())
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
                now = self.clock.monotonic()
                if now >= next_status:
                    self._write_status()
                    next_status = now + status.STATUS_INTERVAL
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

    # --- the sensor thread ------------------------------------------------------------------

    def _sensor_loop(self) -> None:
        while not self.stop_event.is_set():
            self.sensor_health.guard(self._sensor_step, wait=self.stop_event.wait)

    def _sensor_step(self) -> None:
        if not self.sensor_health.connect(self.stop_event.wait):
            return
        job = self.jobs.take()
        if job is not None:
            assert self._sensor_jobs is not None
            self._sensor_jobs.run(job)
            return
        self._identify_once()

    def _identify_once(self) -> None:
        logic = self._logic()
        if logic.tamper or not logic.accepting(self.clock.monotonic()):
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
            actions = logic.finger(result.slot, self.clock.monotonic())
        self._execute(actions)
        self._wait_lift()

    def _wait_lift(self) -> None:
        # One placement, one attempt. A finger left on the glass past LIFT_TIMEOUT is searched
        # again: harmless, and recorded.
        deadline = self.clock.monotonic() + LIFT_TIMEOUT
        while (not self.stop_event.is_set() and self.clock.monotonic() < deadline
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
        self.jobs.first(ReconcileLibrary())

    def _open_sensor(self, password: int) -> None:
        self.sensor.password = password
        self.sensor.open()

    # --- the door thread --------------------------------------------------------------------

    def _door_loop(self) -> None:
        while not self.stop_event.is_set():
            self.door_health.guard(self._door_step, wait=self.stop_event.wait)

    def _door_step(self) -> None:
        if not self.door_health.connect(self.stop_event.wait):
            return
        if self.door_health.take_suspicion() is not None:
            self._next_beat = 0.0  # another thread saw the board fail: check it now
        now = self.clock.monotonic()
        if now >= self._next_beat:
            with self._door_lock:
                self.door.heartbeat()
            self._next_beat = now + max(0.2, self.settings.door.heartbeat_timeout / 3)
        event = self.door.next_event(0.05)
        with self._logic_lock:
            actions = self._logic().board(event, self.clock.monotonic()) if event else []
            actions += self._logic().tick(self.clock.monotonic())
        self._execute(actions)

    def _open_door(self) -> None:
        with self._door_lock:
            self.door.open()
        self._next_beat = 0.0  # a fresh connection: greet the board with a heartbeat now

    def _close_door(self) -> None:
        with self._door_lock:
            self.door.close()

    # --- carrying out actions ---------------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        """Records first (committed), then the relay: no opening without its event (nor
        without its PIN attempt counted)."""
        recorded = True
        for action in actions:
            if isinstance(action, Record):
                recorded = self._record(action) and recorded
            elif isinstance(action, CountPinAttempt):
                recorded = self._count_pin_attempt(action) and recorded
            elif isinstance(action, RaiseAlarm):
                self._raise_alarm(action)
            elif isinstance(action, WipeSensor):
                self.jobs.first(action)
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
            # The door thread owns the board: it checks it at once; nothing here delays its
            # reconnect.
            self.door_health.suspect(exc)

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
                             method=record.method, reason=record.reason, at=self.clock.now())
        except Exception:  # any database failure: log it; the caller keeps the door shut
            log.exception("could not record %s", record.kind)
            return False
        return True

    def _report(self, kind: EventKind, reason: str) -> None:
        """A device's fault or recovery, as an event of the facility's."""
        self._record(Record(kind, reason=reason))

    def _count_pin_attempt(self, attempt: CountPinAttempt) -> bool:
        assert self._pin_attempts is not None
        try:
            self._pin_attempts.count(attempt)
        except Exception:  # any database failure: the caller keeps the door shut
            log.exception("could not count a PIN attempt")
            return False
        return True

    def _raise_alarm(self, alarm: RaiseAlarm) -> None:
        with self.sessions.begin() as session:
            alarms.raise_alarm(session, self.door_id, alarm.kind, alarm.detail,
                               at=self.clock.now())
        log.warning("alarm %s: %s", alarm.kind, alarm.detail)

    # --- commands and status ----------------------------------------------------------------

    def _poll_commands(self) -> None:
        command = command_table.claim_next(self.sessions, self.door_id)
        if command is None:
            return
        kind = command.kind
        if kind is CommandKind.ENROLL:
            try:
                job = EnrolFinger.from_command(command, self.settings)
            except (KeyError, ValueError) as exc:
                command_table.finish(self.sessions, command.id, ok=False,
                                     message=f"bad enrolment request: {exc}")
                return
            self.jobs.add(job)
        elif kind is CommandKind.RESYNC:
            self.jobs.add(ReconcileLibrary(command.id))
        elif kind in (CommandKind.TEST_RELAY, CommandKind.REMOTE_UNLOCK):
            self._remote_unlock(command)
        elif kind is CommandKind.CLEAR_ALARM:
            self._clear_alarms(command)

    def _remote_unlock(self, command: DeviceCommand) -> None:
        try:
            reason = remote_unlock.event_reason(
                str(command.args.get("reason") or command.kind.value), command.created_by)
        except InvalidInputError as exc:
            log.warning("remote unlock refused, the door stays locked: %s", exc)
            command_table.finish(self.sessions, command.id, ok=False, message=str(exc))
            return
        with self._logic_lock:
            actions = self._logic().remote_unlock(self.clock.monotonic(), reason)
        self._execute(actions)
        command_table.finish(self.sessions, command.id, ok=True, message="door released")

    def _clear_alarms(self, command: DeviceCommand) -> None:
        with self.sessions.begin() as session:
            count = alarms.clear_alarms(session, self.door_id, by=command.created_by,
                                        at=self.clock.now())
        with self._logic_lock:
            refill = self._logic().tamper
            self._logic().tamper_cleared()
        self._record(Record(EventKind.ALARM_CLEARED, reason=f"by {command.created_by}"))
        if refill:
            self.jobs.add(ReconcileLibrary())
        command_table.finish(self.sessions, command.id, ok=True,
                             message=f"{count} alarm(s) cleared" + ("; refilling the sensor"
                                                                     if refill else ""))

    def _forget_cached_data(self) -> None:
        """Drop what this process may still hold of data that left the database.

        SQLite keeps the pages it read (names, e-mails, template ciphertexts) in each pooled
        connection's page cache, stale but allocated, until the connection closes; Python keeps
        freed objects' bytes until reused. Closing the pool's connections frees the caches, a
        full collection frees unreachable objects, and ``accessd run`` runs with glibc's
        MALLOC_PERTURB_ and PYTHONMALLOC=malloc so that freed memory is overwritten at once
        (``accessd.cli.door``). Costs a reconnect (milliseconds) after a rare command.
        """
        self.engine.dispose()
        gc.collect()
        log.info("dropped cached database pages after a resync")

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
        report = status.Report(
            at=self.clock.now(),
            board_online=self.door_health.connected if online is None else online,
            sensor_online=self.sensor_health.connected and online is not False,
            locked=logic is None or logic.unlocked_until <= self.clock.monotonic(),
            door_open=None if logic is None else logic.door_open_since is not None,
            fault=self.sensor_health.fault or self.door_health.fault)
        try:
            with self.sessions.begin() as session:
                status.write_report(session, self.door_id, report)
        except Exception:  # status is advisory; never let it stop the door
            log.exception("could not write the door status")

    def _logic(self) -> DoorLogic:
        if self.logic is None:
            raise DaemonRefusedError("the daemon ran before its preflight")
        return self.logic
