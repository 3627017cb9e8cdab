"""Retention: each category goes once past its period, and the history still verifies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import ConfigError, RetentionPeriod, RetentionSettings, load_settings
from accessd.crypto import FileKeyProvider
from accessd.history.chain import verify_chains
from accessd.models import (
    AccessEvent,
    AuditOutcome,
    AuditRecord,
    DataSubjectRequest,
    EventChain,
    EventKind,
    LoginAttempt,
    LoginOutcome,
    PersonEvent,
    RequestKind,
    RequestStatus,
)
from accessd.privacy.retention import BatchSizer, enforce_retention
from tests.privacy.seed import access, add_customer, enrol

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def _seed(sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    with sessions.begin() as session:
        customer = add_customer(session, "Long Contract BV")
        person, _ = enrol(session, keyring, customer, "Rita Retain")
        for days in (800, 500, 400, 30, 1):  # the customer's history: kept until contract end
            access(session, customer, person, _ago(days))
        for days, kind in ((300, EventKind.UNKNOWN_FINGER), (250, EventKind.TAMPER),
                           (200, EventKind.UNKNOWN_FINGER), (150, EventKind.UNKNOWN_FINGER),
                           (20, EventKind.UNKNOWN_FINGER)):
            access(session, None, None, _ago(days), kind)
        for days in (400, 366, 364, 10):
            session.add(AuditRecord(at=_ago(days), actor="op", action="person.edit",
                                    outcome=AuditOutcome.SUCCESS))
            session.add(LoginAttempt(at=_ago(days), username="op", source_address="192.0.2.1",
                                     outcome=LoginOutcome.SUCCESS))
        for received, closed_days, status in (
                (dt.date(2024, 1, 1), 400, RequestStatus.CLOSED),
                (dt.date(2024, 1, 1), 100, RequestStatus.CLOSED),
                (dt.date(2025, 12, 15), None, RequestStatus.OPEN),  # 6 months ago today: goes
                (dt.date(2025, 12, 16), None, RequestStatus.OPEN)):  # kept one day more
            session.add(DataSubjectRequest(
                kind=RequestKind.ACCESS, requester_name="Rita Retain",
                received_on=received, due_on=received + dt.timedelta(days=31), status=status,
                closed_at=_ago(closed_days) if closed_days is not None else None))


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_retention_deletes_only_what_is_past_its_period_and_the_history_still_verifies(
        sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    _seed(sessions, keyring)
    deleted = enforce_retention(sessions, NOW, RetentionSettings(), batch_size=2)
    # Facility chain: 6 months back is 2025-12-15; its three oldest events go (the tamper
    # event with them: the chain is pruned from its oldest end).
    assert deleted == {"access_history": 0, "unknown_finger_events": 3, "staff_audit_log": 2,
                       "login_history": 2, "data_subject_requests": 1,
                       "open_data_subject_requests": 1}
    with sessions() as session:
        assert list(verify_chains(session)) == []
        facility = session.scalars(select(EventChain).where(EventChain.customer_id.is_(None))).one()
        assert (facility.anchor_seq, facility.last_seq) == (3, 5)
        assert _count(session, AccessEvent) == 5 + 2
        assert _count(session, AuditRecord) == _count(session, LoginAttempt) == 2
        statuses = session.scalars(select(DataSubjectRequest.status)).all()
        assert sorted(statuses) == [RequestStatus.CLOSED, RequestStatus.OPEN]
    assert set(enforce_retention(sessions, NOW).values()) == {0}  # idempotent


def test_access_history_with_a_period_loses_only_its_oldest_events(
        sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    _seed(sessions, keyring)
    retention = dataclasses.replace(RetentionSettings(),
                                    access_history=RetentionPeriod(1, "year"))
    assert enforce_retention(sessions, NOW, retention)["access_history"] == 3
    with sessions() as session:
        assert list(verify_chains(session)) == []
        kept = session.scalars(select(AccessEvent.at).where(
            AccessEvent.customer_id.is_not(None))).all()
        assert sorted(kept) == [_ago(30), _ago(1)]
        # The per-person index lost exactly the deleted events.
        assert sorted(session.scalars(select(PersonEvent.at))) == sorted(session.scalars(
            select(AccessEvent.at).where(AccessEvent.person_id.is_not(None))))


def test_an_old_event_recorded_after_a_newer_one_waits_so_the_chain_stays_whole(
        sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for days in (400, 10, 300):  # a clock set back wrote the third one
            access(session, None, None, _ago(days), EventKind.UNKNOWN_FINGER)
    assert enforce_retention(sessions, NOW)["unknown_finger_events"] == 1
    with sessions() as session:
        assert list(verify_chains(session)) == []
        assert _count(session, AccessEvent) == 2


@pytest.mark.parametrize("missing", ["unknown_finger_events", "staff_audit_log",
                                     "login_history", "data_subject_requests",
                                     "access_history"])
def test_a_config_that_leaves_a_category_without_retention_is_refused(
        tmp_path: Path, missing: str) -> None:
    periods = {"access_history": "contract_end", "unknown_finger_events": "6 months",
               "staff_audit_log": "1 year", "login_history": "1 year",
               "data_subject_requests": "1 year"}
    del periods[missing]
    config = tmp_path / "accessd.toml"
    config.write_text("[retention]\n" + "".join(f'{k} = "{v}"\n' for k, v in periods.items()))
    with pytest.raises(ConfigError, match=f"retention.{missing} is missing"):
        load_settings(config, env={})


def test_batches_grow_while_fast_and_shrink_when_they_hold_the_lock_too_long() -> None:
    fast = BatchSizer(cap=12_000, seconds=60.0)
    sizes = []
    for _ in range(4):
        with fast.timed() as size:
            sizes.append(size)
    assert sizes == [5_000, 10_000, 12_000, 12_000]  # at most twofold, never past the cap
    slow = BatchSizer(cap=250_000, seconds=0.001)
    with slow.timed():
        time.sleep(0.05)
    assert slow.size == 100  # the floor: progress even on a very slow card
