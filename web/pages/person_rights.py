"""What destroys or hands over a person's data, reached from the person's page (the hub).

Removing one finger, withdrawing consent and erasing each show first what will be lost
(a confirmation page, server-side: no inline script under the CSP), then do it on a POST that
carries the CSRF token. The export downloads everything held on the person. The rules live in
``accessd.rights.actions`` and ``accessd.rights.export``; after a commit that destroyed data
the WAL is checkpointed and the person's backup key dropped (``_destroyed``).

The old addresses under ``/privacy/persons/<id>`` redirect here (``web.pages.privacy``).
"""

from __future__ import annotations

import tempfile
import uuid

from flask import Blueprint, Response, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from accessd.backup.housekeeping import sync_backup_keys
from accessd.db import checkpoint_wal
from accessd.errors import AccessdError, NotFoundError, RightsError
from accessd.labels import label as code_label
from accessd.models import FingerLabel, StaffRole
from accessd.rights.actions import erase_person, preview_withdrawal, remove_finger, withdraw_consent
from accessd.rights.export import export_person
from accessd.rights.requests import open_requests_about
from web.forms import ActionForm, as_sentence
from web.pages.customers import person_or_404
from web.panel import current_panel, db
from web.request_audit import audit
from web.security import current_staff, role_required

bp = Blueprint("person_rights", __name__, url_prefix="/customers/persons")

ACT = (StaffRole.OPERATOR,)  # admins pass every role check
SPOOL_BYTES = 8 * 1024 * 1024  # a person's export beyond this goes to a temporary file


def _by() -> str:
    staff = current_staff()
    assert staff is not None
    return staff.username


def _label(text: str) -> FingerLabel | None:
    try:
        return FingerLabel(text)
    except ValueError:
        return None


def _destroyed() -> None:
    """After a commit that destroyed data: move the WAL into the (zeroed) file, and drop the
    person's backup key now (not at the daemon's next hourly reconciliation)."""
    panel = current_panel()
    try:
        checkpoint_wal(panel.engine)
    except AccessdError:  # a busy reader: the daemon's next checkpoint truncates it
        pass
    if panel.settings is not None:  # a real installation, with its backup directory
        warning = sync_backup_keys(panel.settings, panel.sessions, panel.keys)
        if warning:
            flash(warning, "warning")


def _hub(public_id: uuid.UUID) -> BaseResponse:
    return redirect(url_for("customers.person", public_id=public_id))


# --- one finger --------------------------------------------------------------------------------

@bp.get("/<uuid:public_id>/fingers/<label>/remove")
@role_required(*ACT)
def remove_finger_confirm(public_id: uuid.UUID, label: str) -> str | BaseResponse:
    """What removing one finger deletes, before anything happens; ``?then=enrol`` goes on to
    enrolling it again."""
    found = person_or_404(public_id)
    audit().note("person.view", target=f"person:{found.public_id}", page="remove finger")
    wanted = _label(label)
    finger = next((f for f in found.fingers if f.label is wanted), None)
    if finger is None:
        flash(_("%(name)s has no such finger enrolled; nothing to remove.", name=found.name),
              "error")
        return _hub(found.public_id)
    return render_template("customers/remove_finger.html", person=found, finger=finger,
                           doors=preview_withdrawal(db(), found).doors or None,
                           then=request.args.get("then", ""), action=ActionForm())


@bp.post("/<uuid:public_id>/fingers/<label>/remove")
@role_required(*ACT)
def remove_finger_confirmed(public_id: uuid.UUID, label: str) -> BaseResponse:
    """Delete one finger: its template here and, by a resync, on every door's sensor."""
    found = person_or_404(public_id)
    audit().note("person.remove_finger", target=f"person:{found.public_id}", finger=label[:20])
    if not ActionForm().validate_on_submit():
        flash(_("The form had expired; nothing was removed. Try again."), "error")
        return _hub(found.public_id)
    try:
        done = remove_finger(db(), found, label, _by(), provider=current_panel().keys,
                             now=current_panel().now())
    except NotFoundError as exc:
        flash(as_sentence(exc), "error")
        return _hub(found.public_id)
    db().commit()
    _destroyed()
    flash(_("The %(finger)s of %(name)s is removed, here and (at each door's next resync) on "
            "every sensor; %(left)d finger(s) left.", finger=_(code_label(done.label)),
            name=found.name, left=done.fingers_left), "success")
    if request.form.get("then") == "enrol":
        return redirect(url_for("enrolment.start", public_id=found.public_id,
                                finger=done.label.value))
    return _hub(found.public_id)


