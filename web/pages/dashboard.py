"""The dashboard: every door's state and the latest events, updating by itself.

The page is rendered complete (a snapshot that works without JavaScript); ``static/
dashboard.js`` then polls ``/dashboard/state.json`` every 2 s and rewrites the two tables with
``textContent`` only. Both use ``snapshot()``, so the first render and every update show the
same words. A door whose daemon has not written its status within
``accessd.door.status.ONLINE_WITHIN`` is shown offline, whatever its last row says: the daemon
may be gone (``accessd status`` and the API judge it the same way).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, render_template
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from accessd.door.status import DoorState, door_states
from accessd.history.query import EventFilter, EventRow, kind_label, page_events, reason_label
from accessd.models import EventKind
from web.navigation import NavLink
from web.pages.customers import local_time, read_only_session
from web.panel import current_panel
from web.security import current_staff, login_required

bp = Blueprint("dashboard", __name__)
nav = [NavLink("Dashboard", "dashboard.index", order=0)]

LATEST_EVENTS = 15
REFUSED = frozenset({EventKind.DENIED, EventKind.UNKNOWN_FINGER})
ALERTS = frozenset({EventKind.DOOR_FORCED, EventKind.DOOR_HELD_OPEN, EventKind.TAMPER,
                    EventKind.FAULT, EventKind.ALARM, EventKind.PULSE_FAILED,
                    EventKind.PULSE_UNKNOWN})


def _door(door: DoorState) -> dict[str, Any]:
    online = door.online
    report = door.report
    return {
        "id": door.id,
        "name": door.name,
        "location": door.location or "",
        "online": online,
        "connection": "online" if online else "offline",
        "lock": "unknown" if not online else "locked" if door.locked else "unlocked",
        "contact": "unknown" if not online else "no contact" if door.door_open is None
        else "open" if door.door_open else "closed",
        "sensor": "online" if door.sensor_online else "offline",
        "fault": door.fault or "",
        "last_seen": local_time(report.at) if report is not None else "",
        "alarms": [f"{a.kind.value.replace('_', ' ')} since {local_time(a.raised_at)}"
                   + (f": {a.detail}" if a.detail else "") for a in door.alarms],
    }


def _event(row: EventRow) -> dict[str, Any]:
    tone = ("granted" if row.kind is EventKind.GRANTED else "refused" if row.kind in REFUSED
            else "alert" if row.kind in ALERTS else "info")
    return {
        "id": row.id,
        "time": local_time(row.at),
        "door": row.door or "",
        "kind": kind_label(row.kind),
        "tone": tone,
        "who": row.person or row.customer or ("unknown finger"
                                              if row.kind is EventKind.UNKNOWN_FINGER else ""),
        "method": row.method.value if row.method else "",
        "reason": reason_label(row.reason),
    }


def snapshot() -> dict[str, Any]:
    """Every door with its state and open alarms, and the latest events, ready to show."""
    with read_only_session() as session:
        return _snapshot(session, current_panel().now())


def _snapshot(session: Session, now: dt.datetime) -> dict[str, Any]:
    doors = [_door(door) for door in door_states(session, now)]
    events = page_events(session, EventFilter(), limit=LATEST_EVENTS).rows
    return {"doors": doors, "events": [_event(e) for e in events],
            "updated": local_time(now)}


@bp.get("/")
@login_required
def index() -> str:
    """The doors and the latest events, as they are now (then kept current by the script)."""
    return render_template("dashboard.html", user=current_staff(), state=snapshot())


@bp.get("/dashboard/state.json")
@login_required
def state() -> Response:
    """The same snapshot as JSON, polled by static/dashboard.js."""
    return jsonify(snapshot())
