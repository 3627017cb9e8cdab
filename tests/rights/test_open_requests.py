"""A data-subject request never closed does not stay forever: it is deleted
``retention.open_data_subject_requests`` after receipt by the retention reconciliation, after
``accessd requests`` (and the panel) reminded staff of it for the last 30 days."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import OPEN_REQUEST_REMINDER_DAYS, RetentionPeriod, Settings, load_settings
from accessd.crypto import FileKeyProvider
from accessd.models import DataSubjectRequest, RequestKind
from accessd.privacy.scheduler import PrivacyScheduler
from accessd.rights.requests import close_request, open_requests, record_request
from tests.customers.conftest import cli, write_config

RECEIVED = dt.date(2025, 8, 31)
ENDS = dt.date(2026, 2, 28)  # six calendar months later, clamped to February's last day


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(11), tzinfo=dt.UTC)


@pytest.fixture
def requests(sessions: sessionmaker[Session]) -> dict[str, int]:
    """A forgotten open request, a younger open one, and one closed long ago."""
    with sessions.begin() as session:
        forgotten = record_request(session, RequestKind.ACCESS, RECEIVED,
                                   requester_name="Forgotten Requester")
        younger = record_request(session, RequestKind.ERASURE, dt.date(2026, 1, 15),
                                 requester_name="Younger Requester")
        closed = record_request(session, RequestKind.ACCESS, dt.date(2025, 8, 1),
                                requester_name="Answered Requester")
        close_request(closed, "export sent", now=_noon(dt.date(2025, 8, 20)))
        return {"forgotten": forgotten.id, "younger": younger.id, "closed": closed.id}


def test_an_open_request_is_deleted_after_reminders(
        requests: dict[str, int], tmp_path: Path, db_path: Path, engine: Engine,
        sessions: sessionmaker[Session], keys: FileKeyProvider,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cfg").mkdir()
    config = write_config(tmp_path / "cfg", f"sqlite:///{db_path}")
    now = [_noon(ENDS - dt.timedelta(days=OPEN_REQUEST_REMINDER_DAYS + 1))]
    accessd = cli(config, capsys, wall=lambda: now[0])

    quiet = accessd("requests")  # 31 days before: no reminder yet
    assert quiet.code == 0 and "REMINDER" not in quiet.out

    now[0] = _noon(ENDS - dt.timedelta(days=12))
    reminded = accessd("requests")
    assert (f"REMINDER: request {requests['forgotten']} (received 2025-08-31) was never "
            "closed: it is deleted on 2026-02-28 (in 12 days), 6 months after receipt") \
        in reminded.out
    assert f"request {requests['younger']} " not in reminded.out.split("open, ")[1]

    settings = load_settings(config)
    day_before = PrivacyScheduler(settings, sessions, keys, engine,
                                  clock=lambda: _noon(ENDS - dt.timedelta(days=1))).run_now()
    assert day_before.retention["open_data_subject_requests"] == 0
    report = PrivacyScheduler(settings, sessions, keys, engine,
                              clock=lambda: _noon(ENDS)).run_now()
    assert report.retention["open_data_subject_requests"] == 1 and not report.errors
    with sessions() as session:
        kept = set(session.scalars(select(DataSubjectRequest.id)))
    assert kept == {requests["younger"], requests["closed"]}  # the closed: 1 year from closing


def test_open_requests_are_listed_with_the_day_they_go(
        requests: dict[str, int], sessions: sessionmaker[Session]) -> None:
    period = RetentionPeriod(6, "month")
    with sessions() as session:
        listed = {item.request.id: item for item in open_requests(
            session, ENDS - dt.timedelta(days=OPEN_REQUEST_REMINDER_DAYS), period)}
    forgotten, younger = listed[requests["forgotten"]], listed[requests["younger"]]
    assert (forgotten.deleted_on, forgotten.days_to_deletion, forgotten.reminder) == (
        ENDS, OPEN_REQUEST_REMINDER_DAYS, True)
    assert (younger.deleted_on, younger.reminder) == (dt.date(2026, 7, 15), False)
    assert requests["closed"] not in listed


def test_a_retention_table_written_before_the_open_request_period_still_loads(
        tmp_path: Path) -> None:
    config = tmp_path / "accessd.toml"
    config.write_text('[retention]\naccess_history = "contract_end"\n'
                      'unknown_finger_events = "6 months"\nstaff_audit_log = "1 year"\n'
                      'login_history = "1 year"\ndata_subject_requests = "1 year"\n')
    retention = load_settings(config, env={}).retention
    assert retention.open_data_subject_requests == Settings().retention \
        .open_data_subject_requests == RetentionPeriod(6, "month")
    shorter = dataclasses.replace(retention, open_data_subject_requests=RetentionPeriod(
        4, "month"))
    assert shorter.open_data_subject_requests.end(RECEIVED) == dt.date(2025, 12, 31)
