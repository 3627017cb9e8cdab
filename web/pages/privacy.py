"""Privacy: purge schedule and records, data-subject requests, rights on a person, register.

Operators and admins act; auditors read the schedule, the purge records (with their signed
certificates), the requests and the register. Every action and every export is audited. The
rules live in ``accessd.privacy.purge``, ``accessd.rights.actions`` and
``accessd.privacy.processing_register``: the views only
call them, show their refusals beside the field, and commit. After a commit that destroyed
data (erasure, consent withdrawal) the WAL is checkpointed, as ``accessd.rights.actions`` asks.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse
from wtforms import DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from accessd.backup.housekeeping import sync_backup_keys
from accessd.config import OPEN_REQUEST_REMINDER_DAYS, Settings
from accessd.customers.consent import active_consent
from accessd.customers.contracts import customer_names, get_customer_by_public_id
from accessd.customers.people import get_person_by_public_id
from accessd.db import checkpoint_wal
from accessd.errors import (
    AccessdError,
    InvalidInputError,
    PersonStateError,
    RightsError,
    SubjectRequestError,
)
from accessd.models import RequestKind, RequestStatus, StaffRole
from accessd.privacy.processing_register import (
    BASIS_COLUMNS,
    COLUMNS,
    DETAIL_COLUMNS,
    LANGS,
    build_register,
    installation_facts,
)
from accessd.privacy.processing_register import render_register as render_register_text
from accessd.privacy.purge import get_purge_record, list_purges, purge_plan
from accessd.rights.actions import erase_person, lift_restriction, restrict, withdraw_consent
from accessd.rights.export import export_person
from accessd.rights.requests import (
    MAX_MONTHS,
    add_months,
    close_request,
    due_on,
    extend_request,
    get_request_by_public_id,
    open_request_ends,
    record_request,
    request_overview,
    request_subjects,
)
from web.forms import DATE_HINT, ActionForm, as_sentence
from web.navigation import NavLink
from web.panel import current_panel, db
from web.request_audit import audit
from web.security import current_staff, role_required
from web.times import site_time

if TYPE_CHECKING:
    from accessd.models import Customer, DataSubjectRequest, Person

bp = Blueprint("privacy", __name__, url_prefix="/privacy")
nav = [NavLink("Privacy", "privacy.index", order=60),
       NavLink("Requests", "privacy.requests", order=61)]

ACT = (StaffRole.OPERATOR,)  # admins pass every role check
READ = (StaffRole.OPERATOR, StaffRole.AUDITOR)
CLOSED_SHOWN = 50
SPOOL_BYTES = 8 * 1024 * 1024  # a person's export beyond this goes to a temporary file
KIND_CHOICES = [SelectChoice(k.value, k.value.replace("_", " ")) for k in RequestKind]


# --- forms -----------------------------------------------------------------------------------

class RequestForm(ActionForm):
    """A data-subject request as received."""

    kind = SelectField("Kind of request", choices=KIND_CHOICES,
                       default=RequestKind.ACCESS.value)
    received_on = DateField("Received on", [InputRequired("Enter the day it was received.")],
                            description="The one-month deadline runs from this day. "
                            + DATE_HINT, render_kw={"type": "date"})
    requester_name = StringField("Requester", [InputRequired("Name who asked."),
                                               Length(max=200, message="At most 200 characters.")],
                                 description="Who asked; the answer goes to them.")
    requester_contact = StringField(
        "Contact (optional)", [Optional(), Length(max=320, message="At most 320 characters.")],
        description="E-mail address or phone number for the answer.")
    person = StringField("Person id (optional)", [Optional()],
                         description="The person the request is about, when known (their "
                         "page links here with it filled in).")
    customer = SelectField("Customer (optional)", choices=[], default="")

    def validate_received_on(self, field: DateField) -> None:
        """A request cannot be received in the future."""
        if field.data and field.data > _today():
            raise ValidationError("That day is in the future.")


class ExtendForm(ActionForm):
    """A later deadline, with the reason the requester is told."""

    until = DateField("New due date", [InputRequired("Enter the new due date.")],
                      description=f"At most {MAX_MONTHS} months after receipt. " + DATE_HINT,
                      render_kw={"type": "date"})
    reason = TextAreaField("Reason for the delay", [InputRequired(
        "Say why: the requester must be told (e.g. 'large export across many sites').")])


class CloseForm(ActionForm):
    """What was done, or why the request was refused."""

    outcome = TextAreaField("Outcome", [InputRequired(
        "Describe the outcome, e.g. 'export sent by e-mail on 2026-03-04'.")])


class RestrictForm(ActionForm):
    """Why processing of a person is restricted (GDPR art. 18)."""

    reason = StringField("Reason for the restriction", [InputRequired(
        "Say why, e.g. 'request 2026-014: accuracy contested'.")])


# --- helpers ---------------------------------------------------------------------------------

def _settings() -> Settings:
    return current_panel().site_settings


def _today() -> dt.date:
    """Today at the site: deadlines are calendar days there."""
    return current_panel().site.today()


def _local(moment: dt.datetime | None) -> Markup:
    """A moment in the site's time with its zone, on one line (templates only)."""
    return site_time(moment, seconds=False)


