"""The staff audit log and the login history, for auditors and admins: filterable, paged.

Both are read newest first and keyset-paginated on ``(at, id)`` (the tables' ``at`` indexes),
so a year of records pages as fast as a day. Filters come from a GET form and are validated
like any other form; a period is given in local days at the site. Reading either is itself
audited: the login history holds source addresses, the audit log staff members' actions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm
from sqlalchemy import ColumnElement, Select, func, or_, select
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from accessd.clock import day_start
from accessd.config import Settings
from accessd.customers.contracts import site_zone
from accessd.models import AuditOutcome, AuditRecord, LoginAttempt, LoginOutcome, StaffRole
from web.navigation import NavLink
from web.panel import current_panel, db
from web.request_audit import audit
from web.security import role_required

bp = Blueprint("audit_log", __name__, url_prefix="/audit")
nav = [NavLink("Audit log", "audit_log.index", order=80),
       NavLink("Logins", "audit_log.logins", order=81)]

PAGE_SIZE = 50
MAX_ID = 2**63 - 1
DATE_HINT = "YYYY-MM-DD, a day at the site."


class PeriodForm(FlaskForm):
    """Who, how it ended, and a period of local days (``until`` included)."""

    class Meta:
        csrf = False  # a GET form that only reads

    who = StringField("User name", [Optional(), Length(max=64, message="At most 64 characters.")],
                      description="Exact user name; for API tokens token:<name>.")
    since = DateField("From", [Optional()], description=DATE_HINT, render_kw={"type": "date"})
    until = DateField("To (included)", [Optional()], description=DATE_HINT,
                      render_kw={"type": "date"})

    def validate_until(self, field: DateField) -> None:
        """A period must not end before it starts."""
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The last day is before the first; swap them.")


class AuditFilterForm(PeriodForm):
    """Filters of the audit log."""

    action = StringField("Action", [Optional(), Length(max=64, message="At most 64 characters.")],
                         description="The start of an action, e.g. person. or door.")
    outcome = SelectField("Outcome", choices=[SelectChoice("", "Any"), *(
        SelectChoice(o.value, o.value) for o in AuditOutcome)], default="")


class LoginFilterForm(PeriodForm):
    """Filters of the login history."""

    outcome = SelectField("Outcome", choices=[SelectChoice("", "Any"), *(
        SelectChoice(o.value, o.value.replace("_", " ")) for o in LoginOutcome)], default="")


@dataclass(frozen=True, slots=True)
class Page:
    """Rows newest first, and the id to continue before (``None``: the last page)."""

    rows: list[Any]
    next_before: int | None


def _period(form: PeriodForm, column: Any) -> list[ColumnElement[bool]]:
    zone = site_zone(current_panel().settings or Settings())
    where: list[ColumnElement[bool]] = []
    if form.since.data:
        where.append(column >= day_start(form.since.data, zone))
    if form.until.data:
        where.append(column < day_start(form.until.data + dt.timedelta(days=1), zone))
    return where


def _before() -> int | None:
    text = request.args.get("before", "")
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID else None


def _page(model: Any, query: Select[Any], before: int | None) -> Page:
    """Keyset pagination on ``(at, id)`` descending; one row more says if a next page exists."""
    if before is not None:
        at = db().scalar(select(model.at).where(model.id == before))
        if at is not None:
            query = query.where(model.at <= at, or_(model.at < at, model.id < before))
    rows = list(db().scalars(query.order_by(model.at.desc(), model.id.desc())
                             .limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return Page(rows, rows[-1].id if more else None)


def _filters(form: FlaskForm) -> dict[str, str]:
    """The query string of the filters, to carry into the next page's link."""
    return {name: value for name, value in request.args.items(multi=False)
            if name != "before" and name in form._fields and value}


@bp.get("/")
@role_required(StaffRole.AUDITOR)
def index() -> str:
    """The audit log: who did what, when, from where, and how it ended."""
    form = AuditFilterForm(request.args)
    page = Page([], None)
    if form.validate():
        where = _period(form, AuditRecord.at)
        if form.who.data:
            where.append(AuditRecord.actor == form.who.data.strip())
        if form.action.data:
            prefix = form.action.data.strip()
            where.append(func.substr(AuditRecord.action, 1, len(prefix)) == prefix)
        if form.outcome.data:
            where.append(AuditRecord.outcome == AuditOutcome(form.outcome.data))
        page = _page(AuditRecord, select(AuditRecord).where(*where), _before())
        audit().note("audit_log.read", filters=_filters(form), count=len(page.rows))
    return render_template("audit/log.html", form=form, page=page, filters=_filters(form),
                           local=_local)


@bp.get("/logins")
@role_required(StaffRole.AUDITOR)
def logins() -> str:
    """The login history: the user name typed, source address, outcome and time."""
    form = LoginFilterForm(request.args)
    page = Page([], None)
    if form.validate():
        where = _period(form, LoginAttempt.at)
        if form.who.data:
            where.append(LoginAttempt.username == form.who.data.strip().lower())
        if form.outcome.data:
            where.append(LoginAttempt.outcome == LoginOutcome(form.outcome.data))
        page = _page(LoginAttempt, select(LoginAttempt).where(*where), _before())
        audit().note("login_history.read", filters=_filters(form), count=len(page.rows))
    return render_template("audit/logins.html", form=form, page=page, filters=_filters(form),
                           local=_local)


def _local(moment: dt.datetime) -> str:
    """A stored UTC moment in the site's time, to the second."""
    zone = site_zone(current_panel().settings or Settings())
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
