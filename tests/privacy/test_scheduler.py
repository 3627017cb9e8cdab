"""The scheduler only triggers an idempotent reconciliation: at start, then at least hourly."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings
from accessd.crypto import FileKeyProvider
from accessd.models import Customer, PurgeRecord, PurgeStatus
from accessd.privacy.purge import verify_certificate
from accessd.privacy.scheduler import RECONCILE_JOB_ID, ExtraJob, PrivacyScheduler, ReconcileReport
from tests.privacy.seed import add_customer, add_door, confirm_resyncs, enrol

UTC = dt.UTC


class Clock:
    """A wall clock the test moves; the scheduler's own timing stays real."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _wait_for(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the scheduler did not run in time"
        time.sleep(0.02)


def test_a_purge_due_while_the_daemon_was_stopped_runs_at_the_next_start(
        settings: Settings, sessions: sessionmaker[Session], keyring: FileKeyProvider,
        engine: Engine) -> None:
    with sessions.begin() as session:
        customer = add_customer(session, "Ends BV", contract_end=dt.date(2025, 6, 30))
        enrol(session, keyring, customer, "Eva Einde")
    clock = Clock(dt.datetime(2025, 6, 30, 12, 0, tzinfo=UTC))  # its last day
    purged: list[PurgeRecord] = []

    before = PrivacyScheduler(settings, sessions, keyring, engine, clock, purged.extend)
    before.start()
    _wait_for(lambda: before.last_report is not None)
    before.stop()
    assert purged == []

    clock.now = dt.datetime(2025, 7, 4, 9, 0, tzinfo=UTC)  # the Pi was off across the due time
    after = PrivacyScheduler(settings, sessions, keyring, engine, clock, purged.extend)
    after.start()
    try:
        _wait_for(lambda: purged)
    finally:
        after.stop()
    assert [r.status for r in purged] == [PurgeStatus.COMPLETED]
    with sessions() as session:
        assert session.scalars(select(Customer)).all() == []
    [certificate] = (settings.data_dir / "purge-certificates").iterdir()
    assert verify_certificate(certificate, provider=keyring).valid


def test_jobs_have_fixed_ids_run_late_rather_than_never_and_run_at_least_hourly(
        settings: Settings, sessions: sessionmaker[Session], keyring: FileKeyProvider,
        engine: Engine) -> None:
    ran: list[str] = []
    extra = ExtraJob("backup-nightly", lambda: ran.append("backup"), interval_minutes=1440)
    scheduler = PrivacyScheduler(settings, sessions, keyring, engine, extra_jobs=[extra])
    scheduler.start()
    try:
        _wait_for(lambda: scheduler.last_report is not None and ran)
        jobs = {job.id: job for job in scheduler.jobs()}
    finally:
        scheduler.stop()
    assert set(jobs) == {RECONCILE_JOB_ID, "backup-nightly"}
    for job in jobs.values():
        assert job.misfire_grace_time is None and job.coalesce and job.max_instances == 1
    assert jobs[RECONCILE_JOB_ID].trigger.interval <= dt.timedelta(hours=1)
    assert scheduler.jobs() == []


def test_run_now_reports_each_part_and_one_failure_does_not_stop_the_others(
        settings: Settings, sessions: sessionmaker[Session], keyring: FileKeyProvider,
        engine: Engine) -> None:
    asked: list[dt.datetime] = []

    def prune_backups(now: dt.datetime) -> int:
        asked.append(now)
        return 2

    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    scheduler = PrivacyScheduler(settings, sessions, keyring, engine, lambda: now,
                                 prune_backups=prune_backups)
    report = scheduler.run_now()
    assert report == ReconcileReport(purged=[], retention=report.retention, backups_pruned=2)
    assert set(report.retention) == {"access_history", "unknown_finger_events",
                                     "staff_audit_log", "login_history",
                                     "data_subject_requests", "open_data_subject_requests"}
    assert asked == [now]

    def broken(now: dt.datetime) -> int:
        raise OSError("backup disk gone")

    failing = PrivacyScheduler(settings, sessions, keyring, engine, lambda: now,
                               prune_backups=broken)
    report = failing.run_now()
    assert report.errors == ["backups: backup disk gone"]
    assert report.retention  # retention still ran


def test_a_purge_waiting_for_its_doors_is_certified_soon_after_they_confirm(
        settings: Settings, sessions: sessionmaker[Session], keyring: FileKeyProvider,
        engine: Engine) -> None:
    with sessions.begin() as session:
        customer = add_customer(session, "Ends BV", contract_end=dt.date(2025, 6, 30))
        add_door(session, "main", [customer])
        enrol(session, keyring, customer, "Eva Einde")
    scheduler = PrivacyScheduler(settings, sessions, keyring, engine,
                                 Clock(dt.datetime(2025, 7, 4, 9, 0, tzinfo=UTC)),
                                 follow_up_seconds=0.2)
    scheduler.start()
    try:
        _wait_for(lambda: scheduler.last_report is not None)
        assert scheduler.last_report is not None and scheduler.last_report.awaiting_doors == 1
        with sessions() as session:
            assert session.scalars(select(PurgeRecord.status)).one() is (
                PurgeStatus.AWAITING_DOORS)
        confirm_resyncs(sessions)  # the door's daemon did its part: no hourly wait
        _wait_for(lambda: _status(sessions) is PurgeStatus.COMPLETED)
    finally:
        scheduler.stop()
    [certificate] = (settings.data_dir / "purge-certificates").iterdir()
    assert verify_certificate(certificate, provider=keyring).valid


def _status(sessions: sessionmaker[Session]) -> PurgeStatus:
    with sessions() as session:
        return session.scalars(select(PurgeRecord.status)).one()


def test_the_daemons_reconciliation_deletes_backups_past_the_cap_and_keeps_young_ones(
        settings: Settings, sessions: sessionmaker[Session], keyring: FileKeyProvider,
        engine: Engine) -> None:
    from types import SimpleNamespace

    from accessd.backup.archive import create_backup
    from accessd.cli.door import _privacy_scheduler

    now = dt.datetime.now(UTC)
    with sessions.begin() as session:
        enrol(session, keyring, add_customer(session, "Stays BV"), "Sam Stays")
    old = create_backup(settings, engine, keyring, now - dt.timedelta(days=400))
    young = create_backup(settings, engine, keyring, now - dt.timedelta(days=10))

    # What `accessd run` starts, as it starts it.
    ctx = SimpleNamespace(sessions=sessions, keys=keyring, engine=engine)
    daemon = _privacy_scheduler(settings, ctx, None)  # type: ignore[arg-type]
    assert isinstance(daemon, PrivacyScheduler)
    try:
        _wait_for(lambda: daemon.last_report is not None)
    finally:
        daemon.stop()

    assert daemon.last_report is not None and daemon.last_report.errors == []
    assert not old.exists() and young.exists()
    assert daemon.last_report.backups_pruned.pruned == [old]  # type: ignore[attr-defined]
