"""Recording the door's events: in the database while it takes them, in the reserve journal
(``accessd.door.journal``) while it does not, and from the journal back into the database, in
order and exactly once, as soon as it can.

The hot path, while the database is healthy, is what it always was: one committed insert (three
Core statements), nothing more. It waits at most ``EVENT_BUSY_MS`` for another writer (a panel,
a purge, another process holding ``BEGIN IMMEDIATE``): past that, or on any database error, the
event goes to the journal, synced before the relay moves, and so do all events after it until
the journal has been moved (order is the chain's order). The main thread moves the journal
(``drain``): each batch of events is committed together with the journal's mark in
``JournalDrain``, then the records are marked consumed in the file, so a daemon stopped between
the two skips, at its next start, what it had already moved.

A trouble that lasts ``ALARM_AFTER`` seconds (the busy timeout other writers get) raises an
alarm of kind ``database`` and is recorded as a ``fault`` event, and its end as ``recovered``;
shorter ones (a purge's batch, a backup's snapshot) pass quietly through the journal. The
alarm row waits until the database takes it; meanwhile the status file says so
(``accessd.door.status``).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from accessd.door import alarms
from accessd.door.devices import DeviceProblem
from accessd.door.journal import JournalEntry, ReserveJournal
from accessd.door.logic import Record
from accessd.errors import JournalError
from accessd.history.chain import record_event
from accessd.models import (
    AccessEvent,
    AlarmKind,
    Customer,
    EventKind,
    EventMethod,
    JournalDrain,
    Person,
)

log = logging.getLogger("accessd.door.daemon")

EVENT_BUSY_MS = 100  # how long an event waits for another writer before it goes to the journal
ALARM_AFTER = 5.0  # seconds of database trouble before it is an alarm (other writers' timeout)
DRAIN_BATCH = 500  # events moved per transaction
OPENINGS = frozenset({EventKind.GRANTED, EventKind.EXIT})  # what a pulse outcome refers to
_REMEMBERED = 256  # journal seqs whose event ids are kept, for outcomes drained after them


@dataclass(frozen=True, slots=True)
class EventRef:
    """Where an event was recorded: the database (``event_id``) or the journal (``journal_seq``)."""

    at: dt.datetime
    event_id: int | None = None
    journal_seq: int | None = None


class EventRecorder:
    """The door's events, into the database or the reserve journal; the database's health.

    ``record`` may be called from any thread; ``drain`` and ``tick`` from the main thread.

    :param engine: the daemon's engine whose connections wait at most ``EVENT_BUSY_MS``.
    :param journal: the reserve journal, or None when it could not be created
        (``journal_error`` says why): then an event the database refuses is not recorded.
    """

    def __init__(self, engine: Engine, door_id: int, journal: ReserveJournal | None, *,
                 now: Callable[[], dt.datetime], monotonic: Callable[[], float],
                 journal_error: str | None = None) -> None:
        self.engine = engine
        self.door_id = door_id
        self.journal = journal
        self.journal_error = journal_error
        self._now, self._monotonic = now, monotonic
        self._lock = threading.Lock()
        self._journaling = journal is not None and journal.pending > 0
        self._failing_since: float | None = None
        self._failing_since_at: dt.datetime | None = None
        self._error: str | None = None
        self._alarmed = False  # this trouble's fault event is recorded
        self._alarm_row: str | None = None  # an alarm's detail waiting for the database
        self._moved_in_trouble = 0
        self._recovery_due = False
        self._drained: collections.OrderedDict[int, int] = collections.OrderedDict()

    # --- any thread -------------------------------------------------------------------------

    def record(self, record: Record, *, about: EventRef | None = None) -> EventRef | None:
        """Record ``record`` (``about``: the event it refers to); None when it could not be
        recorded anywhere (then the caller keeps the door shut)."""
        entry = JournalEntry(
            kind=record.kind.value, at=self._now(),
            method=record.method.value if record.method else None, reason=record.reason,
            door_id=self.door_id or None, customer_id=record.customer_id,
            person_id=record.person_id, customer_public_id=record.customer_public_id,
            person_public_id=record.person_public_id,
            refers_to=about.event_id if about else None,
            refers_seq=about.journal_seq if about else None,
            refers_at=about.at if about else None)
        with self._lock:
            if not self._journaling:
                try:
                    with self.engine.begin() as conn:
                        event_id = self._insert(conn, entry, self._resolve(conn, entry, {}))
                except SQLAlchemyError as exc:
                    self._failed(exc)
                    self._journaling = self.journal is not None
                else:
                    self._succeeded()
                    return EventRef(entry.at, event_id=event_id)
            return self._keep(entry)

    def noticed(self, exc: Exception) -> None:
        """Another write (the status row, a command, a job) failed on the database."""
        with self._lock:
            self._failed(exc)

    def succeeded(self) -> None:
        """Another write (the status row) went through."""
        with self._lock:
            if not self._journaling:
                self._succeeded()

    @property
    def healthy(self) -> bool:
        return self._failing_since is None and not self._journaling

    def database_problem(self) -> tuple[DeviceProblem | None, int, dt.datetime]:
        """The database as the status reports it: its problem (None while healthy), how many
        events wait in the reserve journal, and when it last took a write (now, if healthy)."""
        kept = self.journal.pending if self.journal is not None else 0
        failing_since = self._failing_since_at
        if failing_since is not None:
            problem = (DeviceProblem.DB_FAILING if self.journal is not None
                       else DeviceProblem.DB_NO_RESERVE)
            return problem, kept, failing_since
        return (DeviceProblem.DB_CATCHING_UP if kept else None), kept, self._now()

    def fault_text(self) -> str | None:
        """What the status says about the database; None while it is healthy."""
        kept = self.journal.pending if self.journal is not None else 0
        if self._failing_since_at is not None:
            since = self._failing_since_at.strftime("%Y-%m-%d %H:%M:%S")
            reserve = (f"{kept} event(s) kept in the reserve journal" if self.journal is not None
                       else f"no reserve journal ({self.journal_error}): the door refuses")
            return f"database failing since {since} UTC: {self._error}; {reserve}"
        if kept:
            return f"database: moving {kept} event(s) from the reserve journal"
        return None

    # --- the main thread --------------------------------------------------------------------

    def drain(self, budget: float = 0.5) -> int:
        """Move journal records into the database, oldest first, for about ``budget`` seconds;
        returns how many events were recorded."""
        journal = self.journal
        moved = 0
        if journal is not None:
            deadline = self._monotonic() + budget
            while journal.pending and self._monotonic() < deadline:
                try:
                    entries = journal.oldest(DRAIN_BATCH)
                    ids = self._move(journal, entries)
                except SQLAlchemyError as exc:
                    with self._lock:
                        self._failed(exc)
                    break
                except JournalError as exc:
                    log.error("%s", exc)
                    break
                for seq, event_id in ids.items():
                    self._remember(seq, event_id)
                moved += len(ids)
                try:
                    journal.consume(entries[-1].seq)
                except JournalError as exc:  # the database's mark keeps them from moving twice
                    log.error("%s", exc)
                    break
        with self._lock:
            self._moved_in_trouble += moved
            if self._journaling and journal is not None and journal.pending == 0:
                self._journaling = False
                self._succeeded()
        if moved:
            log.info("moved %d event(s) from the reserve journal into the database", moved)
        return moved

    def tick(self, sessions: Callable[[], Session]) -> None:
        """Raise the alarm of a lasting trouble, record its fault and recovery events, and
        write an alarm row that waited for the database."""
        with self._lock:
            start = self._failing_since
            due = (start is not None and not self._alarmed
                   and self._monotonic() - start >= ALARM_AFTER)
            if due:
                self._alarmed = True
                since = self._failing_since_at or self._now()
                self._alarm_row = (f"the database could not be written from "
                                   f"{since:%Y-%m-%d %H:%M:%S} UTC ({self._error}); events go "
                                   "to the reserve journal until it can")
            recovered, self._recovery_due = self._recovery_due, False
            moved = 0
            if recovered:
                moved, self._moved_in_trouble = self._moved_in_trouble, 0
        if due:
            log.error("alarm database: %s", self._alarm_row)
            self.record(Record(EventKind.FAULT, reason=f"database: {self._error}"[:200]))
        if recovered:
            log.warning("the database takes writes again; %d event(s) moved from the reserve "
                        "journal", moved)
            self.record(Record(EventKind.RECOVERED, reason=(
                f"database: takes writes again; {moved} event(s) moved from the reserve "
                "journal")[:200]))
        if self._alarm_row is not None:
            try:
                with sessions() as session, session.begin():
                    alarms.raise_alarm(session, self.door_id, AlarmKind.DATABASE,
                                       self._alarm_row, at=self._now())
            except SQLAlchemyError:
                return  # the status file says it meanwhile; tried again at the next tick
            self._alarm_row = None

    # --- inside ------------------------------------------------------------------------------

    def _keep(self, entry: JournalEntry) -> EventRef | None:
        if self.journal is None:
            log.error("could not record %s and there is no reserve journal (%s): the door "
                      "stays locked", entry.kind, self.journal_error)
            return None
        try:
            seq = self.journal.append(entry)
        except JournalError as exc:
            log.error("could not record %s: %s", entry.kind, exc)
            return None
        return EventRef(entry.at, journal_seq=seq)

    def _failed(self, exc: Exception) -> None:
        """Note a database failure (lock held)."""
        orig = getattr(exc, "orig", None)
        self._error = str(orig if orig is not None else exc).splitlines()[0][:200]
        if self._failing_since is None:
            self._failing_since = self._monotonic()
            self._failing_since_at = self._now()
            log.warning("the database failed (%s); the door's events go to the reserve "
                        "journal until it takes writes again", self._error)

    def _succeeded(self) -> None:
        """A write went through and nothing waits in the journal (lock held)."""
        if self._failing_since is None:
            return
        self._failing_since = self._failing_since_at = None
        if self._alarmed:
            self._alarmed = False
            self._recovery_due = True
        else:
            self._moved_in_trouble = 0

    def _insert(self, conn: Connection, entry: JournalEntry, refers_to: int | None) -> int:
        customer_uuid, person_uuid = entry.customer_public_id, entry.person_public_id
        if entry.customer_id is not None and customer_uuid is None:
            customer_uuid = conn.execute(select(Customer.public_id).where(
                Customer.id == entry.customer_id)).scalar_one()
        if entry.person_id is not None and person_uuid is None:
            person_uuid = conn.execute(select(Person.public_id).where(
                Person.id == entry.person_id)).scalar_one()
        return record_event(
            conn, kind=EventKind(entry.kind), customer_id=entry.customer_id,
            customer_public_id=customer_uuid, person_id=entry.person_id,
            person_public_id=person_uuid, door_id=entry.door_id,
            method=EventMethod(entry.method) if entry.method else None, reason=entry.reason,
            at=entry.at, refers_to=refers_to)

    def _resolve(self, conn: Connection, entry: JournalEntry, batch: dict[int, int]) -> int | None:
        """The id of the event ``entry`` refers to, whether it went straight to the database,
        through the journal in this batch, in an earlier one, or in an earlier run."""
        if entry.refers_to is not None or entry.refers_seq is None:
            return entry.refers_to
        found = batch.get(entry.refers_seq) or self._drained.get(entry.refers_seq)
        if found is None and entry.refers_at is not None:
            found = conn.execute(
                select(AccessEvent.id).where(AccessEvent.door_id == entry.door_id,
                                             AccessEvent.at == entry.refers_at,
                                             AccessEvent.kind.in_(sorted(OPENINGS)))
                .order_by(AccessEvent.id.desc()).limit(1)).scalar()
        return found

    def _move(self, journal: ReserveJournal, entries: list[JournalEntry]) -> dict[int, int]:
        """One transaction: the entries not moved yet, and the journal's new mark."""
        now = self._now()
        with self.engine.begin() as conn:
            mark = conn.execute(select(JournalDrain.drained_seq).where(
                JournalDrain.id == journal.id)).scalar()
            if mark is None:
                conn.execute(insert(JournalDrain).values(
                    id=journal.id, door_id=self.door_id, drained_seq=0, updated_at=now))
                mark = 0
            fresh = _still_known(conn, [e for e in entries if e.seq > mark])
            ids: dict[int, int] = {}
            for entry in fresh:
                ids[entry.seq] = self._insert(conn, entry, self._resolve(conn, entry, ids))
            conn.execute(update(JournalDrain).where(JournalDrain.id == journal.id).values(
                drained_seq=entries[-1].seq, updated_at=now))
        return ids

    def _remember(self, seq: int, event_id: int) -> None:
        self._drained[seq] = event_id
        while len(self._drained) > _REMEMBERED:
            self._drained.popitem(last=False)


def _still_known(conn: Connection, entries: list[JournalEntry]) -> list[JournalEntry]:
    """``entries``, without the customers and people a purge or an erasure removed since they
    were kept: the opening stays on record, with nothing personal (the facility's chain)."""
    customers = {e.customer_id for e in entries if e.customer_id is not None}
    people = {e.person_id for e in entries if e.person_id is not None}
    known_customers = set(conn.execute(select(Customer.id).where(
        Customer.id.in_(customers))).scalars()) if customers else set()
    known_people = set(conn.execute(select(Person.id).where(
        Person.id.in_(people))).scalars()) if people else set()
    kept = []
    for entry in entries:
        if entry.customer_id is not None and entry.customer_id not in known_customers:
            entry = replace(entry, customer_id=None, customer_public_id=None, person_id=None,
                            person_public_id=None)
        elif entry.person_id is not None and entry.person_id not in known_people:
            entry = replace(entry, person_id=None, person_public_id=None)
        kept.append(entry)
    return kept
