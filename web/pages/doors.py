"""Doors: the list with each door's zone and authentication mode, its settings (admins),
remote unlock (an escorted visitor, a person without a credential), clearing a door's alarms
once their cause has been dealt with, and approving a replaced sensor the door refused
(``accessd.door.sensor_identity``, as ``accessd sensor approve``).

The panel never drives the door: it queues a command (``remote_unlock``, ``clear_alarm``) and
the door's daemon carries it out and records the event (who asked, and why). The request is
audited here; the door event is the daemon's. Clearing a tamper alarm also makes the daemon
refill the sensor it wiped.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from accessd.door import command_table
from accessd.door.alarms import alarm_label, open_alarms
from accessd.door.doors import get_door
from accessd.door.remote_unlock import REASON_MAX, request_unlock
from accessd.door.sensor_identity import approve_sensor
from accessd.errors import AccessdError, InvalidInputError, NotFoundError, RefusedError
from accessd.models import Alarm, AlarmKind, AuthMode, CommandKind, Door, StaffRole, utcnow
from accessd.staff import role_allows
from accessd.zones.grants import libraries_follow
from accessd.zones.places import door_place, door_places, list_zones, place_door, set_auth_mode
from web.forms import as_sentence
from web.navigation import NavLink
from web.panel import db
from web.request_audit import audit
from web.security import current_staff, login_required, role_required

bp = Blueprint("doors", __name__, url_prefix="/doors")
nav = [NavLink("Doors", "doors.index", order=10)]

MODE_LABELS = {
    AuthMode.FINGER: _l("Finger (or a person code, then the finger checked 1:1)"),
    AuthMode.PIN: _l("PIN at the keypad"),
    AuthMode.FINGER_OR_PIN: _l("Finger or PIN"),
    AuthMode.FINGER_AND_PIN: _l("Finger and PIN: two factors, for cages and suites"),
}
NO_ZONE = ""

NOTE_MAX = 150  # what was checked before clearing alarms: kept in the audit record's details


def _alarm_words(alarm: Alarm) -> str:
    """What the alarm is called, in the page's language."""
    return _(alarm_label(alarm))


class UnlockForm(FlaskForm):
    """Why the door is opened remotely; kept with the door event and in the audit log. Its
    length is the remote-unlock service's rule (``accessd.door.remote_unlock``), checked there
    as for the CLI and the API."""

    reason = StringField(
        _l("Reason"),
        [InputRequired(_l("Say why, for example 'escorted visitor for Acme, ticket 4711'."))],
        description=_l("Who is let in and why, in at most %(num)d characters; kept in the "
                       "access history and the audit log.", num=REASON_MAX))


class ClearAlarmsForm(FlaskForm):
    """What was checked before the alarms go: kept in the audit log."""

    note = StringField(
        _l("What you checked or fixed"),
        [InputRequired(_l("Say what was done, for example 'door closed again, frame checked'.")),
         Length(max=NOTE_MAX, message=_l("Keep it under %(num)d characters.", num=NOTE_MAX))],
        description=_l("Kept in the audit log with your name."))


class DoorSettingsForm(FlaskForm):
    """Where a door leads and what it asks for."""

    zone = SelectField(_l("Zone"), description=_l("Who may use the door follows from the grants "
                                                  "of this zone and the zones around it."))
    auth_mode = SelectField(_l("Authentication"),
                            [InputRequired(_l("Choose what the door asks for."))],
                            choices=[SelectChoice(m.value, label)
                                     for m, label in MODE_LABELS.items()])


@bp.get("/")
@login_required
def index() -> str:
    """Every door with its zone and authentication mode."""
    return render_template("doors/index.html", doors=door_places(db()), modes=MODE_LABELS)


@bp.route("/<int:door_id>/settings", methods=["GET", "POST"])
@role_required(StaffRole.ADMIN)
def settings(door_id: int) -> str | Response:
    """A door's zone and authentication mode (admins: who gets in follows from them)."""
    try:
        place = door_place(db(), door_id)
    except NotFoundError:
        abort(404)
    form = DoorSettingsForm(data={"zone": place.zone or NO_ZONE,
                                  "auth_mode": place.auth_mode.value})
    form.zone.choices = [SelectChoice(NO_ZONE, _("No zone (the door lets nobody in)"))] + [
        SelectChoice(z.name, " > ".join(z.path)) for z in list_zones(db())]
    if form.is_submitted():
        audit().note("door.settings", target=f"door:{place.name}", zone=form.zone.data,
                     mode=form.auth_mode.data)
    if form.validate_on_submit():
        try:
            place_door(db(), place.name, form.zone.data or None)
            set_auth_mode(db(), place.name, form.auth_mode.data or "")
            staff = current_staff()
            assert staff is not None
            libraries_follow(db(), staff.username)
        except AccessdError as exc:
            form.zone.errors = [*form.zone.errors, as_sentence(exc)]
        else:
            db().commit()
            flash(_("%(door)s: settings saved; the door applies them from its next attempt.",
                    door=place.name), "success")
            return redirect(url_for("doors.index"))
    return render_template("doors/settings.html", place=place, form=form)


