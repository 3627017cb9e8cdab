"""Enrolling a finger from the panel: consent when it is needed, then the daemon's live steps.

The panel does no hardware work: it checks the rules (``accessd.fingers.enrolment.check_may_enrol``,
the same words the daemon would use), records consent when the customer relies on it, and
queues an ``enroll`` command for the chosen door. The daemon writes its progress ("place
finger", "lift", ...) on the command row; the progress page polls it through a small JSON
endpoint (``static/enrolment.js``) and works without JavaScript by reloading.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectChoice, SelectField

from accessd.customers.people import record_consent
from accessd.door import command_table
from accessd.errors import AccessdError
from accessd.fingers.enrolment import (
    EnrolmentCommand,
    check_door_may_enrol,
    check_may_enrol,
    consent_needed,
    door_refusal,
    early_refusal,
    enrolment_command,
    enrolment_doors,
)
from accessd.labels import N_
from accessd.labels import label as code_label
from accessd.models import CommandKind, CommandState, FingerLabel, StaffRole
from web.forms import as_sentence
from web.pages.customers import person_or_404, place_error, site_settings
from web.panel import current_panel, db
from web.request_audit import audit
from web.security import current_staff, role_required

if TYPE_CHECKING:
    from accessd.models import DeviceCommand

bp = Blueprint("enrolment", __name__, url_prefix="/enrolment")

FINGER_CHOICES = [SelectChoice(label.value, label.value.replace("_", " ").capitalize())
                  for label in FingerLabel]
FINGER_VALUES = frozenset(label.value for label in FingerLabel)
STEPS = (N_("place finger"), N_("lift"), N_("place the same finger again"), N_("saving"),
         N_("done"))
"""The daemon's steps (its progress starts with one of them; the page shows them translated)."""


class EnrolForm(FlaskForm):
    """Which finger, at which door, and (when needed) the person's consent."""

    door = SelectField(_l("Door with the reader"), coerce=int)
    finger = SelectField(_l("Finger"), choices=FINGER_CHOICES,
                         default=FingerLabel.RIGHT_INDEX.value)
    consent = BooleanField(_l("The person read the consent text and agreed, and I witnessed it"))


class _FormIncomplete(Exception):
    """The form is valid field by field but misses the consent confirmation."""


def _max_fingers() -> int:
    return site_settings().access.max_fingers_per_person


@bp.route("/<uuid:public_id>", methods=["GET", "POST"])
@role_required(StaffRole.OPERATOR)
def start(public_id: uuid.UUID) -> str | Response:
    """The enrolment form: door, finger, consent; queues the command for the daemon."""
    person = person_or_404(public_id)
    doors = enrolment_doors(db())
    form = EnrolForm()
    # A door whose reader is tampered is listed with the reason: nothing is enrolled there.
    refused_doors = {door.id: door_refusal(db(), door.id) for door in doors}
    form.door.choices = [SelectChoice(door.id, door.name if refused_doors[door.id] is None
                                      else _("%(door)s (tamper alarm: not now)", door=door.name))
                         for door in doors]
    form.finger.choices = [SelectChoice(finger.value, _(code_label(finger)).capitalize())
                           for finger in FingerLabel]
    if request.method == "GET" and request.args.get("finger") in FINGER_VALUES:
        form.finger.data = request.args["finger"]
    needs_consent = consent_needed(db(), person)
    version = site_settings().enrollment.consent_text_version
    # Refusals no choice on the form can cure: say so before anyone walks to the reader.
    today = current_panel().site.today()
    early = early_refusal(db(), person, _max_fingers(), today=today)
    refusal = as_sentence(early) if early is not None else None
    if request.method == "POST":
        audit().note("enrolment.start", target=f"person:{person.public_id}")
        if refusal is not None:  # the page offered no form; a hand-made POST is refused
            audit().refuse("rule")
    if refusal is None and doors and form.validate_on_submit():
        staff = current_staff()
        assert staff is not None
        label = FingerLabel(form.finger.data)
        try:
            if needs_consent:
                if not form.consent.data:
                    form.consent.errors = [
                        _("Confirm that the person agreed, or do not enrol: they can use a PIN "
                          "or be let in by staff instead.")]
                    raise _FormIncomplete
                record_consent(db(), person, version, staff.username, now=current_panel().now())
                audit().note(consent_recorded=True, text_version=version)
            check_may_enrol(db(), person, label, _max_fingers(), today=today)
            try:
                check_door_may_enrol(db(), form.door.data)
            except AccessdError as exc:
                form.door.errors = [*form.door.errors, as_sentence(exc)]
                raise _FormIncomplete from None
            command = command_table.request(
                db(), form.door.data, CommandKind.ENROLL, created_by=staff.username,
                person_id=person.id, finger=label.value, by=staff.username)
        except _FormIncomplete:
            db().rollback()
        except AccessdError as exc:
            db().rollback()
            place_error(form, exc, "finger")
        else:
            audit().note(finger=label.value, door=form.door.data, command=command.id)
            db().commit()
            return redirect(url_for("enrolment.progress", command_id=command.id))
    return render_template("enrolment/start.html", person=person, form=form, doors=doors,
                           needs_consent=needs_consent, version=version, refusal=refusal,
                           door_warnings=[as_sentence(r) for r in refused_doors.values() if r])


def _command_or_404(command_id: int) -> EnrolmentCommand:
    found = enrolment_command(db(), command_id)
    if found is None:
        abort(404)
    return found


def command_state(command: DeviceCommand) -> dict[str, Any]:
    """What the progress page shows: the state, the daemon's last word, and whether it ended."""
    finished = command.state in command_table.FINISHED
    progress = command.progress or ("waiting for the door's daemon to pick this up"
                                    if command.state is CommandState.PENDING else "starting")
    return {
        "state": command.state.value,
        "progress": progress,
        "finished": finished,
        "ok": command.state is CommandState.DONE,
        "step": next((i for i, step in enumerate(STEPS) if progress.startswith(step)), None),
    }


@bp.get("/commands/<int:command_id>")
@role_required(StaffRole.OPERATOR)
def progress(command_id: int) -> str:
    """The live progress of one enrolment (updated by static/enrolment.js)."""
    found = _command_or_404(command_id)
    command = found.command
    return render_template("enrolment/progress.html", command=command, person=found.person,
                           status=command_state(command), steps=[_(step) for step in STEPS],
                           finger=_finger_words(str(command.args.get("finger", ""))))


def _finger_words(value: str) -> str:
    """The finger of an enrolment command in words ("" for none)."""
    return _(code_label(FingerLabel(value))) if value in FINGER_VALUES else value.replace("_", " ")


@bp.get("/commands/<int:command_id>/state.json")
@role_required(StaffRole.OPERATOR)
def progress_state(command_id: int) -> Response:
    """The command's state as JSON, for the progress page's polling."""
    return jsonify(command_state(_command_or_404(command_id).command))
