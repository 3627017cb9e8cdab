"""What happens at the doors: the hash-chained access history, alarms, door state, commands.

The daemon writes these; the panel reads them and writes only ``DeviceCommand`` rows (and
clears alarms through commands), so the door never depends on the panel.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accessd.models.base import (
    Base,
    BigIntegerPK,
    CompactUTCDateTime,
    UTCDateTime,
    enum_column,
    utcnow,
)
from accessd.models.customers import Customer, Door, Person
from accessd.models.enums import AlarmKind, CommandKind, CommandState, EventKind, EventMethod

GENESIS_DIGEST = bytes(32)
"""The ``prev_digest`` of a chain's first event."""

FACILITY_SCOPE = "facility"
"""``EventChain.scope`` of the chain for events without a customer (unknown fingers, tamper)."""


class EventChain(Base):
    """The head of one hash chain: a customer's access history, or the facility's.

    Appending reads and updates this row in the same (IMMEDIATE / row-locked) transaction, so
    two doors writing for one customer cannot fork the chain, and the head needs no scan.
    When retention prunes the oldest events, ``anchor_*`` records where the kept part starts,
    so ``verify-log`` can tell pruning from removal.
    """

    __tablename__ = "event_chains"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "facility", or "customer:<public id hex>": one chain per scope. A site's door keeps
    # one chain per customer of its own, "customer:<hex>@door:<id>" (``accessd.site.spool``),
    # so a customer may own several chains; a purge removes all of them, each whole.
    scope: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    head_digest: Mapped[bytes] = mapped_column(LargeBinary, default=GENESIS_DIGEST)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_digest: Mapped[bytes] = mapped_column(LargeBinary, default=GENESIS_DIGEST)
    anchor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AccessEvent(Base):
    """One thing that happened at a door; append-only and hash-chained per customer.

    ``digest = H(prev_digest || canonical fields || subject_digest)``. The person enters the
    chain only through ``subject_digest = H(subject_salt || person public id)``: erasing a
    person sets ``person_id`` and ``subject_salt`` to NULL, which anonymises the event and
    leaves the chain verifiable. Unknown fingers carry no person and no customer.
    """

    __tablename__ = "access_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "seq"),
        # A site door's own numbering of its events: delivered exactly once
        # (``INSERT ... ON CONFLICT (door_id, door_seq) DO NOTHING``, ``accessd.site.ingest``).
        Index("uq_access_events_door_id_door_seq", "door_id", "door_seq", unique=True),
        # History pages on millions of rows: per customer, per door, and the whole site, each
        # newest first (per person: ``PersonEvent``); the kind rides along in the site-wide
        # one, so a result filter and the chart's counts read the index alone. Every index
        # costs the door a write per event and a purge a seek per deleted event.
        Index(None, "customer_id", "at"),
        Index(None, "door_id", "at"),
        Index(None, "at", "kind"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True)
    chain_id: Mapped[int] = mapped_column(ForeignKey("event_chains.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    # No foreign key: its ON DELETE action would need an index on this column, which is what
    # ``PersonEvent`` replaces. Erasure and purge unlink a person's events before deleting them.
    person_id: Mapped[int | None] = mapped_column(Integer)
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id"))
    at: Mapped[dt.datetime] = mapped_column(CompactUTCDateTime, default=utcnow)
    kind: Mapped[EventKind] = mapped_column(enum_column(EventKind))
    method: Mapped[EventMethod | None] = mapped_column(enum_column(EventMethod, 16))
    reason: Mapped[str | None] = mapped_column(String(200))
    subject_salt: Mapped[bytes | None] = mapped_column(LargeBinary)
    subject_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    prev_digest: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    # The event this one is about, in the same chain: a ``pulse_failed`` names its ``granted``.
    # Covered by the digest when set. No foreign key: events leave only in chain order
    # (retention, purge), the one referred to first, and its ON DELETE would need an index.
    refers_to: Mapped[int | None] = mapped_column(BigInteger)
    # Set for events a site door spooled: its own sequence number, and the one of the event this
    # one refers to. Both are covered by the digest, which the door computed before the
    # database gave the events their ids (``accessd.site.spool``).
    door_seq: Mapped[int | None] = mapped_column(BigInteger)
    refers_door_seq: Mapped[int | None] = mapped_column(BigInteger)

    chain: Mapped[EventChain] = relationship()
    customer: Mapped[Customer | None] = relationship()
    person: Mapped[Person | None] = relationship(
        primaryjoin="foreign(AccessEvent.person_id) == Person.id", viewonly=True)
    door: Mapped[Door | None] = relationship()

    def __repr__(self) -> str:
        return f"<AccessEvent {self.id} {self.kind} chain={self.chain_id}#{self.seq}>"


class PersonEvent(Base):
    """Which events name a person, in the person's time order: the history's per-person index,
    kept as a table of its own.

    In the events table, an index on (person_id, at) made every event a purge deletes (in chain
    order, which the anchors need) a cold seek into it, since people's events interleave: half
    a purge's time. Apart, each is deleted in its own order: a purge removes these person by
    person (sequential), then the history in time order. The database writes a row here for
    every event with a person (a trigger, migration 0003), so no writer can forget it; erasure
    (``accessd.history.chain.unlink_people``), retention and purge delete rows explicitly.
    """

    __tablename__ = "person_events"
    __table_args__ = {"sqlite_with_rowid": False}

    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(CompactUTCDateTime, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class JournalDrain(Base):
    """How far a door's reserve journal (``accessd.door.journal``) has been moved into the
    history: every record up to ``drained_seq`` is an event here.

    Updated in the same transaction as the events it counts, so a daemon stopped between that
    commit and marking the records consumed in the file skips them at its next start instead of
    recording them twice.
    """

    __tablename__ = "journal_drains"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the journal file's id (hex)
    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    drained_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Alarm(Base):
    """An alarm raised by the daemon, open until staff clear it (``cleared_at`` set)."""

    __tablename__ = "alarms"
    __table_args__ = (Index(None, "door_id", "raised_at"), Index(None, "cleared_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    kind: Mapped[AlarmKind] = mapped_column(enum_column(AlarmKind))
    detail: Mapped[str | None] = mapped_column(String(500))
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(64))

    door: Mapped[Door | None] = relationship()


class DoorStatus(Base):
    """What a door's daemon last reported; a stale ``heartbeat_at`` means the daemon is gone."""

    __tablename__ = "door_status"

    door_id: Mapped[int] = mapped_column(
        ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True
    )
    online: Mapped[bool] = mapped_column(default=False)  # the door board answers
    locked: Mapped[bool] = mapped_column(default=True)
    door_open: Mapped[bool | None] = mapped_column()  # None: no door contact (LCUS relay)
    sensor_online: Mapped[bool] = mapped_column(default=False)
    fault: Mapped[str | None] = mapped_column(String(500))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Each device apart (``accessd.door.status.Report``): what is wrong with it (a
    # ``DeviceProblem`` value, None while it works) and when it last answered.
    sensor_problem: Mapped[str | None] = mapped_column(String(20))
    sensor_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    board_problem: Mapped[str | None] = mapped_column(String(20))
    board_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    database_problem: Mapped[str | None] = mapped_column(String(20))
    database_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    journal_pending: Mapped[int | None] = mapped_column()  # events kept in the reserve journal
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    door: Mapped[Door] = relationship()


class DeviceCommand(Base):
    """Hardware work asked of a door's daemon, which polls for ``pending`` rows.

    The daemon moves it to ``running``, writes ``progress`` as it goes ("place finger",
    "lift", "again"), and ends in ``done`` with ``result`` or ``failed`` with the reason in
    ``progress``. Works the same on SQLite and PostgreSQL: no notifications needed.
    """

    __tablename__ = "device_commands"
    __table_args__ = (Index(None, "door_id", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    # The person an enrolment is for: erasing the person removes its pending commands too.
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[CommandKind] = mapped_column(enum_column(CommandKind))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[CommandState] = mapped_column(
        enum_column(CommandState, 16), default=CommandState.PENDING
    )
    progress: Mapped[str | None] = mapped_column(String(200))
    # Counts of long work (a resync's templates): done of total, for a bar in the CLI and panel.
    progress_done: Mapped[int | None] = mapped_column()
    progress_total: Mapped[int | None] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    door: Mapped[Door] = relationship()
