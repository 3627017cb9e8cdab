"""``accessd run``: the door's daemon, the imperative shell around ``DoorLogic``.

Three threads, each owning one thing: the sensor thread owns the sensor (pyfingerprint is not
thread-safe) and runs every job that needs it (``accessd.door.jobs``); the door thread owns the
door board's events and heartbeats; the main thread polls the command table, writes the
door's status and moves the reserve journal into the database. Both device threads keep their
device connected the same way (``accessd.door.health``). The hot path (finger -> search ->
decision -> event -> relay) runs on the sensor thread with nothing in between: one indexed
lookup, one committed insert, one serial command.

Fail-secure throughout: a fault closes the device and reconnects while the board relocks on its
own; an event (or a PIN attempt's count) that cannot be recorded, in the database or in the
reserve journal (``accessd.door.recorder``), keeps the door shut; a database that fails its
integrity check stops the daemon before it decides anything. No database error ends a thread:
each loop notes it, the status file says so, and the loop carries on. What the relay did is on
record: an opening whose pulse failed, or was never confirmed, is followed by an event saying so.
"""

from __future__ import annotations

import collections
import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from accessd.clock import SiteClock
from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.db import check_integrity, checkpoint_wal, create_db_engine, make_sessionmaker
from accessd.door import alarms, command_table, relay, remote_unlock, sensor_identity, status
from accessd.door.decision import Reason
from accessd.door.devices import DeviceProblem
from accessd.door.directory import SqlDirectory
from accessd.door.doors import register_door
from accessd.door.health import DeviceHealth
from accessd.door.jobs import EnrolFinger, Job, JobQueue, ReconcileLibrary, SensorJobs
from accessd.door.journal import JOURNAL_FILE, ReserveJournal
from accessd.door.logic import (
    Action,
    CountPinAttempt,
    DoorLogic,
    DoorRules,
    Pulse,
    RaiseAlarm,
    Record,
    VerifyFinger,
    WipeSensor,
)
from accessd.door.metrics import DoorMetrics, LabelledGauges
from accessd.door.pin_attempts import PinAttempts
from accessd.door.recorder import EVENT_BUSY_MS, OPENINGS, EventRecorder, EventRef
from accessd.door.supervision import Heartbeats, Supervisor
from accessd.errors import (
    AccessdError,
    DaemonRefusedError,
    InvalidInputError,
    JournalError,
    SnapshotStaleError,
)
from accessd.fingers.library import forget_library
from accessd.fingers.verify import check_one_to_one, templates_of
from accessd.models import (
    AlarmKind,
    CommandKind,
    DeviceCommand,
    EventKind,
    EventMethod,
)
from firmware_bridge.door import DoorBoard, DoorEvent, DoorEventKind
from firmware_bridge.errors import (
    DoorError,
    DoorWireError,
    PoorImageError,
    SensorBadPasswordError,
    SensorError,
    SensorSwappedError,
)
from firmware_bridge.sensor import Sensor

if TYPE_CHECKING:
    from accessd.site.door import SiteDoor, SpoolRecorder
    from accessd.site.snapshot import Snapshot, SnapshotPinAttempts

log = logging.getLogger("accessd.door.daemon")

FACTORY_PASSWORD = 0
_STOPPED = DeviceProblem.SILENT  # a device not yet connected, or closed at shutdown
LIFT_TIMEOUT = 10.0
COMMAND_POLL = 0.25
CHECKPOINT_INTERVAL = 10.0
RETRY_LATER = 5.0  # seconds before a job the database refused is tried again
LOOPS = ("sensor", "door", "commands")  # the loops whose heartbeats the watchdog checks
DECISIONS = (EventKind.GRANTED, EventKind.DENIED, EventKind.UNKNOWN_FINGER)
RULES = frozenset({r.value for r in Reason} | {"slot_not_in_database"})


