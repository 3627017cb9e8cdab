"""Staff accounts, for admins: list, add, disable, reset a password (or a lost second factor),
and unlock an account whose sign-in is paused after failed sign-ins.

New credentials are shown once, on the response to the POST that made them, and never
stored in plain text; the page is not cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired

from accessd.errors import LastAdminError, StaffError
from accessd.models import StaffRole
from accessd.staff import (
    IssuedCredentials,
    create_staff_user,
    disable_staff_user,
    get_staff_user_by_public_id,
    has_totp,
    list_staff_users,
    must_change_password,
    name_locks,
    reset_password,
    unlock_name,
)
from web.forms import ActionForm, as_sentence
from web.navigation import NavLink
from web.panel import current_panel, db, source_address
from web.qr import qr_svg
from web.request_audit import audit
from web.security import current_staff, role_required

if TYPE_CHECKING:
    from accessd.models import StaffUser

bp = Blueprint("staff_admin", __name__, url_prefix="/staff")
nav = [NavLink("Staff", "staff_admin.index", order=90)]

ROLE_CHOICES = [
    SelectChoice(StaffRole.ADMIN.value, _l("Admin: everything, including staff accounts")),
    SelectChoice(StaffRole.OPERATOR.value,
                 _l("Operator: customers, persons, enrolment, requests")),
    SelectChoice(StaffRole.AUDITOR.value,
                 _l("Auditor: read-only history, audit log, register")),
]


class NewStaffForm(ActionForm):
    """A new account: its user name and role (the password is generated)."""

    username = StringField(
        _l("User name"),
        [InputRequired(_l("Enter a user name."))],
        description=_l("Lower-case letters, digits, '.', '_' or '-', for example j.devries."),
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=StaffRole.OPERATOR.value)


class ResetForm(ActionForm):
    """Reset a password, and optionally issue a new second factor."""

    new_second_factor = BooleanField(
        _l("Also issue a new second factor (lost or replaced phone)"))


def site_time(moment: dt.datetime) -> str:
    """A stored UTC moment in the site's time, to the minute, with its zone: "2026-11-28 05:23
    CET"."""
    return current_panel().site.local(moment).strftime("%Y-%m-%d %H:%M %Z")


def _target(user: StaffUser) -> str:
    return f"staff:{user.public_id}"


def _user_or_404(public_id: uuid.UUID) -> StaffUser:
    user = get_staff_user_by_public_id(db(), public_id)
    if user is None:
        abort(404)
    return user


@bp.get("/")
@role_required(StaffRole.ADMIN)
def index() -> str:
    """Every staff account with its state and the actions on it."""
    users = list_staff_users(db())
    now = current_panel().now()
    return render_template(
        "staff/index.html",
        users=users,
        me=current_staff(),
        has_totp=has_totp,
        must_change_password=must_change_password,
        locks={user.id: name_locks(db(), user.username, now=now) for user in users},
        when=site_time,
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required(StaffRole.ADMIN)
def new() -> str:
    """Create an account; its password and second factor are shown once."""
    form = NewStaffForm()
    if request.method == "POST":
        audit().note("staff.create")  # refused too: the outcome says which
    if form.validate_on_submit():
        panel = current_panel()
        try:
            issued = create_staff_user(
                db(), form.username.data or "", StaffRole(form.role.data),
                provider=panel.keys, now=panel.now(),
            )  # fmt: skip
        except StaffError as exc:
            form.username.errors = [as_sentence(exc)]
        else:
            audit().note("staff.create", target=_target(issued.user), role=form.role.data)
            db().commit()
            return _credentials(issued, created=True)
    return render_template("staff/new.html", form=form)


@bp.post("/<uuid:public_id>/disable")
@role_required(StaffRole.ADMIN)
def disable(public_id: uuid.UUID) -> Response:
    """Disable an account; its sessions end at once."""
    user = _user_or_404(public_id)
    audit().note("staff.disable", target=_target(user))
    if ActionForm().validate_on_submit():
        try:
            disable_staff_user(db(), user, now=current_panel().now())
        except LastAdminError as exc:
            flash(as_sentence(exc), "error")
        else:
            db().commit()
            flash(_("%(name)s is disabled and signed out everywhere.", name=user.username),
                  "success")
    return redirect(url_for("staff_admin.index"))


@bp.post("/<uuid:public_id>/unlock")
@role_required(StaffRole.ADMIN)
def unlock(public_id: uuid.UUID) -> Response:
    """End every sign-in pause of an account at once (``accessd user unlock`` does the same)."""
    user = _user_or_404(public_id)
    audit().note("staff.unlock", target=_target(user))
    if ActionForm().validate_on_submit():
        was = unlock_name(db(), user.username, source_address=source_address(),
                          now=current_panel().now())
        audit().note(**was.audit_details())
        db().commit()
        if was.locked:
            flash(_("%(name)s can sign in again: the pause of their sign-in ended.",
                    name=user.username), "success")
        else:
            flash(_("%(name)s was not locked; failed sign-ins count from zero again.",
                    name=user.username), "info")
    return redirect(url_for("staff_admin.index"))


@bp.post("/<uuid:public_id>/reset-password")
@role_required(StaffRole.ADMIN)
def reset(public_id: uuid.UUID) -> Response | str:
    """Give an account a new password (and perhaps second factor), shown once."""
    user = _user_or_404(public_id)
    form = ResetForm()
    if not form.validate_on_submit():
        return redirect(url_for("staff_admin.index"))
    panel = current_panel()
    issued = reset_password(
        db(), user, now=panel.now(), provider=panel.keys,
        new_second_factor=bool(form.new_second_factor.data),
    )  # fmt: skip
    audit().note(
        "staff.reset_password", target=_target(user),
        new_second_factor=bool(form.new_second_factor.data),
    )  # fmt: skip
    db().commit()
    return _credentials(issued, created=False)


def _credentials(issued: IssuedCredentials, *, created: bool) -> str:
    uri = issued.provisioning_uri
    return render_template(
        "staff/credentials.html",
        issued=issued,
        created=created,
        qr=qr_svg(uri, title=f"QR code for {issued.user.username}") if uri else None,
    )
