"""The privacy scheduler: one idempotent reconciliation at start and at a fixed interval.

Why no one-shot job per purge ("purge customer X at midnight")? APScheduler 3's default
``misfire_grace_time`` is 1 s: a one-shot job that fell due while the Pi was switched off is
reported missed and dropped, so the purge would never run. And a job killed mid-run (power
cut, kill -9) is never retried, because it leaves the job store when it starts, so the purge
would stay half-done. Instead, what is due is derived from the data (contracts, retention
periods) every time, the work is idempotent and resumable (``accessd.privacy.purge``,
``accessd.privacy.retention``), and the scheduler only triggers that reconciliation: at start
(``next_run_time=now``) and then every ``purge.check_interval_minutes`` (at most hourly).

A purge is certified only once every door confirmed its sensor dropped the customer's
templates (``awaiting_doors``, see ``accessd.privacy.purge``): while one waits, a one-off
follow-up reconciliation is scheduled ``FOLLOW_UP_SECONDS`` later, so the certificate does not
wait for the next hourly run once the doors have done their part. Each further follow-up waits
twice as long, up to the interval: a door that stays down costs a handful of extra runs.

Jobs have fixed ids with ``replace_existing=True`` (declaring them again never duplicates them),
``misfire_grace_time=None`` (late is better than never) and ``coalesce=True`` (runs missed while
the process was suspended collapse into one). The store is in memory: the jobs are declared
anew at every start, and nothing is lost with it. One worker thread: the daemon runs on a
512 MB Pi, and two reconciliations must never run at once anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.backup.housekeeping import backup_destruction, backup_housekeeping
from accessd.clock import SiteClock
from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.db import checkpoint_wal
from accessd.errors import StorageError
from accessd.models import PurgeRecord, PurgeStatus, utcnow
from accessd.privacy.purge import certificate_dir, run_due_purges
from accessd.privacy.retention import enforce_retention

log = logging.getLogger(__name__)

RECONCILE_JOB_ID = "privacy-reconcile"
FOLLOW_UP_JOB_ID = "privacy-reconcile-follow-up"
FOLLOW_UP_SECONDS = 30  # while a purge waits for its doors
MAX_INTERVAL_MINUTES = 60  # the issue promises at least hourly


@dataclass(frozen=True, slots=True)
class ExtraJob:
    """Another periodic job run by the same scheduler (same rules: fixed id, at start too)."""

    id: str
    func: Callable[[], object]
    interval_minutes: int
    run_at_start: bool = True


@dataclass
class JobStats:
    """How one job's runs went (for the daemon's metrics)."""

    succeeded: int = 0
    failed: int = 0
    last_success: dt.datetime | None = None


@dataclass
class ReconcileReport:
    """What one reconciliation did, and what failed (each part runs even if another failed)."""

    purged: list[PurgeRecord] = field(default_factory=list)
    retention: dict[str, int] = field(default_factory=dict)
    backups_pruned: object = None
    awaiting_doors: int = 0  # purges still waiting for a door to confirm its sensor
    errors: list[str] = field(default_factory=list)


class PrivacyScheduler:
    """Runs due purges, retention and backup pruning: at start, then at a fixed interval.

    :param clock: the wall clock deciding what is due (tests inject one); the scheduler's own
        timing is real time.
    :param on_purged: called with the records a run completed (e.g. to reconcile the sensor now).
    :param prune_backups: the backup directory's part, given ``now``; by default
        ``accessd.backup.housekeeping.backup_housekeeping`` (backups older than
        ``backup.max_age_months`` deleted, keys of destroyed subjects dropped from the backup
        key file). A purge destroys the customer's backup keys before it counts as complete.
    :param follow_up_seconds: while a purge waits for its doors, reconcile again this soon.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        provider: KeyProvider,
        engine: Engine,
        clock: Callable[[], dt.datetime] = utcnow,
        on_purged: Callable[[list[PurgeRecord]], None] | None = None,
        extra_jobs: Sequence[ExtraJob] = (),
        *,
        prune_backups: Callable[[dt.datetime], object] | None = None,
        follow_up_seconds: float = FOLLOW_UP_SECONDS,
    ) -> None:
        self.settings = settings
        self._sessions, self._provider, self._engine = sessions, provider, engine
        self._clock, self._on_purged = clock, on_purged
        self._prune_backups = prune_backups or (
            lambda now: backup_housekeeping(settings, sessions, provider, now))
        self._destroy_backups = backup_destruction(settings, sessions, provider, clock)
        self._extra_jobs = tuple(extra_jobs)
        self._first_follow_up = self._follow_up = dt.timedelta(seconds=follow_up_seconds)
        self._lock = threading.Lock()  # run_now() from another thread waits for the job
        self._scheduler: BackgroundScheduler | None = None
        self.last_report: ReconcileReport | None = None
        self.job_stats: dict[str, JobStats] = {}
        self._last_run_failed = False

    @property
    def interval_minutes(self) -> int:
        return min(self.settings.purge.check_interval_minutes, MAX_INTERVAL_MINUTES)

    def jobs(self) -> list[Job]:
        """The declared jobs (empty while stopped), for ``accessd doctor`` and tests."""
        return self._scheduler.get_jobs() if self._scheduler is not None else []

    def start(self) -> None:
        """Declare the jobs and start; the reconciliation runs at once, then every interval."""
        if self._scheduler is not None:
            return
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=dt.UTC,
        )
        now = dt.datetime.now(dt.UTC)
        scheduler.add_job(self._job, IntervalTrigger(minutes=self.interval_minutes,
                                                      timezone=dt.UTC),
                          **_job_options(RECONCILE_JOB_ID, now))
        for job in self._extra_jobs:
            scheduler.add_job(job.func, IntervalTrigger(minutes=job.interval_minutes,
                                                         timezone=dt.UTC),
                              **_job_options(job.id, now if job.run_at_start else None))
        scheduler.add_listener(self._count_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        self._scheduler = scheduler
        log.info("privacy scheduler started: due purges and retention checked now and every "
                 "%d minutes", self.interval_minutes)

    def stop(self, wait: bool = True) -> None:
        """Stop; with ``wait``, a running reconciliation finishes first (it would resume anyway)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None

    def run_now(self) -> ReconcileReport:
        """Reconcile in the calling thread, now (``accessd purge --now``, tests)."""
        with self._lock:
            report = self._reconcile()
        self.last_report = report
        if report.purged and self._on_purged is not None:
            self._on_purged(report.purged)
        return report

    def _count_run(self, event: JobExecutionEvent) -> None:
        """A job ran: count it; a reconciliation that caught its own errors failed too."""
        job = RECONCILE_JOB_ID if event.job_id == FOLLOW_UP_JOB_ID else event.job_id
        stats = self.job_stats.setdefault(job, JobStats())
        if event.exception is not None or (job == RECONCILE_JOB_ID and self._last_run_failed):
            stats.failed += 1
        else:
            stats.succeeded += 1
            stats.last_success = dt.datetime.now(dt.UTC)

    def _job(self) -> None:
        self._last_run_failed = True
        try:
            report = self.run_now()
        except Exception:  # never let the job die silently: log it, the next run retries
            log.exception("privacy reconciliation failed; it runs again at the next interval")
            return
        self._last_run_failed = bool(report.errors)
        scheduler = self._scheduler
        if not report.awaiting_doors:
            self._follow_up = self._first_follow_up
        elif scheduler is not None:
            when = dt.datetime.now(dt.UTC) + self._follow_up
            scheduler.add_job(self._job, DateTrigger(run_date=when, timezone=dt.UTC),
                              **_job_options(FOLLOW_UP_JOB_ID, None))
            self._follow_up = min(self._follow_up * 2,
                                  dt.timedelta(minutes=self.interval_minutes))

    def _reconcile(self) -> ReconcileReport:
        report = ReconcileReport()
        now = self._clock()
        try:
            report.purged = run_due_purges(
                self._sessions, self._provider, self._engine, now,
                site_timezone=self.settings.access.timezone,
                certificate_dir=certificate_dir(self.settings),
                destroy_backups=self._destroy_backups)
        except Exception as exc:  # retention must still run; the purge resumes next time
            log.exception("due purges failed")
            report.errors.append(f"purge: {exc}")
        try:
            with self._sessions() as session:
                report.awaiting_doors = int(session.scalar(
                    select(func.count()).select_from(PurgeRecord)
                    .where(PurgeRecord.status == PurgeStatus.AWAITING_DOORS)) or 0)
        except Exception as exc:
            report.errors.append(f"purge: {exc}")
        try:
            report.retention = enforce_retention(
                self._sessions, now, self.settings.retention,
                today=SiteClock.of(self.settings, wall=lambda: now).today())
        except Exception as exc:
            log.exception("retention failed")
            report.errors.append(f"retention: {exc}")
        try:
            report.backups_pruned = self._prune_backups(now)
        except Exception as exc:
            log.exception("backup housekeeping failed")
            report.errors.append(f"backups: {exc}")
        if any(report.retention.values()) and self._engine.dialect.name == "sqlite":
            try:  # deleted rows' old pages leave the -wal file
                checkpoint_wal(self._engine)
            except StorageError as exc:
                report.errors.append(f"checkpoint: {exc}")
        return report


def _job_options(job_id: str, next_run_time: dt.datetime | None) -> dict[str, Any]:
    options: dict[str, Any] = {"id": job_id, "name": job_id, "replace_existing": True,
                               "misfire_grace_time": None, "coalesce": True,
                               "max_instances": 1}
    if next_run_time is not None:
        options["next_run_time"] = next_run_time
    return options
