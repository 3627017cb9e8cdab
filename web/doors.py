"""Remote unlock: staff let someone in (an escorted visitor, a person without a credential).

The panel never drives the relay: it queues a ``remote_unlock`` command with the reason, the
door's daemon pulses the lock and records the event (method ``remote``, the reason and who
asked). The request is audited here; the door event is the daemon's.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from accessd import commands
from accessd.models import CommandKind, Door, StaffRole
from web.audit import audit
from web.panel import db
from web.security import current_staff, role_required

bp = Blueprint("doors", __name__, url_prefix="/doors")

REASON_MAX = 150  # the daemon records "<reason> (by <staff>)" in a 200-character column


class UnlockForm(FlaskForm):
    """Why the door is opened remotely; kept with the door event and in the audit log."""

    reason = StringField(
        "Reason", [InputRequired("Say why, for example 'escorted visitor for Acme, ticket 4711'."),
                   Length(max=REASON_MAX, message=f"Keep it under {REASON_MAX} characters.")],
        description="Who is let in and why; kept in the access history and the audit log.")


def _door_or_404(door_id: int) -> Door:
    door = db().get(Door, door_id)
    if door is None:
        abort(404)
    return door


@bp.route("/<int:door_id>/unlock", methods=["GET", "POST"])
@role_required(StaffRole.OPERATOR)
def unlock(door_id: int) -> str | Response:
    """Ask the door's daemon to release the lock once, with a reason."""
    door = _door_or_404(door_id)
    form = UnlockForm()
    if form.validate_on_submit():
        staff = current_staff()
        assert staff is not None
        reason = " ".join((form.reason.data or "").split())
        command = commands.request(db(), door.id, CommandKind.REMOTE_UNLOCK,
                                   created_by=staff.username, reason=reason)
        audit().note("door.remote_unlock", target=f"door:{door.name}", reason=reason,
                     command=command.id)
        db().commit()
        flash(f"{door.name}: unlock requested. The door releases within a few seconds if its "
              "daemon runs; the dashboard shows the event.", "success")
        return redirect(url_for("dashboard.index"))
    return render_template("doors/unlock.html", door=door, form=form)
