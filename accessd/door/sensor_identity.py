"""Is this the sensor the door provisioned? The one rule, for the daemon, the CLI and the panel.

The sensor sits outside the door, in reach of anyone passing. At each start (each time its
thread opens it) the daemon opens it with the installation's password and compares what it says
about itself (``Sensor.identity()``: the ZFM's system parameters) with what was stored when it
was provisioned. A sensor with other parameters, or one on its factory password where one had
been provisioned, is refused: the door takes no fingerprint decision with it (the keypad still
works) and raises an alarm, until staff approve it (``accessd sensor approve``). The door's
first sensor is adopted as it is found.

What this does not catch is said in the DPIA: a device built to answer like the real sensor.

Services add to the caller's session; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from accessd.door.doors import get_door
from accessd.errors import RefusedError
from accessd.models import Alarm, AlarmKind


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with the sensor found: ``adopt`` it (store its identity), use it as it is,
    or refuse it (``refused`` says why, in words for the alarm)."""

    adopt: bool = False
    approved: bool = False  # adopted because staff approved it
    refused: str | None = None


def check_sensor(session: Session, door_id: int, identity: str, *, factory: bool) -> Verdict:
    """The verdict on the sensor the daemon just opened; records a refused sensor's identity
    (for staff to approve) and an adopted one's.

    :param factory: it opened only with the factory password.
    """
    door = get_door(session, door_id)
    stored = door.sensor_identity
    if stored is None:
        approved = door.sensor_refused is not None
        door.sensor_identity, door.sensor_refused = identity, None
        return Verdict(adopt=True, approved=approved)
    if factory:
        why = "a sensor on its factory password took the place of the one this door provisioned"
    elif identity != stored:
        why = (f"the sensor's parameters ({identity}) are not those of the sensor this door "
               f"provisioned ({stored})")
    else:
        return Verdict()
    door.sensor_refused = identity
    return Verdict(refused=(
        f"{why}; no fingerprint opens this door until staff check the reader and approve "
        f"the sensor: `accessd sensor approve --door {door.name}`"))


def approve_sensor(session: Session, door_id: int, *, by: str, at: dt.datetime) -> str:
    """Staff approve the sensor the door refused: its daemon adopts it at its next try (within
    a second) and refills it. Clears the door's swapped-sensor alarm. Returns the identity
    approved.

    :raises RefusedError: the door refused no sensor.
    """
    door = get_door(session, door_id)
    if door.sensor_refused is None:
        raise RefusedError(f"door {door.name!r} refused no sensor: there is nothing to approve")
    approved = door.sensor_refused
    door.sensor_identity = None  # the daemon adopts what it finds next, and clears the refusal
    session.execute(update(Alarm).where(
        Alarm.door_id == door_id, Alarm.kind == AlarmKind.SENSOR_SWAPPED,
        Alarm.cleared_at.is_(None)).values(cleared_at=at, cleared_by=by))
    return approved
