"""A door's status: written by its daemon every second, read by ``accessd status``, the
dashboard and the API, which all judge it by the same rule (``ONLINE_WITHIN``).

The daemon cannot say that it has stopped (a power cut, a crash), so silence is the signal: a
door whose daemon has not written for longer than ``ONLINE_WITHIN`` is offline whatever its last
row says, and its lock and contact are unknown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd.door import alarms as door_alarms
from accessd.door import command_table
from accessd.models import AccessEvent, Alarm, Door, DoorStatus

STATUS_INTERVAL = 1.0
"""Seconds between two status rows of a running daemon."""

ONLINE_WITHIN = dt.timedelta(seconds=30)
"""A door is online while its daemon's last status is at most this old.

Thirty missed writes, on purpose. The status row is advisory and its write queues behind other
writers: one attempt may wait the whole SQLite busy timeout (5 s, ``accessd.db``) and then be
skipped, so two unlucky attempts during a purge's batches already leave a gap of over 10 s; and
on a site with many doors the panel compares the door's clock with its own host's. A tighter
limit would make a busy but healthy door flap between online and offline on the dashboard.
A stopped daemon still shows within half a minute (plus the dashboard's 2 s poll), and its
door stays locked meanwhile: the board relocks without heartbeats.
"""

FAULT_MAX = 500  # DoorStatus.fault; the daemon's log keeps the whole message


@dataclass(frozen=True, slots=True)
class Report:
    """What a door's daemon writes about its door (and the last one it wrote)."""

    at: dt.datetime
    board_online: bool
    sensor_online: bool
    locked: bool
    door_open: bool | None  # None: no door contact (LCUS relay), or not known yet
    fault: str | None = None


def write_report(session: Session, door_id: int, report: Report) -> None:
    """The daemon's status row, replaced by ``report`` (the caller commits)."""
    status = session.get(DoorStatus, door_id)
    if status is None:
        status = DoorStatus(door_id=door_id)
        session.add(status)
    status.online = report.board_online
    status.sensor_online = report.sensor_online
    status.locked = report.locked
    status.door_open = report.door_open
    status.fault = report.fault[:FAULT_MAX] if report.fault else None
    status.heartbeat_at = report.at


def reporting(report: Report | None, now: dt.datetime) -> bool:
    """Whether a daemon that wrote ``report`` still runs at ``now``: the one threshold."""
    return report is not None and now - report.at <= ONLINE_WITHIN


@dataclass(frozen=True, slots=True)
class DoorState:
    """A door as staff see it at one moment: its daemon's last report, judged then.

    ``reporting``: its daemon wrote within ``ONLINE_WITHIN``. ``online``: reporting, and its
    door board answers. Lock and contact are known only while it is online.
    """

    id: int
    name: str
    location: str | None
    report: Report | None  # None: its daemon never reported
    reporting: bool
    alarms: tuple[Alarm, ...]

    @property
    def online(self) -> bool:
        return self.reporting and self.report is not None and self.report.board_online

    @property
    def sensor_online(self) -> bool:
        return self.online and self.report is not None and self.report.sensor_online

    @property
    def locked(self) -> bool | None:
        return self.report.locked if self.online and self.report is not None else None

    @property
    def door_open(self) -> bool | None:
        return self.report.door_open if self.online and self.report is not None else None

    @property
    def fault(self) -> str | None:
        return self.report.fault if self.report is not None else None


@dataclass(frozen=True, slots=True)
class Overview:
    """The site at a glance (``accessd status``): its doors, every open alarm (of a door or
    not), the commands the daemons have still to finish, and how many events are on record."""

    doors: list[DoorState]
    alarms: list[Alarm]
    unfinished_commands: int
    events: int


def door_states(session: Session, now: dt.datetime) -> list[DoorState]:
    """Every door by name, with its state at ``now`` and its open alarms."""
    return _door_states(session, now, door_alarms.open_alarms(session))


def overview(session: Session, now: dt.datetime) -> Overview:
    """The doors, the open alarms and the counts ``accessd status`` shows."""
    alarms = door_alarms.open_alarms(session)
    events = session.scalar(select(func.count()).select_from(AccessEvent)) or 0
    return Overview(_door_states(session, now, alarms), alarms,
                    command_table.unfinished_count(session), events)


def _door_states(session: Session, now: dt.datetime, alarms: list[Alarm]) -> list[DoorState]:
    reports = {s.door_id: _report(s) for s in session.scalars(select(DoorStatus))}
    grouped = door_alarms.by_door(alarms)
    states = []
    for door in session.scalars(select(Door).order_by(Door.name)):
        report = reports.get(door.id)
        states.append(DoorState(door.id, door.name, door.location, report,
                                reporting(report, now), tuple(grouped.get(door.id, ()))))
    return states


def _report(status: DoorStatus) -> Report | None:
    if status.heartbeat_at is None:
        return None
    return Report(status.heartbeat_at, status.online, status.sensor_online, status.locked,
                  status.door_open, status.fault)
