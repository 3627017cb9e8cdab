"""Recording the door's events through database faults: straight into the database while it is
healthy (three statements, nothing more), into the reserve journal while it is locked, read-only
or gone, and back into the database in order, exactly once, with the chains intact."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import create_db_engine, make_sessionmaker
from accessd.door.journal import ReserveJournal
from accessd.door.logic import Record
from accessd.door.recorder import ALARM_AFTER, EVENT_BUSY_MS, EventRecorder
from accessd.errors import JournalError
from accessd.history.chain import unlink_people, verify_chains
from accessd.models import (
    AccessEvent,
    Alarm,
    AlarmKind,
    Customer,
    Door,
    EventKind,
    EventMethod,
    JournalDrain,
    Person,
)
from tests.customers import seed


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        self.wall += dt.timedelta(milliseconds=1)  # every event at its own microsecond
        return self.wall

    def monotonic(self) -> float:
        return self.mono


class Faults:
    """A database that fails on demand, as the daemon's own connections would see it."""

    def __init__(self, db_path: Path, engine: Engine) -> None:
        self.db_path, self.engine = db_path, engine
        self.read_only = False
        event.listen(engine, "connect", self._on_connect)

    def _on_connect(self, dbapi: sqlite3.Connection, _record: object) -> None:
        dbapi.execute(f"PRAGMA query_only = {int(self.read_only)}")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Another process holds the write lock (``BEGIN IMMEDIATE``)."""
        other = sqlite3.connect(self.db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("COMMIT")
            other.close()

    @contextmanager
    def readonly(self) -> Iterator[None]:
        self.read_only = True
        self.engine.dispose()
        try:
            yield
        finally:
            self.read_only = False
            self.engine.dispose()

    @contextmanager
    def vanished(self) -> Iterator[None]:
        """The database's directory is gone (a pulled USB disk)."""
        directory = self.db_path.parent
        away = directory.with_name(directory.name + "-away")
        self.engine.dispose()
        directory.rename(away)
        try:
            yield
        finally:
            away.rename(directory)
            self.engine.dispose()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    (tmp_path / "db").mkdir()
    return tmp_path / "db" / "accessd.sqlite3"


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions.begin() as session:
        door = Door(name="main")
        session.add(door)
        acme = seed.customer(session)
        ada = seed.person(session, acme)
        session.flush()
        return {"door": door.id, "customer": acme.id, "person": ada.id,
                "customer_uuid": acme.public_id, "person_uuid": ada.public_id}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def quick(db_path: Path, engine: Engine) -> Iterator[Engine]:
    """The daemon's own engine: its writes wait EVENT_BUSY_MS for another writer."""
    eng = create_db_engine(f"sqlite:///{db_path}", busy_timeout_ms=EVENT_BUSY_MS)
    yield eng
    eng.dispose()


@pytest.fixture
def faults(db_path: Path, quick: Engine) -> Faults:
    return Faults(db_path, quick)


def make_recorder(quick: Engine, world: dict[str, Any], clock: Clock,
                  path: Path) -> EventRecorder:
    return EventRecorder(quick, world["door"], ReserveJournal.open(path, capacity=50),
                         now=clock.now, monotonic=clock.monotonic)


@pytest.fixture
def recorder(quick: Engine, world: dict[str, Any], clock: Clock,
             tmp_path: Path) -> Iterator[EventRecorder]:
    rec = make_recorder(quick, world, clock, tmp_path / "events.journal")
    yield rec
    assert rec.journal is not None
    rec.journal.close()


def granted(world: dict[str, Any]) -> Record:
    return Record(EventKind.GRANTED, EventMethod.FINGER, "allowed", world["customer"],
                  world["person"], world["customer_uuid"], world["person_uuid"])


def pulse_failed(world: dict[str, Any]) -> Record:
    return Record(EventKind.PULSE_FAILED, EventMethod.FINGER, "board_unreachable",
                  world["customer"], world["person"], world["customer_uuid"],
                  world["person_uuid"])