def _door_or_404(door_id: int) -> Door:
    try:
        return get_door(db(), door_id)
    except NotFoundError:
        abort(404)


@bp.get("/alarms")
@login_required
def alarms() -> str:
    """Every open alarm of the site, by door (the header's indicator links here)."""
    alarms = open_alarms(db())
    staff = current_staff()
    may_clear = staff is not None and role_allows(staff.role, (StaffRole.OPERATOR,))
    return render_template("doors/open_alarms.html", alarms=alarms, may_clear=may_clear,
                           what=_alarm_words)


@bp.route("/<int:door_id>/unlock", methods=["GET", "POST"])
@role_required(StaffRole.OPERATOR)
def unlock(door_id: int) -> str | Response:
    """Ask the door's daemon to release the lock once, with a reason."""
    door = _door_or_404(door_id)
    form = UnlockForm()
    if form.validate_on_submit():
        staff = current_staff()
        assert staff is not None
        try:
            command = request_unlock(db(), door.id, form.reason.data or "",
                                     actor=staff.username)
        except InvalidInputError as exc:
            form.reason.errors = [*form.reason.errors, str(exc)]  # as the CLI and API say it
        else:
            audit().note("door.remote_unlock", target=f"door:{door.name}",
                         reason=command.args["reason"], command=command.id)
            db().commit()
            flash(_("%(door)s: unlock requested. The door releases within a few seconds if its "
                    "daemon runs; the dashboard shows the event.", door=door.name), "success")
            return redirect(url_for("dashboard.index"))
    return render_template("doors/unlock.html", door=door, form=form)


@bp.route("/<int:door_id>/alarms", methods=["GET", "POST"])
@role_required(StaffRole.OPERATOR)
def clear_alarms(door_id: int) -> str | Response:
    """Show a door's open alarms; on POST, ask its daemon to clear them."""
    door = _door_or_404(door_id)
    alarms = open_alarms(db(), door.id)
    form = ClearAlarmsForm()
    if alarms and form.validate_on_submit():
        staff = current_staff()
        assert staff is not None
        note = " ".join((form.note.data or "").split())
        command = command_table.request(db(), door.id, CommandKind.CLEAR_ALARM,
                                   created_by=staff.username)
        audit().note("door.clear_alarms", target=f"door:{door.name}", reason=note,
                     alarms=len(alarms), command=command.id)
        db().commit()
        flash(_("%(door)s: clearing %(num)d alarm(s) requested. The daemon clears them within "
                "a few seconds and records it; after tampering it refills the sensor.",
                door=door.name, num=len(alarms)), "success")
        return redirect(url_for("dashboard.index"))
    return render_template("doors/alarms.html", door=door, alarms=alarms, form=form,
                           approve_form=ApproveSensorForm(), what=_alarm_words,
                           swapped=any(a.kind is AlarmKind.SENSOR_SWAPPED for a in alarms))


class ApproveSensorForm(FlaskForm):
    """What was checked at the reader before its new sensor is trusted: kept in the audit log."""

    checked = StringField(
        _l("What you checked at the reader"),
        [InputRequired(_l("Say what was checked, for example 'sensor replaced by us, ticket "
                          "812'.")),
         Length(max=NOTE_MAX, message=_l("Keep it under %(num)d characters.", num=NOTE_MAX))],
        description=_l("Kept in the audit log with your name."))


@bp.route("/<int:door_id>/sensor/approve", methods=["POST"])
@role_required(StaffRole.OPERATOR)
def approve_replaced_sensor(door_id: int) -> str | Response:
    """Approve the sensor the door refused: its daemon takes it into use and refills it."""
    door = _door_or_404(door_id)
    form = ApproveSensorForm()
    if not form.validate_on_submit():
        return render_template("doors/alarms.html", door=door, alarms=open_alarms(db(), door.id),
                               form=ClearAlarmsForm(formdata=None), approve_form=form,
                               what=_alarm_words, swapped=True)
    staff = current_staff()
    assert staff is not None
    try:
        identity = approve_sensor(db(), door.id, by=staff.username, at=utcnow())
    except RefusedError as exc:
        flash(str(exc), "error")
        return redirect(url_for("doors.clear_alarms", door_id=door.id))
    audit().note("door.approve_sensor", target=f"door:{door.name}",
                 reason=" ".join((form.checked.data or "").split()), sensor=identity)
    db().commit()
    flash(_("%(door)s: sensor approved. Its daemon takes it into use and refills it within a "
            "second.", door=door.name), "success")
    return redirect(url_for("dashboard.index"))
