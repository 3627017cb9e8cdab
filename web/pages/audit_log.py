"""The staff audit log and the login history, for auditors and admins: filterable, paged.

Reading is ``accessd.staff.audit``'s: newest first, keyset-paginated, a period in local days
at the site. Filters come from a GET form and are validated like any other form. Reading
either is itself audited: the login history holds source addresses, the audit log staff
members' actions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from accessd.errors import InvalidInputError
from accessd.inputs import parse_id
from accessd.labels import label
from accessd.models import AuditOutcome, LoginOutcome, StaffRole
from accessd.staff.audit import (
    AuditLogFilter,
    LoginHistoryFilter,
    RecordPage,
    audit_targets,
    page_audit_log,
    page_login_history,
)
from web.forms import DATE_HINT, WithinDays
from web.navigation import NavLink
from web.panel import current_panel, db
from web.request_audit import audit
from web.security import role_required
from web.times import site_time

bp = Blueprint("audit_log", __name__, url_prefix="/audit")
nav = [NavLink("Audit log", "audit_log.index", order=80),
       NavLink("Logins", "audit_log.logins", order=81)]

NOT_A_DATE = _l("Enter a day as YYYY-MM-DD, for example 2026-03-01.")
NOT_A_CHOICE = _l("Choose one of the listed options.")
TARGET_KINDS = {"person": _l("person"), "customer": _l("customer"),
                "staff": _l("staff account"), "request": _l("request"), "door": _l("door")}
"""What an audit record's target is, shown beside its name."""
GONE = {"person": _l("deleted person"), "customer": _l("deleted customer"),
        "staff": _l("deleted staff account"), "request": _l("deleted request")}
"""What a target that no longer exists is shown as (its public id tells staff nothing)."""


class PeriodForm(FlaskForm):
    """Who, how it ended, and a period of local days (``until`` included)."""

    class Meta:
        csrf = False  # a GET form that only reads

    who = StringField(_l("User name"),
                      [Optional(), Length(max=64, message=_l("At most 64 characters."))],
                      description=_l("Exact user name; for API tokens token:NAME."))
    since = DateField(_l("From"), [Optional(), WithinDays()], description=DATE_HINT,
                      render_kw={"type": "date"}, invalid_value_message=NOT_A_DATE)
    until = DateField(_l("To (included)"), [Optional(), WithinDays()], description=DATE_HINT,
                      render_kw={"type": "date"}, invalid_value_message=NOT_A_DATE)

    def validate_until(self, field: DateField) -> None:
        """A period must not end before it starts."""
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError(_("The last day is before the first; swap them."))


class AuditFilterForm(PeriodForm):
    """Filters of the audit log."""

    action = StringField(_l("Action"),
                         [Optional(), Length(max=64, message=_l("At most 64 characters."))],
                         description=_l("The start of an action, e.g. person. or door."))
    outcome = SelectField(_l("Outcome"), choices=[SelectChoice("", _l("Any")), *(
        SelectChoice(o.value, _l(label(o))) for o in AuditOutcome)], default="",
        invalid_choice_message=NOT_A_CHOICE)


class LoginFilterForm(PeriodForm):
    """Filters of the login history."""

    outcome = SelectField(_l("Outcome"), choices=[SelectChoice("", _l("Any")), *(
        SelectChoice(o.value, _l(label(o))) for o in LoginOutcome)], default="",
        invalid_choice_message=NOT_A_CHOICE)


def _before() -> int | None:
    """The page's cursor; one that is not a record id is said, and the newest page shown."""
    text = request.args.get("before", "")
    try:
        return parse_id("before", text) if text else None
    except InvalidInputError as exc:
        flash(_("%(problem)s; showing the newest records.", problem=str(exc)), "info")
        return None


def _filters(form: FlaskForm) -> dict[str, str]:
    """The query string of the filters, to carry into the next page's link."""
    return {name: value for name, value in request.args.items(multi=False)
            if name != "before" and name in form._fields and value}


@bp.get("/")
@role_required(StaffRole.AUDITOR)
def index() -> str:
    """The audit log: who did what, when, from where, and how it ended."""
    form = AuditFilterForm(request.args)
    page: RecordPage[Any] = RecordPage([], None)
    if form.validate():
        where = AuditLogFilter(
            actor=form.who.data.strip() if form.who.data else None,
            action_prefix=form.action.data.strip() if form.action.data else None,
            outcome=AuditOutcome(form.outcome.data) if form.outcome.data else None,
            since=form.since.data, until=form.until.data)
        page = page_audit_log(db(), where, current_panel().site, before=_before())
        audit().note("audit_log.read", filters=_filters(form), count=len(page.rows))
    return render_template("audit/log.html", form=form, page=page, filters=_filters(form),
                           local=_local,
                           targets=audit_targets(db(), (r.target for r in page.rows)),
                           kinds=TARGET_KINDS, gone=GONE)


@bp.get("/logins")
@role_required(StaffRole.AUDITOR)
def logins() -> str:
    """The login history: the user name typed, source address, outcome and time."""
    form = LoginFilterForm(request.args)
    page: RecordPage[Any] = RecordPage([], None)
    if form.validate():
        where = LoginHistoryFilter(
            username=form.who.data.strip() if form.who.data else None,
            outcome=LoginOutcome(form.outcome.data) if form.outcome.data else None,
            since=form.since.data, until=form.until.data)
        page = page_login_history(db(), where, current_panel().site, before=_before())
        audit().note("login_history.read", filters=_filters(form), count=len(page.rows))
    return render_template("audit/logins.html", form=form, page=page, filters=_filters(form),
                           local=_local)


def _local(moment: dt.datetime) -> Markup:
    """A stored UTC moment in the site's time with its zone, to the second, on one line."""
    return site_time(moment)
