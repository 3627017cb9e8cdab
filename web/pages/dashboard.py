"""The dashboard: every door's state and the latest events, updating by itself.

The page is rendered complete (a snapshot that works without JavaScript); ``static/
dashboard.js`` then polls ``/dashboard/state.json`` every 2 s and rewrites the door cards, the
work at the doors with its progress bars, and the events table with ``textContent`` only.
Each door is a card (it fits a 390 px phone): its alarms first, then each device apart
(``accessd.door.devices``, which ``accessd status`` prints too) with its last contact, what
is wrong and what to do. Both use ``snapshot()``, so the first render and every update show
the same words. A door whose daemon has not written its
status within ``accessd.door.status.ONLINE_WITHIN`` is shown offline, whatever its last row
says: the daemon may be gone (``accessd status`` and the API judge it the same way).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask_babel import format_timedelta, gettext, ngettext, pgettext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from accessd.door.alarms import alarm_label, open_alarm_count
from accessd.door.command_table import Work, door_work
from accessd.door.devices import Device, Words, devices
from accessd.door.status import DoorState, door_states
from accessd.history.query import EventFilter, EventRow, kind_label, page_events
from accessd.labels import label, reason_label
from accessd.models import EventKind, StaffRole
from web.navigation import NavLink
from web.pages.customers import read_only_session
from web.panel import current_panel
from web.security import current_staff, login_required
from web.times import time_text

bp = Blueprint("dashboard", __name__)
nav = [NavLink("Dashboard", "dashboard.index", order=0)]

LATEST_EVENTS = 15
REFUSED = frozenset({EventKind.DENIED, EventKind.UNKNOWN_FINGER})
ALERTS = frozenset({EventKind.DOOR_FORCED, EventKind.DOOR_HELD_OPEN, EventKind.TAMPER,
                    EventKind.FAULT, EventKind.ALARM, EventKind.PULSE_FAILED,
                    EventKind.PULSE_UNKNOWN})


def _door(door: DoorState) -> dict[str, Any]:
    online = door.online
    return {
        "id": door.id,
        "name": door.name,
        "location": door.location or "",
        "online": online,
        "connection": "online" if online else "offline",
        "lock": _lock(door),
        "contact": _contact(door),
        "sensor": "online" if door.sensor_online else "offline",
        "lock_text": _lock_text(_lock(door)),
        "contact_text": _contact_text(_contact(door)),
        "devices": [_device(device) for device in devices(door)],
        "alarms": [{"what": gettext(alarm_label(a)), "raised": time_text(a.raised_at),
                    "raised_iso": _iso(a.raised_at), "detail": a.detail or ""}
                   for a in door.alarms],
    }


def _lock_text(state: str) -> str:
    """The lock's state in words ("locked" of a door is not a locked-out account)."""
    if state == "locked":
        return pgettext("door lock", "locked")
    if state == "unlocked":
        return pgettext("door lock", "unlocked")
    return gettext("unknown")


def _contact_text(state: str) -> str:
    """The door contact's state in words."""
    if state == "closed":
        return pgettext("door contact", "closed")
    if state == "open":
        return pgettext("door contact", "open")
    if state == "no contact":
        return gettext("no contact")
    return gettext("unknown")


def _lock(door: DoorState) -> str:
    return "unknown" if not door.online else "locked" if door.locked else "unlocked"


def _contact(door: DoorState) -> str:
    return ("unknown" if not door.online else "no contact" if door.door_open is None
            else "open" if door.door_open else "closed")


def _device(device: Device) -> dict[str, Any]:
    return {
        "key": device.key,
        "label": gettext(device.label),
        "state": gettext(device.state),
        "health": device.health.value,
        "last_contact": time_text(device.last_contact) or gettext("never"),
        "last_contact_iso": _iso(device.last_contact),
        "problem": _say(device.problem),
        "action": _say(device.action),
    }