# --- consent -----------------------------------------------------------------------------------

@bp.get("/<uuid:public_id>/withdraw-consent")
@role_required(*ACT)
def withdraw_confirm(public_id: uuid.UUID) -> str:
    """What withdrawing consent deletes (templates, on every sensor), before it happens."""
    found = person_or_404(public_id)
    audit().note("person.view", target=f"person:{found.public_id}", page="withdraw consent")
    return render_template("customers/withdraw.html", person=found,
                           preview=preview_withdrawal(db(), found), action=ActionForm())


@bp.post("/<uuid:public_id>/withdraw-consent")
@role_required(*ACT)
def withdraw(public_id: uuid.UUID) -> BaseResponse:
    """Record a withdrawal of consent: the person's templates are deleted at once."""
    found = person_or_404(public_id)
    audit().note("person.withdraw_consent", target=f"person:{found.public_id}")
    if not ActionForm().validate_on_submit():
        flash(_("The form had expired; nothing was withdrawn. Try again."), "error")
        return redirect(url_for("person_rights.withdraw_confirm", public_id=found.public_id))
    try:
        summary = withdraw_consent(db(), found, _by(), provider=current_panel().keys,
                                   now=current_panel().now())
    except RightsError as exc:
        flash(as_sentence(exc), "error")
    else:
        audit().note(fingers_deleted=summary.fingers_deleted)
        db().commit()
        _destroyed()
        flash(_("Consent withdrawn: %(num)d fingerprint template(s) deleted; way in now: "
                "%(way_in)s.", num=summary.fingers_deleted,
                way_in=_(code_label(summary.credential))), "success")
    return _hub(found.public_id)


# --- erasure and export ------------------------------------------------------------------------

@bp.get("/<uuid:public_id>/erase")
@role_required(*ACT)
def erase_confirm(public_id: uuid.UUID) -> str:
    """What erasing the person destroys, before anything happens."""
    found = person_or_404(public_id)
    audit().note("person.view", target=f"person:{found.public_id}", page="erase")
    return render_template("customers/erase.html", person=found, action=ActionForm(),
                           requests=open_requests_about(db(), found,
                                                        current_panel().site.today()))


@bp.post("/<uuid:public_id>/erase")
@role_required(*ACT)
def erase(public_id: uuid.UUID) -> BaseResponse:
    """Erase the person (art. 17): templates everywhere, consents, the row; history anonymised."""
    found = person_or_404(public_id)
    audit().note("person.erase", target=f"person:{found.public_id}")
    if not ActionForm().validate_on_submit():
        flash(_("The form had expired; nothing was erased. Try again."), "error")
        return redirect(url_for("person_rights.erase_confirm", public_id=found.public_id))
    name, customer = found.name, found.customer.public_id
    summary = erase_person(db(), found, _by(), provider=current_panel().keys,
                           now=current_panel().now())
    audit().note(fingers=summary.fingers, consents=summary.consents,
                 access_events_anonymised=summary.access_events_anonymised)
    db().commit()
    _destroyed()
    flash(_("%(name)s is erased: %(fingers)d finger(s) and %(consents)d consent record(s) "
            "deleted, %(events)d access event(s) anonymised; %(doors)d door(s) asked to clear "
            "their sensor.", name=name, fingers=summary.fingers, consents=summary.consents,
            events=summary.access_events_anonymised, doors=summary.doors_asked_to_resync),
          "success")
    if request.form.get("then") == "requests":
        return redirect(url_for("privacy.requests"))
    return redirect(url_for("customers.detail", public_id=customer))


@bp.post("/<uuid:public_id>/export")
@role_required(*ACT)
def export(public_id: uuid.UUID) -> Response | BaseResponse:
    """Everything held on the person, as JSON and CSV in one zip archive (art. 15 and 20)."""
    found = person_or_404(public_id)
    audit().note("person.export", target=f"person:{found.public_id}")
    if not ActionForm().validate_on_submit():
        flash(_("The form had expired; nothing was exported. Try again."), "error")
        return _hub(found.public_id)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # send_file closes it
    summary = export_person(db(), found, spool, now=current_panel().now())  # type: ignore[arg-type]
    audit().note(counts=summary.counts)
    spool.seek(0)
    day = current_panel().now().strftime("%Y%m%d")
    return send_file(spool, mimetype="application/zip", as_attachment=True,
                     download_name=f"export-person-{found.public_id}-{day}.zip")
