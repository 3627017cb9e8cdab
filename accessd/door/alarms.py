"""Alarms: raised by the daemon, open until staff clear them, shown by the CLI and the panel.

One open alarm per door and kind: raising it again while it is open changes nothing, so a door
held open twice shows one alarm, not two. "Open" is said once, in ``_open``: the daemon's
preflight (is the reader tampered?), ``accessd status``, the dashboard, the alarms page and
the API all read through it. Staff never clear an alarm here directly: they ask the door's
daemon (a ``clear_alarm`` command), which clears them and refills a tampered sensor.

Services add to the caller's session; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from accessd.labels import N_
from accessd.models import Alarm, AlarmKind

ALARM_LABELS = {
    AlarmKind.FAILURE_BACKOFF: N_("too many refusals"),
    AlarmKind.TAMPER: N_("reader housing opened"),
    AlarmKind.DOOR_FORCED: N_("door forced open"),
    AlarmKind.DOOR_HELD_OPEN: N_("door held open"),
    AlarmKind.FAULT: N_("device fault"),
    AlarmKind.INTEGRITY: N_("database damaged"),
    AlarmKind.DATABASE: N_("database could not be written"),
}
"""What each kind of alarm is called where people read it."""


def describe_alarm(alarm: Alarm, label: Callable[[dt.datetime], str]) -> str:
    """One alarm in a line: what, when it was raised (``label`` says the time with its zone)
    and its detail. "Raised at", not "since": the detail tells what happened then, and stays
    true however long the alarm waits for staff to clear it."""
    detail = f": {alarm.detail}" if alarm.detail else ""
    return f"{alarm_label(alarm)}, raised {label(alarm.raised_at)}{detail}"


def alarm_label(alarm: Alarm) -> str:
    """What the alarm is called where people read it ("door forced open")."""
    return ALARM_LABELS.get(alarm.kind, str(alarm.kind))


def _open(door_id: int | None = None, kind: AlarmKind | None = None) -> Select[Alarm]:
    """The one open-alarm query: not cleared, oldest first; of one door and kind if given."""
    query = select(Alarm).where(Alarm.cleared_at.is_(None))
    if door_id is not None:
        query = query.where(Alarm.door_id == door_id)
    if kind is not None:
        query = query.where(Alarm.kind == kind)
    return query.order_by(Alarm.raised_at, Alarm.id)


def open_alarms(session: Session, door_id: int | None = None) -> list[Alarm]:
    """Open alarms, oldest first: of one door, or of the whole site."""
    return list(session.scalars(_open(door_id)))


def open_alarm_count(session: Session) -> int:
    """How many alarms are open at the site (the panel's header shows it on every page)."""
    return len(session.scalars(_open().with_only_columns(Alarm.id)).all())


def by_door(alarms: Iterable[Alarm]) -> dict[int | None, list[Alarm]]:
    """``alarms`` grouped by door id, in their order (``None``: an alarm of no door)."""
    grouped: dict[int | None, list[Alarm]] = {}
    for alarm in alarms:
        grouped.setdefault(alarm.door_id, []).append(alarm)
    return grouped


def is_open(session: Session, door_id: int, kind: AlarmKind) -> bool:
    """Whether the door has an open alarm of this kind."""
    return session.scalars(_open(door_id, kind).limit(1)).first() is not None


def raise_alarm(session: Session, door_id: int, kind: AlarmKind, detail: str,
                at: dt.datetime) -> Alarm | None:
    """Open an alarm, unless one of that kind is open at that door already.

    Returns the new alarm, or ``None`` when it was open already.
    """
    if is_open(session, door_id, kind):
        return None
    alarm = Alarm(door_id=door_id, kind=kind, detail=detail, raised_at=at)
    session.add(alarm)
    return alarm


def clear_alarms(session: Session, door_id: int, *, by: str, at: dt.datetime) -> int:
    """Clear every open alarm of the door (the daemon does this on a ``clear_alarm``
    command). Returns how many were cleared."""
    still_open = _open(door_id).with_only_columns(Alarm.id).order_by(None)
    cleared = session.execute(
        update(Alarm).where(Alarm.id.in_(still_open)).values(cleared_at=at, cleared_by=by))
    return int(getattr(cleared, "rowcount", 0) or 0)