def events(sessions: sessionmaker[Session]) -> list[AccessEvent]:
    with sessions() as session:
        return list(session.scalars(select(AccessEvent).order_by(AccessEvent.id)))


def chains_hold(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return list(verify_chains(session)) == []


def test_a_healthy_database_takes_an_event_in_three_statements_and_no_journal_write(
        recorder: EventRecorder, world: dict[str, Any], quick: Engine,
        sessions: sessionmaker[Session]) -> None:
    statements: list[str] = []
    recorder.record(granted(world))  # the chain's first event also creates the chain

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(quick, "before_cursor_execute", count)
    ref = recorder.record(granted(world))
    event.remove(quick, "before_cursor_execute", count)
    assert ref is not None and ref.event_id is not None and ref.journal_seq is None
    verbs = [s.split()[0] for s in statements if not s.startswith("BEGIN")]
    assert verbs == ["SELECT", "INSERT", "UPDATE"]  # the chain's head, the event, the head
    assert recorder.journal is not None and recorder.journal.pending == 0
    assert recorder.healthy and recorder.fault_text() is None


@pytest.mark.parametrize("fault", ["locked", "readonly", "vanished"])
def test_events_the_database_refuses_go_to_the_journal_and_arrive_once_in_order(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults,
        sessions: sessionmaker[Session], fault: str) -> None:
    before = recorder.record(Record(EventKind.EXIT))
    with getattr(faults, fault)():
        opened = recorder.record(granted(world))
        assert opened is not None and opened.journal_seq == 1
        assert recorder.record(pulse_failed(world), about=opened) is not None
        assert recorder.record(Record(EventKind.DENIED, EventMethod.PIN, "wrong_pin")) is not None
        assert recorder.drain() == 0  # still failing: nothing moves, nothing is lost
        text = recorder.fault_text()
        assert text is not None and "database failing since" in text and "3 event(s)" in text
    assert recorder.drain() == 3
    assert recorder.drain() == 0
    assert before is not None
    recorded = events(sessions)
    assert [e.kind for e in recorded] == ["exit", "granted", "pulse_failed", "denied"]
    assert recorded[2].refers_to == recorded[1].id
    assert recorded[1].chain_id == recorded[2].chain_id
    assert recorded[1].person_id == world["person"]
    assert chains_hold(sessions) and recorder.healthy
    recorder.record(Record(EventKind.EXIT))  # straight to the database again
    assert recorder.journal is not None and recorder.journal.pending == 0


def test_once_an_event_went_to_the_journal_the_next_ones_follow_it_there(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults,
        sessions: sessionmaker[Session]) -> None:
    with faults.locked():
        first = recorder.record(granted(world))
    second = recorder.record(Record(EventKind.EXIT))  # the database is free, the order is not
    assert first is not None and second is not None and second.journal_seq == 2
    recorder.drain()
    assert [e.kind for e in events(sessions)] == ["granted", "exit"]


def test_an_outcome_recorded_after_its_opening_was_moved_still_names_it(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults,
        sessions: sessionmaker[Session]) -> None:
    with faults.locked():
        opened = recorder.record(granted(world))
    recorder.drain()
    recorder.record(pulse_failed(world), about=opened)  # straight in, the opening moved
    recorded = events(sessions)
    assert recorded[1].refers_to == recorded[0].id


def test_a_crash_between_moving_and_marking_moves_nothing_twice(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults, clock: Clock,
        quick: Engine, tmp_path: Path, sessions: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch) -> None:
    with faults.locked():
        opened = recorder.record(granted(world))
        recorder.record(pulse_failed(world), about=opened)
    assert recorder.journal is not None

    def crash(upto: int) -> int:
        raise JournalError("power lost before the records were marked")

    monkeypatch.setattr(recorder.journal, "consume", crash)
    assert recorder.drain() == 2  # committed, not marked
    recorder.journal.close()
    restarted = make_recorder(quick, world, clock, tmp_path / "events.journal")
    assert restarted.journal is not None and restarted.journal.pending == 2
    assert restarted.drain() == 0
    assert restarted.journal.pending == 0
    assert [e.kind for e in events(sessions)] == ["granted", "pulse_failed"]
    with sessions() as session:
        assert session.scalar(select(JournalDrain.drained_seq)) == 2
    restarted.journal.close()


def test_an_outcome_moved_after_a_restart_finds_its_opening_by_time(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults, clock: Clock,
        quick: Engine, tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    with faults.locked():
        opened = recorder.record(granted(world))
    recorder.drain()
    assert recorder.journal is not None
    recorder.journal.close()
    restarted = make_recorder(quick, world, clock, tmp_path / "events.journal")
    with faults.locked():
        restarted.record(Record(EventKind.EXIT))  # the journal is in use again
        restarted.record(pulse_failed(world), about=opened)
    restarted.drain()
    recorded = events(sessions)
    assert recorded[2].kind == "pulse_failed" and recorded[2].refers_to == recorded[0].id
    assert restarted.journal is not None
    restarted.journal.close()


def test_a_person_erased_or_customer_purged_before_the_move_leaves_an_anonymous_opening(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults,
        sessions: sessionmaker[Session]) -> None:
    with faults.locked():
        recorder.record(granted(world))
    with sessions.begin() as session:
        unlink_people(session, [world["person"]])
        session.execute(delete(Person).where(Person.id == world["person"]))
        session.execute(delete(Customer).where(Customer.id == world["customer"]))
    assert recorder.drain() == 1
    (opening,) = events(sessions)
    assert (opening.kind, opening.customer_id, opening.person_id) == ("granted", None, None)
    assert opening.subject_digest is None and chains_hold(sessions)


def test_a_lasting_trouble_raises_an_alarm_once_the_database_takes_it(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults, clock: Clock,
        sessions: sessionmaker[Session]) -> None:
    quick_sessions: Callable[[], Session] = make_sessionmaker(recorder.engine)
    with faults.locked():
        recorder.record(granted(world))
        recorder.tick(quick_sessions)
        clock.mono += ALARM_AFTER
        recorder.tick(quick_sessions)  # due, but the alarm row cannot be written yet
    with sessions() as session:
        assert session.scalars(select(Alarm)).all() == []
    recorder.tick(quick_sessions)
    recorder.drain()
    recorder.tick(quick_sessions)
    with sessions() as session:
        (alarm,) = session.scalars(select(Alarm)).all()
        assert alarm.kind is AlarmKind.DATABASE and "database is locked" in (alarm.detail or "")
    kinds = [e.kind for e in events(sessions)]
    assert kinds == ["granted", "fault", "recovered"]
    assert "2 event(s) moved" in (events(sessions)[-1].reason or "")  # granted, fault


def test_a_short_lock_passes_through_the_journal_without_an_alarm(
        recorder: EventRecorder, world: dict[str, Any], faults: Faults, clock: Clock,
        sessions: sessionmaker[Session]) -> None:
    quick_sessions: Callable[[], Session] = make_sessionmaker(recorder.engine)
    with faults.locked():
        recorder.record(granted(world))
    clock.mono += 1
    recorder.drain()
    recorder.tick(quick_sessions)
    assert [e.kind for e in events(sessions)] == ["granted"]
    with sessions() as session:
        assert session.scalars(select(Alarm)).all() == []


def test_without_a_journal_an_event_the_database_refuses_is_not_recorded(
        quick: Engine, world: dict[str, Any], faults: Faults, clock: Clock) -> None:
    recorder = EventRecorder(quick, world["door"], None, now=clock.now,
                             monotonic=clock.monotonic, journal_error="no space")
    with faults.locked():
        assert recorder.record(granted(world)) is None
        assert "no reserve journal (no space): the door refuses" in (recorder.fault_text() or "")

