"""The sensor thread's work besides identifying: typed jobs, queued, run one at a time.

pyfingerprint is not thread-safe, so everything that needs the sensor runs on the sensor thread:
the daemon queues a job (``WipeSensor`` on tamper, ``ReconcileLibrary`` at start, after a
reconnect, after a tamper alarm is cleared or on a ``resync`` command, ``EnrolFinger`` on an
``enroll`` command) and the sensor thread runs the next one between two identifications.
A job that answers a command finishes it (``done`` or ``failed`` with the reason).
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.door import command_table
from accessd.door.logic import WipeSensor
from accessd.errors import EnrollmentError
from accessd.fingers.enrolment import EnrollmentPlan, door_refusal, enrol
from accessd.fingers.library import forget_library, reconcile_sensor
from accessd.models import DeviceCommand, FingerLabel
from accessd.progress import no_progress
from firmware_bridge.errors import NoFingerError, PoorImageError, SensorError
from firmware_bridge.sensor import Sensor


@dataclass(frozen=True, slots=True)
class ReconcileLibrary:
    """Bring the sensor's library in step with the database.

    ``command_id``: the ``resync`` command it answers; none when the daemon asks itself.
    ``snapshot_version``: a site door's snapshot version, brought current just before (what a
    purge asked for left the snapshot first); reported with the result.
    """

    command_id: int | None = None
    snapshot_version: int | None = None


@dataclass(frozen=True, slots=True)
class EnrolFinger:
    """Enrol one finger, answering ``command_id`` (progress, then done or failed)."""

    command_id: int
    plan: EnrollmentPlan

    @classmethod
    def from_command(cls, command: DeviceCommand, settings: Settings) -> EnrolFinger:
        """The job an ``enroll`` command asks for; the settings give what it leaves out.

        :raises KeyError, ValueError: the command lacks a field or has a bad value.
        """
        args, enrollment = command.args, settings.enrollment
        if command.person_id is None:
            raise ValueError("it names no person")
        return cls(command.id, EnrollmentPlan(
            person_id=command.person_id, label=FingerLabel(args["finger"]),
            captures=int(args.get("captures", enrollment.captures)),
            finger_timeout=float(args.get("timeout", enrollment.capture_timeout_seconds)),
            enrolled_by=str(args.get("by") or "")))


Job = WipeSensor | ReconcileLibrary | EnrolFinger


class JobQueue:
    """Jobs waiting for the sensor thread, oldest first; ``first`` jumps the queue.

    Any thread may add, only the sensor thread takes (a deque's appends and pops are atomic).
    """

    def __init__(self) -> None:
        self._jobs: collections.deque[Job] = collections.deque()

    def add(self, job: Job) -> None:
        self._jobs.append(job)

    def first(self, job: Job) -> None:
        self._jobs.appendleft(job)

    def take(self) -> Job | None:
        try:
            return self._jobs.popleft()
        except IndexError:
            return None

    def __len__(self) -> int:
        return len(self._jobs)


@dataclass
class SensorJobs:
    """Runs jobs on one door's sensor (on the sensor thread only).

    :param tampered: true while the reader's tamper alarm is open: its library stays empty.
    """

    sensor: Sensor
    sessions: sessionmaker[Session]
    provider: KeyProvider
    door_id: int
    max_fingers: int
    tampered: Callable[[], bool]
    today: Callable[[], dt.date]
    """The site's date now: no finger is enrolled for a customer whose contract is over."""
    after_resync: Callable[[], None] = lambda: None
    """Called once a commanded resync is done: data left the database (a purge, an erasure, a
    withdrawal) and the daemon drops what it may still hold of it."""
    alive: Callable[[float], None] = lambda waiting: None
    """Called as a long job goes on (each template uploaded, each step of an enrolment), with
    how long its next step may wait for a person: the watchdog's heartbeat of the sensor loop."""

    def run(self, job: Job) -> None:
        """Carry out ``job``.

        :raises SensorError: a sensor fault (the sensor thread reconnects); a command the job
            answers is finished first when the fault happened during an enrolment.
        """
        if isinstance(job, WipeSensor):
            self.sensor.wipe()
            forget_library(self.sessions, self.door_id)
        elif isinstance(job, ReconcileLibrary):
            self._reconcile(job)
        elif isinstance(job, EnrolFinger):
            self._enrol(job)
        else:
            assert_never(job)

    def _reconcile(self, job: ReconcileLibrary) -> None:
        if self.tampered():
            return  # the library stays empty until staff clear the tamper alarm
        counts = (command_table.CommandProgress(self.sessions, job.command_id, "resync",
                                                "templates")
                  if job.command_id is not None else no_progress)

        def progress(done: int, total: int | None) -> None:
            self.alive(0.0)  # each template moved is the sensor loop turning (the watchdog)
            counts(done, total)

        report = reconcile_sensor(self.sensor, self.sessions, self.provider, self.door_id,
                                  progress=progress)
        if job.command_id is not None:
            command_table.finish(self.sessions, job.command_id, ok=True,
                                 message=f"sensor in step: {report.uploaded} uploaded, "
                                         f"{report.deleted} wiped, {report.kept} kept",
                                 result=({**report.__dict__,
                                          "snapshot_version": job.snapshot_version}
                                         if job.snapshot_version is not None
                                         else report.__dict__))
            self.after_resync()

    def _enrol(self, job: EnrolFinger) -> None:
        command_id = job.command_id
        if self.tampered():  # the alarm row may lag the board's report by a moment
            with self.sessions() as session:
                refusal = door_refusal(session, self.door_id)
            message = str(refusal) if refusal is not None else (
                "the reader's housing was opened: its sensor was wiped; inspect the reader "
                "and clear the tamper alarm before enrolling here")
            command_table.finish(self.sessions, command_id, ok=False, message=message)
            return

        def progress(text: str) -> None:
            self.alive(job.plan.finger_timeout)
            command_table.report(self.sessions, command_id, text)

        self.alive(job.plan.finger_timeout)
        try:
            finger = enrol(self.sensor, self.sessions, self.provider, self.door_id, job.plan,
                           progress, max_fingers=self.max_fingers, today=self.today)
        except (EnrollmentError, SensorError) as exc:
            command_table.finish(self.sessions, command_id, ok=False, message=str(exc))
            if isinstance(exc, SensorError) and not isinstance(exc, PoorImageError | NoFingerError):
                raise  # a real fault: the sensor thread reconnects
            return
        command_table.finish(self.sessions, command_id, ok=True,
                             message="the finger is stored on this door's sensor",
                             result={"slot": finger.sensor_slot, "finger_id": finger.id})
        # Other doors' sensors need the new template too.
        with self.sessions.begin() as session:
            command_table.request_resync_everywhere(session, created_by="accessd",
                                                    why="new finger enrolled",
                                                    except_door=self.door_id)