def _by() -> str:
    staff = current_staff()
    assert staff is not None
    return staff.username


def _person_or_404(public_id: uuid.UUID) -> Person:
    found = get_person_by_public_id(db(), public_id)
    if found is None:
        abort(404)
    return found


def _request_or_404(public_id: uuid.UUID) -> DataSubjectRequest:
    found = get_request_by_public_id(db(), public_id)
    if found is None:
        abort(404)
    return found


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


# --- purge schedule and records --------------------------------------------------------------

@bp.get("/")
@role_required(*READ)
def index() -> str:
    """Every customer's purge schedule: contract end, grace, when its data goes, and what."""
    site = current_panel().site
    plans = purge_plan(db(), site.now(), site_timezone=site.zone)
    return render_template("privacy/index.html", plans=plans, local=_local)


@bp.get("/purges")
@role_required(*READ)
def purges() -> str:
    """The anonymised records of purges, with their signed certificates."""
    purges = list_purges(db(), current_panel().keys)
    return render_template("privacy/purges.html", purges=purges, local=_local)


@bp.get("/purges/<int:record_id>/certificate")
@role_required(*READ)
def certificate(record_id: int) -> Response:
    """The signed certificate of a completed purge, to hand to the customer."""
    record = get_purge_record(db(), record_id)
    if record is None or record.certificate is None:
        abort(404)
    audit().note("purge.certificate", target=f"purge:{record.id}")
    completed = record.completed_at or record.started_at
    name = f"purge-certificate-{completed:%Y%m%d}-{record.customer_digest[:16]}.json"
    return Response(record.certificate, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- data-subject requests -------------------------------------------------------------------

@bp.get("/requests")
@role_required(*READ)
def requests() -> str:
    """Open requests, soonest due first with overdue ones marked, and the latest closed."""
    retention = _settings().retention.open_data_subject_requests
    overview = request_overview(db(), _today(), closed=CLOSED_SHOWN, retention=retention)
    audit().note("request.list", open=len(overview.listed), closed=len(overview.closed))
    return render_template("privacy/requests.html", listed=overview.listed,
                           closed=overview.closed, names=overview.subjects, local=_local,
                           retention=retention,
                           reminders=[item for item in overview.listed if item.reminder])


@bp.route("/requests/new", methods=["GET", "POST"])
@role_required(*ACT)
def new_request() -> str | BaseResponse:
    """Record a request as received; it is due one calendar month later."""
    form = RequestForm()
    if request.method == "POST":
        audit().note("request.record")  # refused too: the outcome says which
    form.customer.choices = [SelectChoice("", "None / not known"), *(
        SelectChoice(str(c.public_id), c.name) for c in customer_names(db()))]
    if request.method == "GET":
        form.person.data = request.args.get("person", "")[:36]
        form.received_on.data = _today()
    if form.validate_on_submit():
        person = _subject_person(form)
        customer = _subject_customer(form)
        if not form.errors.get("person") and not form.person.errors:
            try:
                made = record_request(
                    db(), RequestKind(form.kind.data), form.received_on.data or _today(),
                    requester_name=form.requester_name.data or "", person=person,
                    customer=customer, requester_contact=form.requester_contact.data or None,
                    handled_by=_by())
            except SubjectRequestError as exc:
                form.requester_name.errors = [*form.requester_name.errors, as_sentence(exc)]
            else:
                audit().note("request.record", target=f"request:{made.public_id}",
                             kind=made.kind.value)
                db().commit()
                flash(f"Request recorded; due on {made.due_on}.", "success")
                return redirect(url_for("privacy.request_detail", public_id=made.public_id))
    return render_template("privacy/request_new.html", form=form)


def _subject_person(form: RequestForm) -> Person | None:
    text = (form.person.data or "").strip()
    if not text:
        return None
    try:
        public_id = uuid.UUID(text)
    except ValueError:
        form.person.errors = ["Not a person id: copy it from the person's page."]
        return None
    found = get_person_by_public_id(db(), public_id)
    if found is None:
        form.person.errors = ["No person has this id (erased, or never enrolled)."]
    return found


def _subject_customer(form: RequestForm) -> Customer | None:
    if not form.customer.data:
        return None
    return get_customer_by_public_id(db(), uuid.UUID(form.customer.data))


def _request_page(found: DataSubjectRequest, **forms: Any) -> str:
    names = request_subjects(db(), [found])
    limit = add_months(found.received_on, MAX_MONTHS)
    deleted_on = (open_request_ends(found, _settings().retention.open_data_subject_requests)
                  if found.status is RequestStatus.OPEN else None)
    return render_template(
        "privacy/request.html", req=found, names=names, due=due_on(found), today=_today(),
        deleted_on=deleted_on, reminder_days=OPEN_REQUEST_REMINDER_DAYS,
        subject=names.persons.get(found.person_id) if found.person_id else None,
        limit=limit, extend=forms.get("extend") or ExtendForm(),
        close=forms.get("close") or CloseForm(), local=_local)


@bp.get("/requests/<uuid:public_id>")
@role_required(*READ)
def request_detail(public_id: uuid.UUID) -> str:
    """One request: its deadline, extension and outcome, and the forms to extend or close it."""
    found = _request_or_404(public_id)
    audit().note("request.view", target=f"request:{found.public_id}")
    return _request_page(found)


@bp.post("/requests/<uuid:public_id>/extend")
@role_required(*ACT)
def extend(public_id: uuid.UUID) -> str | BaseResponse:
    """Move the deadline later (at most three months after receipt), with the reason."""
    found = _request_or_404(public_id)
    form = ExtendForm()
    audit().note("request.extend", target=f"request:{found.public_id}")
    if form.validate_on_submit():
        assert form.until.data is not None
        try:
            extend_request(found, form.until.data, form.reason.data or "", today=_today())
        except SubjectRequestError as exc:
            if found.status is not RequestStatus.OPEN:  # no form on a closed request's page
                flash(as_sentence(exc), "error")
                return redirect(url_for("privacy.request_detail", public_id=found.public_id))
            form.until.errors = [*form.until.errors, as_sentence(exc)]
        else:
            audit().note(until=form.until.data.isoformat())
            db().commit()
            flash(f"Deadline moved to {form.until.data}. Tell the requester why.", "success")
            return redirect(url_for("privacy.request_detail", public_id=found.public_id))
    return _request_page(found, extend=form)


@bp.post("/requests/<uuid:public_id>/close")
@role_required(*ACT)
def close(public_id: uuid.UUID) -> str | BaseResponse:
    """Close the request with its outcome."""
    found = _request_or_404(public_id)
    form = CloseForm()
    audit().note("request.close", target=f"request:{found.public_id}")
    if form.validate_on_submit():
        try:
            close_request(found, form.outcome.data or "", by=_by(), now=current_panel().now())
        except SubjectRequestError as exc:
            if found.status is not RequestStatus.OPEN:  # no form on a closed request's page
                flash(as_sentence(exc), "error")
                return redirect(url_for("privacy.request_detail", public_id=found.public_id))
            form.outcome.errors = [*form.outcome.errors, as_sentence(exc)]
        else:
            db().commit()
            flash("Request closed.", "success")
            return redirect(url_for("privacy.requests"))
    return _request_page(found, close=form)


# --- rights on a person ----------------------------------------------------------------------

def _person_page(person: Person, restrict_form: RestrictForm | None = None) -> str:
    return render_template("privacy/person.html", person=person,
                           consent=active_consent(db(), person),
                           restrict=restrict_form or RestrictForm(), action=ActionForm(),
                           local=_local)


@bp.get("/persons/<uuid:public_id>")
@role_required(*ACT)
def person(public_id: uuid.UUID) -> str:
    """The rights that can be exercised for one person."""
    found = _person_or_404(public_id)
    audit().note("person.view", target=f"person:{found.public_id}", page="rights")
    return _person_page(found)


@bp.post("/persons/<uuid:public_id>/export")
@role_required(*ACT)
def export(public_id: uuid.UUID) -> Response | BaseResponse:
    """Everything held on the person, as JSON and CSV in one zip archive (art. 15 and 20)."""
    found = _person_or_404(public_id)
    audit().note("person.export", target=f"person:{found.public_id}")
    if not ActionForm().validate_on_submit():
        return redirect(url_for("privacy.person", public_id=found.public_id))
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # send_file closes it
    summary = export_person(db(), found, spool, now=current_panel().now())  # type: ignore[arg-type]
    audit().note(counts=summary.counts)
    spool.seek(0)
    day = current_panel().now().strftime("%Y%m%d")
    return send_file(spool, mimetype="application/zip", as_attachment=True,
                     download_name=f"export-person-{found.public_id}-{day}.zip")


@bp.get("/persons/<uuid:public_id>/erase")
@role_required(*ACT)
def erase_confirm(public_id: uuid.UUID) -> str:
    """What erasing the person destroys, before anything happens."""
    found = _person_or_404(public_id)
    audit().note("person.view", target=f"person:{found.public_id}", page="erase")
    return render_template("privacy/erase.html", person=found, action=ActionForm())


@bp.post("/persons/<uuid:public_id>/erase")
@role_required(*ACT)
def erase(public_id: uuid.UUID) -> BaseResponse:
    """Erase the person (art. 17): templates everywhere, consents, the row; history anonymised."""
    found = _person_or_404(public_id)
    audit().note("person.erase", target=f"person:{found.public_id}")
    if not ActionForm().validate_on_submit():
        return redirect(url_for("privacy.erase_confirm", public_id=found.public_id))
    name = found.name
    summary = erase_person(db(), found, _by(), provider=current_panel().keys,
                           now=current_panel().now())
    audit().note(fingers=summary.fingers, consents=summary.consents,
                 access_events_anonymised=summary.access_events_anonymised)
    db().commit()
    _destroyed()
    flash(f"{name} is erased: {summary.fingers} finger(s) and {summary.consents} consent "
          f"record(s) deleted, {summary.access_events_anonymised} access event(s) anonymised; "
          f"{summary.doors_asked_to_resync} door(s) asked to clear their sensor.", "success")
    # Back to the requests: an erasure is usually the answer to one, which is closed next.
    return redirect(url_for("privacy.requests"))


@bp.post("/persons/<uuid:public_id>/restrict")
@role_required(*ACT)
def restrict_person(public_id: uuid.UUID) -> str | BaseResponse:
    """Restrict processing (art. 18): the door refuses the person, the data is kept."""
    found = _person_or_404(public_id)
    form = RestrictForm()
    audit().note("person.restrict", target=f"person:{found.public_id}")
    if form.validate_on_submit():
        try:
            restrict(db(), found, form.reason.data or "", now=current_panel().now())
        except (InvalidInputError, PersonStateError) as exc:
            form.reason.errors = [*form.reason.errors, as_sentence(exc)]
        else:
            db().commit()
            flash(f"{found.name} is restricted: the door refuses them until it is lifted.",
                  "success")
            return redirect(url_for("privacy.person", public_id=found.public_id))
    return _person_page(found, form)


@bp.post("/persons/<uuid:public_id>/lift")
@role_required(*ACT)
def lift(public_id: uuid.UUID) -> BaseResponse:
    """Lift a restriction."""
    found = _person_or_404(public_id)
    audit().note("person.lift_restriction", target=f"person:{found.public_id}")
    if ActionForm().validate_on_submit():
        try:
            lift_restriction(db(), found)
        except PersonStateError as exc:
            flash(as_sentence(exc), "error")
        else:
            db().commit()
            flash(f"The restriction of {found.name} is lifted.", "success")
    return redirect(url_for("privacy.person", public_id=found.public_id))


@bp.post("/persons/<uuid:public_id>/withdraw-consent")
@role_required(*ACT)
def withdraw(public_id: uuid.UUID) -> BaseResponse:
    """Record a withdrawal of consent: the person's templates are deleted at once."""
    found = _person_or_404(public_id)
    audit().note("person.withdraw_consent", target=f"person:{found.public_id}")
    if ActionForm().validate_on_submit():
        try:
            summary = withdraw_consent(db(), found, _by(), provider=current_panel().keys,
                                       now=current_panel().now())
        except RightsError as exc:
            flash(as_sentence(exc), "error")
        else:
            db().commit()
            _destroyed()
            flash(f"Consent withdrawn: {summary.fingers_deleted} finger(s) deleted; way in "
                  f"now: {summary.credential.value.replace('_', ' ')}.", "success")
    return redirect(url_for("privacy.person", public_id=found.public_id))


# --- the register of processing activities ---------------------------------------------------

def _langs() -> tuple[Any, ...]:
    wanted = request.args.get("lang", "en")
    if wanted == "both":
        return LANGS
    return (wanted,) if wanted in LANGS else ("en",)


@bp.get("/register")
@role_required(*READ)
def register() -> str:
    """The register of processing activities (GDPR art. 30), from the running configuration."""
    facts = installation_facts(db())
    registers = [build_register(_settings(), lang, facts) for lang in _langs()]
    rows = {r.lang: {"cells": [a.cells() for a in r.activities],
                     "details": [a.details() for a in r.activities]} for r in registers}
    return render_template("privacy/register.html", registers=registers, rows=rows,
                           columns=COLUMNS,
                           detail_columns=DETAIL_COLUMNS, basis_columns=BASIS_COLUMNS,
                           lang=request.args.get("lang", "en"))


@bp.get("/register.<fmt>")
@role_required(*READ)
def register_download(fmt: str) -> Response:
    """The register as CSV or Markdown, in English, Dutch or both."""
    if fmt not in ("csv", "md"):
        abort(404)
    langs = _langs()
    text = render_register_text(_settings(), fmt, langs,  # type: ignore[arg-type]
                                installation_facts(db()))
    audit().note("register.download", format=fmt, langs=",".join(langs))
    suffix = "-".join(langs)
    mimetype = "text/csv" if fmt == "csv" else "text/markdown"
    return Response(text, mimetype=f"{mimetype}; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="register-{suffix}.{fmt}"'})