def _say(words: Words | None) -> str:
    """A device's sentence in the reader's language (``accessd.door.devices.Words``)."""
    if words is None:
        return ""
    values: dict[str, str] = {}
    if words.silent is not None:
        values["silent"] = format_timedelta(words.silent, threshold=1.0)
    if words.events is not None:
        values["events"] = ngettext("%(num)d event", "%(num)d events", words.events)
    return gettext(words.template, **values)


def _iso(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.astimezone(dt.UTC).isoformat().replace(
        "+00:00", "Z")


def _event(row: EventRow) -> dict[str, Any]:
    tone = ("granted" if row.kind is EventKind.GRANTED else "refused" if row.kind in REFUSED
            else "alert" if row.kind in ALERTS else "info")
    return {
        "id": row.id,
        "time": time_text(row.at),
        "time_iso": _iso(row.at),
        "door": row.door or "",
        "kind": gettext(kind_label(row.kind)),
        "tone": tone,
        "who": row.person or row.customer or "",  # "unknown finger" is what happened, not who
        "method": gettext(label(row.method)) if row.method else "",
        "reason": gettext(reason_label(row.reason)) if row.reason else "",
    }


def _work(work: Work) -> dict[str, Any]:
    """A resync the panel started (after an erasure, a withdrawal, an enrolment elsewhere),
    with its counts for a bar: the same words as ``accessd resync`` prints."""
    return {
        "id": work.id,
        "door": work.door,
        "what": gettext("sensor resync (%(why)s)", why=work.why) if work.why
        else gettext("sensor resync"),
        "state": work.state.value,
        "done": work.done,
        "total": work.total,
        "text": work.text,
    }


def snapshot() -> dict[str, Any]:
    """Every door with its state and open alarms, and the latest events, ready to show."""
    with read_only_session() as session:
        return _snapshot(session, current_panel().now())


def _snapshot(session: Session, now: dt.datetime) -> dict[str, Any]:
    doors = [_door(door) for door in door_states(session, now)]
    events = page_events(session, EventFilter(), limit=LATEST_EVENTS).rows
    return {"doors": doors, "events": [_event(e) for e in events],
            "work": [_work(w) for w in door_work(session, now)],
            "updated": time_text(now), "updated_iso": _iso(now),
            "open_alarms": open_alarm_count(session)}


@bp.get("/")
@login_required
def index() -> str:
    """The doors and the latest events, as they are now (then kept current by the script)."""
    staff = current_staff()
    return render_template("dashboard.html", user=staff, state=snapshot(),
                           words=words(may_unlock=staff is not None
                                       and staff.role in (StaffRole.ADMIN, StaffRole.OPERATOR)))


def words(*, may_unlock: bool) -> dict[str, str]:
    """The words static/dashboard.js writes, in the page's language: the page hands them to
    the script in a ``data-words`` attribute (CSP allows no inline script). The actions' words
    only for a role that may act."""
    actions = {"unlock": gettext("Unlock…"), "clear_alarms": gettext("Clear alarms…")}
    return ({} if not may_unlock else actions) | {
        "lock": gettext("Lock"),
        "contact": gettext("door contact"),
        "raised": gettext("raised"),
        "open_alarms": gettext("Open alarms"),
        "last_contact": gettext("last contact"),
        "never": gettext("never"),
        "what_to_do": gettext("What to do:"),
        "no_door": gettext("No door has reported yet. Its daemon reports once the door's "
                           "computer runs the door service."),
        "no_work": gettext("No resync under way."),
        "no_events": gettext("No events yet."),
        "live": gettext("(live, every 2 s)"),
        "lost": gettext("(lost contact with the panel; retrying)"),
        "one_alarm": gettext("1 open alarm"),
        "alarms": gettext("%(num)s open alarms", num="{n}"),
    }


@bp.get("/dashboard/state.json")
@login_required
def state() -> Response:
    """The same snapshot as JSON, polled by static/dashboard.js."""
    return jsonify(snapshot())
