"""A door's status: written by its daemon every second, read by ``accessd status``, the
dashboard and the API, which all judge it by the same rule (``ONLINE_WITHIN``).

The daemon cannot say that it has stopped (a power cut, a crash), so silence is the signal: a
door whose daemon has not written for longer than ``ONLINE_WITHIN`` is offline whatever its last
row says, and its lock and contact are unknown.

The row lives in the database, which may be the very thing failing (full, locked, read-only).
So the daemon also writes the same report to a small file beside the SQLite database
(``StatusFile``), made full size at start so that rewriting it never needs new space, and
readers take whichever of the two is newer: a daemon alive with its database failing shows as
exactly that, not as a silent one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import URL
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
    fault: str | None = None  # the devices' own words, for the log and the API
    # Each device apart: what is wrong with it (an ``accessd.door.devices.DeviceProblem``
    # value; None while it works) and when it last answered (None: not since the daemon
    # started). Older status files and rows lack them: then only the booleans above say.
    sensor_problem: str | None = None
    sensor_seen_at: dt.datetime | None = None
    board_problem: str | None = None
    board_seen_at: dt.datetime | None = None
    database_problem: str | None = None
    database_seen_at: dt.datetime | None = None
    journal_pending: int = 0  # events kept in the reserve journal, waiting for the database


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
    status.sensor_problem, status.sensor_seen_at = report.sensor_problem, report.sensor_seen_at
    status.board_problem, status.board_seen_at = report.board_problem, report.board_seen_at
    status.database_problem = report.database_problem
    status.database_seen_at = report.database_seen_at
    status.journal_pending = report.journal_pending


# --- the status file ------------------------------------------------------------------------

STATUS_FILE = "accessd-door-{door_id}.status"
_SLOT = 2048  # two slots, written in turn: a reader always finds one whole
_SLOT_HEAD = struct.Struct("<QHI")  # counter, length, CRC-32 of the JSON


def status_file_path(url: URL | str, door_id: int) -> Path | None:
    """Where door ``door_id``'s status file lives: beside the SQLite database, so that readers
    find it from the database URL alone; None for any other database."""
    parsed = url if isinstance(url, URL) else _url(url)
    database = parsed.database if parsed is not None else None
    if (parsed is not None and parsed.get_backend_name() == "sqlite" and database
            and database != ":memory:" and not database.startswith("file:")):
        return Path(database).absolute().parent / STATUS_FILE.format(door_id=door_id)
    return None


class StatusFile:
    """The daemon's side: a file of two fixed slots, created full size, rewritten in place.

    :raises OSError: (from ``create``) the file cannot be made; the row then has to do.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._counter = 0

    @classmethod
    def create(cls, path: Path) -> StatusFile:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # status only, nothing personal
        try:
            os.pwrite(fd, bytes(2 * _SLOT), 0)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            raise
        return cls(path, fd)

    def write(self, report: Report) -> None:
        """Replace the report (one ``pwrite`` into the slot not read last; no new space).

        :raises OSError: the write failed.
        """
        data = _encode_report(report)
        self._counter += 1
        slot = _SLOT_HEAD.pack(self._counter, len(data), zlib.crc32(data)) + data
        os.pwrite(self._fd, slot, (self._counter % 2) * _SLOT)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_status_file(path: Path) -> Report | None:
    """The newest whole report in ``path``, or None (no file, never written, unreadable)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    best: tuple[int, Report] | None = None
    for offset in (0, _SLOT):
        head = data[offset:offset + _SLOT_HEAD.size]
        if len(head) < _SLOT_HEAD.size:
            continue
        counter, length, crc = _SLOT_HEAD.unpack(head)
        body = data[offset + _SLOT_HEAD.size:offset + _SLOT_HEAD.size + length]
        if counter == 0 or len(body) != length or zlib.crc32(body) != crc:
            continue
        try:
            report = _decode_report(body)
        except (ValueError, KeyError, TypeError):
            continue
        if best is None or counter > best[0]:
            best = (counter, report)
    return None if best is None else best[1]


def _encode_report(report: Report) -> bytes:
    fields = asdict(report)
    for name in _MOMENTS:
        moment = fields[name]
        fields[name] = None if moment is None else moment.astimezone(dt.UTC).isoformat()
    room = _SLOT - _SLOT_HEAD.size
    data = json.dumps(fields).encode()
    while len(data) > room and fields["fault"]:  # a long fault is cut, never the report
        fields["fault"] = fields["fault"][:len(fields["fault"]) // 2]
        data = json.dumps(fields).encode()
    return data


def _decode_report(data: bytes) -> Report:
    fields = json.loads(data)
    for name in _MOMENTS:
        if fields.get(name) is not None:
            fields[name] = dt.datetime.fromisoformat(fields[name])
    return Report(**fields)


_MOMENTS = ("at", "sensor_seen_at", "board_seen_at", "database_seen_at")


def _url(url: str) -> URL | None:
    from sqlalchemy import make_url

    try:
        return make_url(url)
    except Exception:  # not a URL we can read: no status file
        return None


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
    judged_at: dt.datetime

    @property
    def online(self) -> bool:
        return self.reporting and self.report is not None and self.report.board_online

    @property
    def sensor_online(self) -> bool:
        """The sensor answers its daemon, which reports (whatever the door board does)."""
        return self.reporting and self.report is not None and self.report.sensor_online

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
    url = session.get_bind().engine.url
    states = []
    for door in session.scalars(select(Door).order_by(Door.name)):
        report = _newer(reports.get(door.id), status_file_path(url, door.id))
        states.append(DoorState(door.id, door.name, door.location, report,
                                reporting(report, now), tuple(grouped.get(door.id, ())),
                                now))
    return states


def _report(status: DoorStatus) -> Report | None:
    if status.heartbeat_at is None:
        return None
    return Report(status.heartbeat_at, status.online, status.sensor_online, status.locked,
                  status.door_open, status.fault, status.sensor_problem, status.sensor_seen_at,
                  status.board_problem, status.board_seen_at, status.database_problem,
                  status.database_seen_at, status.journal_pending or 0)


def _newer(row: Report | None, file: Path | None) -> Report | None:
    """The row, or the status file when it is newer (the daemon could not write the row)."""
    written = read_status_file(file) if file is not None else None
    if written is None or (row is not None and row.at >= written.at):
        return row
    return written