class Daemon:
    """One door: its sensor, its door board, its rules.

    :param clock: the site's time: monotonic seconds for timers and backoff, aware UTC for
        events, the local date for contracts; tests may pass their own.
    :param supervisor: systemd watching the daemon (``accessd.door.supervision``): told when
        the daemon decides and stops, and pinged while each of its loops is alive.
    """

    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
                 provider: KeyProvider, sensor: Sensor, door: DoorBoard, *,
                 clock: SiteClock | None = None, supervisor: Supervisor | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.provider = provider
        self.sensor = sensor
        self.door = door
        self.clock = clock or SiteClock.of(settings)
        self.door_id = 0
        self.stop_event = threading.Event()
        self._sensor_wake = threading.Event()  # a typed code wakes the sensor thread
        self.jobs = JobQueue()
        self.heartbeats = supervisor.heartbeats if supervisor is not None else Heartbeats()
        self.supervisor = supervisor
        if supervisor is not None:
            supervisor.describe = self.describe
        # The longest a sensor step takes without turning: a few of the driver's own deadlines
        # (an image, a search, a relay pulse); a sensor slower than that is a fault, not a hang.
        self._sensor_step_within = 4 * settings.sensor.timeout_seconds
        self.metrics = DoorMetrics()
        self._logic_lock = threading.Lock()
        self._door_lock = threading.Lock()
        # The door's own writes (events, its status row, claiming commands) wait briefly for
        # other writers: events have the reserve journal to go to, the rest is retried.
        self.quick_engine = (create_db_engine(engine.url, autocheckpoint=False,
                                              busy_timeout_ms=EVENT_BUSY_MS)
                             if engine.dialect.name == "sqlite" else engine)
        self.quick_sessions = make_sessionmaker(self.quick_engine)
        self.sensor_health = DeviceHealth(
            "sensor", open=self._connect_sensor, close=self.sensor.close, faults=SensorError,
            monotonic=self.clock.monotonic, report=self._report, recovered="sensor answers again",
            storage_failed=self._storage_failed, on_fault=self._sensor_fault,
            counted=self._count_device)
        self.door_health = DeviceHealth(
            "door board", open=self._open_door, close=self._close_door, faults=DoorError,
            monotonic=self.clock.monotonic, report=self._report, recovered="door board answers",
            storage_failed=self._storage_failed, on_fault=self._door_fault,
            counted=self._count_device)
        self._next_beat = 0.0
        self._seen: dict[str, dt.datetime] = {}  # when the sensor and the board last answered
        self._threads: list[threading.Thread] = []
        self.logic: DoorLogic | None = None
        self.recorder: EventRecorder | SpoolRecorder | None = None
        # Site mode (``[site] snapshot`` set): the snapshot decides, the spool records.
        self.site: SiteDoor | None = None
        self._stale_alarmed = False
        self.status_file: status.StatusFile | None = None
        self._sensor_jobs: SensorJobs | None = None
        self._pin_attempts: PinAttempts | SnapshotPinAttempts | None = None
        # Work the database refused, tried again later by the main thread: (when, what).
        self._jobs_waiting: collections.deque[tuple[float, Job]] = collections.deque()
        self._alarms_waiting: collections.deque[tuple[RaiseAlarm, dt.datetime]] = (
            collections.deque())
        self._metrics_read_at_scrape()

    # --- metrics ----------------------------------------------------------------------------

    def _metrics_read_at_scrape(self) -> None:
        """What Prometheus reads when it scrapes, never on the door's path."""
        m = self.metrics
        m.add(LabelledGauges(
            "accessd_device_connected", "1 while the device answers", "device",
            lambda: {"sensor": float(self.sensor_health.connected),
                     "door board": float(self.door_health.connected)}))
        m.add(LabelledGauges("accessd_alarms_open", "Open alarms at this door", "kind",
                             self._open_alarms, every=[k.value for k in AlarmKind]))
        m.gauge("accessd_commands_pending",
                "Commands for this door waiting for, or being carried out by, this daemon",
                self._pending_commands)
        m.gauge("accessd_spool_depth",
                "Events in the reserve journal waiting for the database", self._spool_depth)

    def _open_alarms(self) -> dict[str, float]:
        if not self.door_id:
            return {}
        with self.quick_sessions() as session:
            found = alarms.open_alarms(session, self.door_id)
        return dict(collections.Counter(a.kind.value for a in found))

    def _pending_commands(self) -> float | None:
        if not self.door_id:
            return None
        with self.quick_sessions() as session:
            return command_table.unfinished_count(session, self.door_id)

    def _spool_depth(self) -> float | None:
        journal = self.recorder.journal if self.recorder is not None else None
        return journal.pending if journal is not None else None

    def _count_device(self, device: str, what: str) -> None:
        (self.metrics.faults if what == "fault" else self.metrics.reconnects).labels(device).inc()

    def _count_decisions(self, actions: list[Action], started: float, method: str) -> None:
        """Count each decision in ``actions`` and log it: one line, public ids only."""
        for action in actions:
            if not (isinstance(action, Record) and action.kind in DECISIONS):
                continue
            elapsed = time.monotonic() - started
            # The rule is a reason code; a remote unlock's reason is typed text: never a label.
            rule = (action.reason if action.reason in RULES
                    else "remote_unlock" if action.method is EventMethod.REMOTE
                    else "no_match" if action.reason is None else "other")
            way = action.method.value if action.method else method
            self.metrics.decision(action.kind.value, rule, way)
            self.metrics.latency.labels(method).observe(elapsed)
            log.info("decision", extra={
                "result": action.kind.value, "rule": rule, "method": way,
                "person": str(action.person_public_id) if action.person_public_id else None,
                "customer": (str(action.customer_public_id) if action.customer_public_id
                             else None),
                "ms": round(elapsed * 1000, 1)})

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
        directory: SqlDirectory | Snapshot
        if self.settings.site.snapshot is not None:
            from accessd.site.door import open_site_door

            self.site = open_site_door(self.settings, self.engine, self.door_id,
                                       now=self.clock.now)
            self.recorder = self.site.recorder
            directory = self.site.snapshot
            self._pin_attempts = self.site.pin_attempts
        else:
            self.recorder = self._open_recorder()
            self.status_file = self._open_status_file()
            directory = SqlDirectory(self.sessions, clock=self.clock.now,
                                     door_id=self.door_id)
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
                               local_now=lambda: self.clock.local(self.clock.now()),
                               tamper=tamper)
        self._sensor_jobs = SensorJobs(self.sensor, self.sessions, self.provider, self.door_id,
                                       max_fingers=a.max_fingers_per_person,
                                       tampered=lambda: self._logic().tamper,
                                       today=self.clock.today,
                                       after_resync=self._forget_cached_data,
                                       alive=self._sensor_alive)
        # Everything loaded so far (modules, SQLAlchemy's metadata) lives as long as the
        # process: freezing it keeps the garbage collector's full passes, which walk every
        # tracked object, from pausing a door decision for several milliseconds.
        gc.collect()
        gc.freeze()
        # Fewer, larger young collections: the daemon makes little garbage per decision, and
        # each collection is a pause in whichever thread triggers it.
        gc.set_threshold(20_000, 20, 20)

    def _open_recorder(self) -> EventRecorder:
        """The event recorder, with the reserve journal in the data directory (created now,
        while there is space, if it is not there yet)."""
        path = self.settings.data_dir / JOURNAL_FILE
        journal, error = None, None
        try:
            journal = ReserveJournal.open(path)
        except JournalError as exc:
            error = str(exc)
            log.error("%s", exc)
        else:
            if journal.pending:
                log.warning("%d event(s) in the reserve journal %s wait for the database",
                            journal.pending, path)
        return EventRecorder(self.quick_engine, self.door_id, journal, now=self.clock.now,
                             monotonic=self.clock.monotonic, journal_error=error)

    def _open_status_file(self) -> status.StatusFile | None:
        """The status file beside a SQLite database (a PostgreSQL site's panel reads the row
        from another host: no file there could help it)."""
        path = status.status_file_path(self.engine.url, self.door_id)
        if path is None:
            return None
        try:
            return status.StatusFile.create(path)
        except OSError as exc:
            log.error("cannot write the status file %s (%s); the status row alone will say "
                      "how this door is", path, exc)
            return None

    def start(self) -> None:
        """Preflight, then the sensor and door threads (returns at once)."""
        self.preflight()
        if self.site is not None:
            self.site.start(self.stop_event)
        self.jobs.add(ReconcileLibrary())
        for target, name in ((self._sensor_loop, "sensor"), (self._door_loop, "door")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self, after_start: Callable[[], None] | None = None) -> None:
        """Run until ``stop()``: the main thread writes status, moves the reserve journal into
        the database and polls commands; no error in one of them stops the others.

        :param after_start: called once the door's threads run (``accessd run`` starts the
            privacy scheduler there, so that its imports and its catch-up never delay the
            door's first decision).
        """
        self.start()
        if after_start is not None:
            after_start()
        due = {"status": 0.0, "checkpoint": 0.0}
        ready = False
        try:
            while not self.stop_event.is_set():
                self.heartbeats.beat("commands")
                if not ready and len(self.heartbeats.loops()) >= len(LOOPS):
                    ready = True  # every loop turned: the door decides
                    if self.supervisor is not None:
                        self.supervisor.ready()
                now = self.clock.monotonic()
                if now >= due["status"]:
                    self._main_step(self._write_status)
                    due["status"] = now + status.STATUS_INTERVAL
                self._main_step(self._tend_storage)
                self._main_step(self._poll_commands)
                if now >= due["checkpoint"]:
                    self._main_step(self._checkpoint)
                    due["checkpoint"] = now + CHECKPOINT_INTERVAL
                self.stop_event.wait(COMMAND_POLL)
        finally:
            self.shutdown()

    def _main_step(self, step: Callable[[], None]) -> None:
        try:
            step()
        except SQLAlchemyError as exc:
            # The recorder logs a trouble once; the status and, if it lasts, an alarm say more.
            log.debug("the database failed (%s); trying again shortly", _first_line(exc))
            self._storage_failed(exc)
        except Exception:  # a bug must not end the main thread (the door would lose status)
            log.exception("unexpected error in the daemon's main loop")

    def _tend_storage(self) -> None:
        """Move the reserve journal, raise a lasting trouble's alarm, retry what waited."""
        recorder = self._recorder()
        recorder.drain()
        recorder.tick(self.quick_sessions)
        now = self.clock.monotonic()
        while self._jobs_waiting and self._jobs_waiting[0][0] <= now:
            self.jobs.add(self._jobs_waiting.popleft()[1])
        while self._alarms_waiting:  # oldest first; one refused leaves the rest for later
            alarm, at = self._alarms_waiting[0]
            with self.quick_sessions.begin() as session:
                alarms.raise_alarm(session, self.door_id, alarm.kind, alarm.detail, at=at)
            self._alarms_waiting.popleft()

    def stop(self) -> None:
        self.stop_event.set()
        self._sensor_wake.set()

    def describe(self) -> str:
        """The daemon's state in a few words, for systemd's ``STATUS=``."""
        storage = self.recorder.fault_text() if self.recorder is not None else None
        faults = [f for f in (self.sensor_health.fault, self.door_health.fault, storage) if f]
        if faults:
            return "deciding, with faults: " + "; ".join(faults)
        return "deciding: sensor and door board online"

    def shutdown(self) -> None:
        self.stop_event.set()
        if self.supervisor is not None:
            self.supervisor.stopping()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._door_lock:
            try:
                self.door.lock()
            except DoorError:
                pass  # unreachable board: it relocks by itself without heartbeats
            self.door.close()
        self.sensor.close()
        try:
            self._write_status(online=False)
        except SQLAlchemyError as exc:
            log.warning("could not write the door's last status: %s", _first_line(exc))
        if self.status_file is not None:
            self.status_file.close()
        if self.recorder is not None and self.recorder.journal is not None:
            self.recorder.journal.close()
        if self.site is not None:
            self.site.close()
        if self.quick_engine is not self.engine:
            self.quick_engine.dispose()

    # --- the sensor thread ------------------------------------------------------------------

    def _sensor_loop(self) -> None:
        while not self.stop_event.is_set():
            self._sensor_alive()
            self.sensor_health.guard(self._sensor_step, wait=self.stop_event.wait)

    def _sensor_alive(self, waiting: float = 0.0) -> None:
        """The sensor thread turns; its next sign of life may come after a step's usual time
        plus ``waiting`` (a person asked to place a finger)."""
        self.heartbeats.beat("sensor", self._sensor_step_within + waiting)

    def _sensor_step(self) -> None:
        if not self.sensor_health.connect(self.stop_event.wait):
            return
        job = self.jobs.take()
        if job is not None:
            assert self._sensor_jobs is not None
            try:
                self._sensor_jobs.run(job)
            except SQLAlchemyError:
                self._retry_later(job)
                raise
            return
        self._identify_once()

    def _retry_later(self, job: Job) -> None:
        """A job the database refused: a wipe or a reconcile runs again later (both are
        idempotent); an enrolment ends failed, since its person has left the reader."""
        if isinstance(job, EnrolFinger):
            try:
                command_table.finish(self.quick_sessions, job.command_id, ok=False,
                                     message="the database could not be written; enrol again")
            except SQLAlchemyError:
                pass  # left running: failed at the daemon's next start (fail_abandoned)
            return
        self._jobs_waiting.append((self.clock.monotonic() + RETRY_LATER, job))

    def _identify_once(self) -> None:
        logic = self._logic()
        if logic.tamper:
            # The library is wiped and the reader suspect: nothing is searched, but a finger
            # placed is someone at the door, so it is recorded (refused) once per placement.
            if self.sensor.finger_present():
                with self._logic_lock:
                    actions = logic.finger(None, self.clock.monotonic())
                self._execute(actions)
                self._wait_lift()
            else:
                self.stop_event.wait(self.settings.sensor.poll_interval_seconds)
            return
        if not logic.accepting(self.clock.monotonic()):
            self.stop_event.wait(0.1)
            return
        awaited = logic.awaiting_finger(self.clock.monotonic())
        if awaited is not None:
            self._check_one_to_one(*awaited)
            return
        if not self.sensor.finger_present():
            # Woken early by a typed code: its 1:1 check starts with the template upload.
            self._sensor_wake.wait(self.settings.sensor.poll_interval_seconds)
            self._sensor_wake.clear()
            return
        awaited = logic.awaiting_finger(self.clock.monotonic())
        if awaited is not None:  # the code arrived while this finger was being imaged
            self._check_one_to_one(*awaited, imaged=True)
            return
        started = time.monotonic()
        try:
            self.sensor.capture(1)
        except PoorImageError:
            self._wait_lift()
            return
        result = self.sensor.search()
        try:
            with self._logic_lock:
                actions = logic.finger(result.slot, self.clock.monotonic())
        except SQLAlchemyError as exc:  # who holds the slot cannot be read: refuse, on record
            self._storage_failed(exc)
            actions = [Record(EventKind.DENIED, EventMethod.FINGER,
                              Reason.DATABASE_UNAVAILABLE.value)]
        except SnapshotStaleError as exc:
            actions = self._refuse_stale(exc, EventMethod.FINGER)
        else:
            self._stale_alarmed = False
        self._execute(actions)
        self._count_decisions(actions, started, "finger")
        self._wait_lift()

    def _check_one_to_one(self, person_id: int, until: float, *, imaged: bool = False) -> None:
        """A code was typed: check the next finger against that person's templates only."""
        logic = self._logic()
        try:
            templates = templates_of(self.sessions, self.provider, person_id)
        except SQLAlchemyError as exc:
            self._storage_failed(exc)
            self._execute([Record(EventKind.DENIED, EventMethod.CODE_AND_FINGER,
                                  Reason.DATABASE_UNAVAILABLE.value)])
            logic.finger_checked(person_id, False, self.clock.monotonic())
            return
        try:
            matched = check_one_to_one(self.sensor, templates,
                                       seconds=max(0.0, until - self.clock.monotonic()),
                                       stopped=self.stop_event.is_set, imaged=imaged)
        finally:
            templates.clear()
        if matched is None:
            return  # no finger in time: the logic's timeout refuses, on record
        with self._logic_lock:
            actions = logic.finger_checked(person_id, matched, self.clock.monotonic())
        self._execute(actions)
        self._wait_lift()

    def _wait_lift(self) -> None:
        # One placement, one attempt. A finger left on the glass past LIFT_TIMEOUT is searched
        # again: harmless, and recorded.
        deadline = self.clock.monotonic() + LIFT_TIMEOUT
        while (not self.stop_event.is_set() and self.clock.monotonic() < deadline
               and self.sensor.finger_present()):
            self._sensor_alive()
            self.stop_event.wait(self.settings.sensor.poll_interval_seconds)

    def _connect_sensor(self) -> None:
        """Open the sensor and check it is the one this door provisioned
        (``accessd.door.sensor_identity``).

        :raises SensorSwappedError: it is not, and staff have not approved it.
        """
        own = self.provider.sensor_password()
        factory = False
        try:
            self._open_sensor(own)
        except SensorBadPasswordError:
            self._open_sensor(FACTORY_PASSWORD)
            factory = True
        try:
            with self.quick_sessions.begin() as session:
                verdict = sensor_identity.check_sensor(session, self.door_id,
                                                       self.sensor.identity(), factory=factory)
        except SQLAlchemyError:
            self.sensor.close()  # unchecked, unused: the next try asks the database again
            raise
        if verdict.refused is not None:
            self.sensor.close()
            raise SensorSwappedError(verdict.refused)
        if factory:
            # A sensor still on the factory password is new (or was reset): it must not keep
            # whatever it holds, and must never stay on a password anyone can look up.
            self.sensor.wipe()
            self.sensor.set_password(own)
            forget_library(self.sessions, self.door_id)
            self._record(Record(EventKind.SENSOR_INSTALLED,
                                reason="new sensor: library wiped, installation password set"))
        if verdict.approved:
            self._record(Record(EventKind.SENSOR_APPROVED,
                                reason="a replaced sensor, approved by staff, is in use"))
        self.jobs.first(ReconcileLibrary())

    def _sensor_fault(self, exc: Exception) -> None:
        if isinstance(exc, SensorSwappedError):
            self._record(Record(EventKind.SENSOR_SWAPPED, reason=str(exc)[:200]))
            self._raise_alarm(RaiseAlarm(AlarmKind.SENSOR_SWAPPED, str(exc)[:500]))

    def _open_sensor(self, password: int) -> None:
        self.sensor.password = password
        self.sensor.open()

    # --- the door thread --------------------------------------------------------------------

    def _door_loop(self) -> None:
        while not self.stop_event.is_set():
            self.heartbeats.beat("door")
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
        started = time.monotonic()
        with self._logic_lock:
            actions = self._board_event(event) if event else []
            actions += self._logic().tick(self.clock.monotonic())
        self._execute(actions)
        if actions:
            self._count_decisions(actions, started, "pin")

    def _board_event(self, event: DoorEvent) -> list[Action]:
        try:
            return self._logic().board(event, self.clock.monotonic())
        except SQLAlchemyError as exc:  # a PIN that cannot be checked: refused, on record
            self._storage_failed(exc)
            if event.kind is DoorEventKind.KEY:
                return [Record(EventKind.DENIED, EventMethod.PIN,
                               Reason.DATABASE_UNAVAILABLE.value)]
            raise
        except SnapshotStaleError as exc:
            return self._refuse_stale(exc, EventMethod.PIN)

    def _refuse_stale(self, exc: SnapshotStaleError, method: EventMethod) -> list[Action]:
        """A site door whose snapshot is past its limit refuses, on record, and alarms once."""
        actions: list[Action] = [Record(EventKind.DENIED, method, Reason.SNAPSHOT_STALE.value)]
        if not self._stale_alarmed:
            self._stale_alarmed = True
            log.error("%s", exc)
            actions.append(RaiseAlarm(AlarmKind.SNAPSHOT_STALE, str(exc)[:500]))
        return actions

    def _open_door(self) -> None:
        with self._door_lock:
            self.door.open()
        self._next_beat = 0.0  # a fresh connection: greet the board with a heartbeat now

    def _close_door(self) -> None:
        with self._door_lock:
            self.door.close()

    def _door_fault(self, exc: Exception) -> None:
        """A wire that does not authenticate is an alarm, not only a fault: someone may be on
        it (the board's own reports of refused frames arrive as events: ``DoorLogic.board``)."""
        if isinstance(exc, DoorWireError):
            self._raise_alarm(RaiseAlarm(AlarmKind.DOOR_WIRE, str(exc)[:500]))

    # --- carrying out actions ---------------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        """Records first (committed, or synced in the reserve journal), then the relay: no
        opening without its event (nor without its PIN attempt counted). A pulse that fails,
        or that the board never confirms, is followed by an event saying so."""
        recorded = True
        opening: tuple[Record, EventRef | None] | None = None
        for action in actions:
            if isinstance(action, Record):
                ref = self._record(action)
                recorded = ref is not None and recorded
                if action.kind in OPENINGS:
                    opening = (action, ref)
            elif isinstance(action, CountPinAttempt):
                recorded = self._count_pin_attempt(action) and recorded
            elif isinstance(action, RaiseAlarm):
                self._raise_alarm(action)
            elif isinstance(action, WipeSensor):
                self.jobs.first(action)
            elif isinstance(action, VerifyFinger):
                self._sensor_wake.set()  # the sensor thread checks the next finger 1:1
            elif isinstance(action, Pulse):
                if not recorded:
                    log.error("event not recorded: the door stays locked")
                    if opening is not None and opening[1] is not None:  # granted, not opened
                        self._record_outcome(EventKind.PULSE_FAILED, "not_recorded", *opening)
                    continue
                outcome, why, failure = relay.pulse(self.door, self._door_lock, action.seconds,
                                                    connected=self.door_health.connected)
                if failure is not None:
                    self.door_health.suspect(failure)  # the door thread checks the board now
                if outcome.event is not None and opening is not None:
                    self._record_outcome(outcome.event, why, *opening)

    def _record_outcome(self, kind: EventKind, why: str, opening: Record,
                        ref: EventRef | None) -> None:
        self._record(Record(kind, opening.method, why, opening.customer_id, opening.person_id,
                            opening.customer_public_id, opening.person_public_id), about=ref)

    def _record(self, record: Record, about: EventRef | None = None) -> EventRef | None:
        """Record ``record``; None when neither the database nor the journal took it."""
        return self._recorder().record(record, about=about)

    def _report(self, kind: EventKind, reason: str) -> None:
        """A device's fault or recovery, as an event of the facility's."""
        self._record(Record(kind, reason=reason))

    def _storage_failed(self, exc: Exception) -> None:
        if self.recorder is not None:
            self.recorder.noticed(exc)

    def _count_pin_attempt(self, attempt: CountPinAttempt) -> bool:
        assert self._pin_attempts is not None
        try:
            self._pin_attempts.count(attempt)
        except SQLAlchemyError as exc:  # the caller keeps the door shut
            log.error("could not count a PIN attempt (%s): the door stays locked",
                      _first_line(exc))
            self._storage_failed(exc)
            return False
        return True

    def _raise_alarm(self, alarm: RaiseAlarm) -> None:
        log.warning("alarm %s: %s", alarm.kind, alarm.detail)
        self.metrics.alarms.labels(alarm.kind.value).inc()
        at = self.clock.now()
        try:
            with self.quick_sessions.begin() as session:
                alarms.raise_alarm(session, self.door_id, alarm.kind, alarm.detail, at=at)
        except SQLAlchemyError as exc:  # the main thread writes it once the database can
            self._storage_failed(exc)
            self._alarms_waiting.append((alarm, at))

    # --- commands and status ----------------------------------------------------------------

    def _poll_commands(self) -> None:
        command = command_table.claim_next(self.quick_sessions, self.door_id)
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
            version = None
            if self.site is not None:
                version = self._site_current(command)
                if version is None:
                    return
            self.jobs.add(ReconcileLibrary(command.id, snapshot_version=version))
        elif kind in (CommandKind.TEST_RELAY, CommandKind.REMOTE_UNLOCK):
            self._remote_unlock(command)
        elif kind is CommandKind.CLEAR_ALARM:
            self._clear_alarms(command)

    def _site_current(self, command: DeviceCommand) -> int | None:
        """Before a site door's resync (a purge waits for it): bring its snapshot to the
        site's current version, so what the purge removed leaves the snapshot first; returns
        that version (None: the command failed, and the purge asks again)."""
        assert self.site is not None
        try:
            self.site.sync.sync_now()
        except Exception as exc:  # the purge asks again
            command_table.finish(self.quick_sessions, command.id, ok=False,
                                 message=f"the door's snapshot could not be brought up to date "
                                 f"({str(exc).splitlines()[0][:120]})")
            return None
        return self.site.snapshot.version

    def _remote_unlock(self, command: DeviceCommand) -> None:
        try:
            reason = remote_unlock.event_reason(
                str(command.args.get("reason") or command.kind.value), command.created_by)
        except InvalidInputError as exc:
            log.warning("remote unlock refused, the door stays locked: %s", exc)
            command_table.finish(self.sessions, command.id, ok=False, message=str(exc))
            return
        started = time.monotonic()
        with self._logic_lock:
            actions = self._logic().remote_unlock(self.clock.monotonic(), reason)
        self._execute(actions)
        self._count_decisions(actions, started, "remote")
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
        if self.quick_engine is not self.engine:
            self.quick_engine.dispose()
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
        """The status file (always: it needs no database), then the status row.

        :raises SQLAlchemyError: the row could not be written.
        """
        if not self.door_id:
            return
        logic = self.logic
        storage = self.recorder.fault_text() if self.recorder is not None else None
        faults = [self.sensor_health.fault, self.door_health.fault, storage]
        now = self.clock.now()
        sensor, board = self.sensor_health, self.door_health
        board_online = board.connected if online is None else online
        sensor_online = sensor.connected and online is not False
        if sensor_online:
            self._seen["sensor"] = now
        if board_online:
            self._seen["board"] = now
        database, kept, database_seen = (self.recorder.database_problem()
                                         if self.recorder is not None else (None, 0, now))
        report = status.Report(
            at=now,
            board_online=board_online,
            sensor_online=sensor_online,
            locked=logic is None or logic.unlocked_until <= self.clock.monotonic(),
            door_open=None if logic is None else logic.door_open_since is not None,
            fault="; ".join(f for f in faults if f) or None,
            sensor_problem=None if sensor_online else (sensor.problem or _STOPPED),
            sensor_seen_at=self._seen.get("sensor"),
            board_problem=None if board_online else (board.problem or _STOPPED),
            board_seen_at=self._seen.get("board"),
            database_problem=database, database_seen_at=database_seen, journal_pending=kept)
        if self.status_file is not None:
            try:
                self.status_file.write(report)
            except OSError as exc:
                log.warning("could not write the status file: %s", exc)
        with self.quick_sessions.begin() as session:
            status.write_report(session, self.door_id, report)
        if self.recorder is not None:
            self.recorder.succeeded()

    def _recorder(self) -> EventRecorder | SpoolRecorder:
        if self.recorder is None:
            raise DaemonRefusedError("the daemon ran before its preflight")
        return self.recorder

    def _logic(self) -> DoorLogic:
        if self.logic is None:
            raise DaemonRefusedError("the daemon ran before its preflight")
        return self.logic


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]
