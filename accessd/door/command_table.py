"""The command table: how the panel and the CLI ask a door's daemon for hardware work.

The asking side adds a ``pending`` row; the daemon polls, moves it to ``running``, writes
``progress`` as it goes and ends it ``done`` or ``failed``. Plain rows and polling, so it works
the same on SQLite and PostgreSQL, and the door never depends on the panel being up.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from accessd.errors import CommandTimeoutError
from accessd.models import CommandKind, CommandState, DeviceCommand, Door
from accessd.progress import describe

log = logging.getLogger(__name__)

FINISHED = (CommandState.DONE, CommandState.FAILED)
UNFINISHED = (CommandState.PENDING, CommandState.RUNNING)


def request(session: Session, door_id: int, kind: CommandKind, *, created_by: str,
            person_id: int | None = None, **args: Any) -> DeviceCommand:
    """Queue hardware work for one door (the caller commits)."""
    command = DeviceCommand(door_id=door_id, kind=kind, args=args, created_by=created_by,
                            person_id=person_id, state=CommandState.PENDING)
    session.add(command)
    session.flush()
    return command


def request_resync_everywhere(session: Session, *, created_by: str, why: str,
                              except_door: int | None = None) -> int:
    """After templates left the database (purge, erasure, withdrawal) or a finger was enrolled:
    every door's sensor must follow. Returns how many doors were asked. The caller commits.

    :param except_door: a door whose sensor is already in step (the one that just enrolled).
    """
    query = select(Door.id)
    if except_door is not None:
        query = query.where(Door.id != except_door)
    doors = session.scalars(query).all()
    for door_id in doors:
        request(session, door_id, CommandKind.RESYNC, created_by=created_by, why=why)
    return len(doors)


def unfinished_count(session: Session, door_id: int | None = None) -> int:
    """Commands at every door (or at ``door_id``) still waiting for, or being carried out
    by, their daemon."""
    query = (select(func.count()).select_from(DeviceCommand)
             .where(DeviceCommand.state.in_(UNFINISHED)))
    if door_id is not None:
        query = query.where(DeviceCommand.door_id == door_id)
    return session.scalar(query) or 0


@dataclass(frozen=True)
class Work:
    """Long work at a door as the panel shows it: a resync with its counts."""

    id: int
    door: str
    kind: CommandKind
    state: CommandState
    done: int | None
    total: int | None
    text: str
    why: str


RECENT_WORK = dt.timedelta(minutes=10)
"""How long finished work stays on the dashboard."""


def door_work(session: Session, now: dt.datetime, *, limit: int = 10) -> list[Work]:
    """Resyncs waiting, under way, or finished within ``RECENT_WORK``, newest first."""
    rows = session.execute(
        select(DeviceCommand, Door.name).join(Door, Door.id == DeviceCommand.door_id)
        .where(DeviceCommand.kind == CommandKind.RESYNC,
               DeviceCommand.state.in_(UNFINISHED)
               | (DeviceCommand.finished_at >= now - RECENT_WORK))
        .order_by(DeviceCommand.created_at.desc(), DeviceCommand.id.desc()).limit(limit)).all()
    return [Work(c.id, name, c.kind, c.state, c.progress_done, c.progress_total,
                 c.progress or ("waiting for the door's daemon" if c.state is CommandState.PENDING
                                else "starting"), str(c.args.get("why") or ""))
            for c, name in rows]


def wait(sessions: sessionmaker[Session], command_id: int, *, timeout: float,
         on_progress: Callable[[str], None] | None = None,
         on_count: Callable[[int, int | None], None] | None = None,
         poll: float = 0.2) -> DeviceCommand:
    """Follow a command until it finishes, reporting each new progress message, and to
    ``on_count`` (an ``accessd.progress.Progress``) each new count of long work; a command
    that reports counts reports its text through them only.

    :raises CommandTimeoutError: not finished within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: str | None = None
    last_count: tuple[int | None, int | None] = (None, None)
    while True:
        with sessions() as session:
            command = session.get_one(DeviceCommand, command_id)
            session.expunge(command)
        count = (command.progress_done, command.progress_total)
        if command.progress_done is not None and on_count is not None:
            if count != last_count:
                on_count(command.progress_done, command.progress_total)
        elif command.progress and command.progress != last and on_progress:
            on_progress(command.progress)
        last, last_count = command.progress, count
        if command.state in FINISHED:
            return command
        if time.monotonic() >= deadline:
            raise CommandTimeoutError(
                f"the door's daemon did not finish command {command_id} within {timeout:g} s "
                f"(state: {command.state}); check that `accessd run` is running for that door")
        time.sleep(poll)


# --- the daemon's side ----------------------------------------------------------------------


def claim_next(sessions: sessionmaker[Session], door_id: int) -> DeviceCommand | None:
    """Take the oldest pending command for this door, marking it running."""
    with sessions.begin() as session:
        command = session.scalars(
            select(DeviceCommand).where(DeviceCommand.door_id == door_id,
                                        DeviceCommand.state == CommandState.PENDING)
            .order_by(DeviceCommand.created_at, DeviceCommand.id).limit(1)
            .with_for_update(skip_locked=True)).first()
        if command is None:
            return None
        command.state = CommandState.RUNNING
        command.started_at = dt.datetime.now(dt.UTC)
        session.flush()
        session.expunge(command)
        return command


def report(sessions: sessionmaker[Session], command_id: int, progress: str) -> None:
    with sessions.begin() as session:
        session.execute(update(DeviceCommand).where(DeviceCommand.id == command_id)
                        .values(progress=progress[:200]))


@dataclass
class CommandProgress:
    """A ``Progress`` that writes a command's counts on its row (and the same in words in
    ``progress``), at most every ``every`` seconds, and at the end."""

    sessions: sessionmaker[Session]
    command_id: int
    what: str
    unit: str
    every: float = 0.5
    monotonic: Callable[[], float] = time.monotonic
    _started: float = field(default=0.0, init=False)
    _written: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._started = self.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        now = self.monotonic()
        if (self._written is not None and now - self._written < self.every
                and done != total):
            return
        self._written = now
        text = describe(self.what, self.unit, done, total, now - self._started)
        try:
            with self.sessions.begin() as session:
                session.execute(update(DeviceCommand).where(DeviceCommand.id == self.command_id)
                                .values(progress=text[:200], progress_done=done,
                                        progress_total=total))
        except SQLAlchemyError as exc:  # a busy database costs a progress line, not the work
            log.debug("progress of command %d not written: %s", self.command_id, exc)


def finish(sessions: sessionmaker[Session], command_id: int, *, ok: bool, message: str,
           result: dict[str, Any] | None = None) -> None:
    with sessions.begin() as session:
        session.execute(update(DeviceCommand).where(DeviceCommand.id == command_id).values(
            state=CommandState.DONE if ok else CommandState.FAILED, progress=message[:200],
            result=result, finished_at=dt.datetime.now(dt.UTC)))


def fail_abandoned(sessions: sessionmaker[Session], door_id: int) -> int:
    """At daemon start: commands left ``running`` by a previous run can never finish."""
    with sessions.begin() as session:
        result = session.execute(
            update(DeviceCommand)
            .where(DeviceCommand.door_id == door_id, DeviceCommand.state == CommandState.RUNNING)
            .values(state=CommandState.FAILED, finished_at=dt.datetime.now(dt.UTC),
                    progress="the daemon stopped while this ran; ask again"))
        return int(getattr(result, "rowcount", 0) or 0)
