"""Privacy: purge schedule and records, data-subject requests, the register.

Operators and admins act; auditors read the schedule, the purge records (with their signed
certificates), the requests and the register. Every action and every export is audited. The
rules live in ``accessd.privacy.purge``, ``accessd.rights.requests`` and
``accessd.privacy.processing_register``: the views only call them, show their refusals beside
the field, and commit. The rights on one person (export, restriction, consent withdrawal,
erasure) live on the person's page (``web.pages.customers``, ``web.pages.person_rights``);
their old addresses here redirect there.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse
from wtforms import DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from accessd.config import OPEN_REQUEST_REMINDER_DAYS, Settings
from accessd.customers.contracts import customer_names, get_customer_by_public_id
from accessd.customers.people import (
    PersonSummary,
    find_persons,
    get_person_by_public_id,
    list_persons,
)
from accessd.errors import InvalidInputError, SubjectRequestError
from accessd.labels import label
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
from accessd.privacy.purge import (
    get_purge_record,
    list_purges,
    purge_plan,
    purges_of_reference,
)
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
from web.forms import ActionForm, as_sentence
from web.i18n import current_language
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
KIND_CHOICES = [SelectChoice(k.value, _l(label(k))) for k in RequestKind]


# --- forms -----------------------------------------------------------------------------------

class RequestForm(ActionForm):
    """A data-subject request as received."""

    kind = SelectField(_l("Kind of request"), choices=KIND_CHOICES,
                       default=RequestKind.ACCESS.value)
    received_on = DateField(
        _l("Received on"), [InputRequired(_l("Enter the day it was received."))],
        description=_l("The one-month deadline runs from this day. Pick the day in the "
                       "calendar."), render_kw={"type": "date"})
    requester_name = StringField(
        _l("Requester"), [InputRequired(_l("Name who asked.")),
                          Length(max=200, message=_l("At most 200 characters."))],
        description=_l("Who asked; the answer goes to them."))
    requester_contact = StringField(
        _l("Contact (optional)"),
        [Optional(), Length(max=320, message=_l("At most 320 characters."))],
        description=_l("E-mail address or phone number for the answer."))
    person = SelectField(_l("Person (optional)"), choices=[], default="", validate_choice=False,
                         description=_l("Who the request is about, when known: people are "
                                        "listed by name, with their customer and e-mail."))
    customer = SelectField(_l("Customer (optional)"), choices=[], default="")

    def validate_received_on(self, field: DateField) -> None:
        """A request cannot be received in the future."""
        if field.data and field.data > _today():
            raise ValidationError(_("That day is in the future."))


class ReferenceForm(FlaskForm):
    """A customer reference, to find that customer's purge records (a GET form: it only reads)."""

    class Meta:
        csrf = False

    customer_reference = StringField(
        _l("Customer reference"), [InputRequired(_l("Type the customer's reference."))],
        description=_l("Records keep no name: type the reference the customer was given at "
                       "contract start (from your contract records) to see which purge and "
                       "certificate are theirs."),
        render_kw={"autocomplete": "off", "spellcheck": "false"})


class ExtendForm(ActionForm):
    """A later deadline, with the reason the requester is told."""

    until = DateField(_l("New due date"), [InputRequired(_l("Enter the new due date."))],
                      description=_l("At most %(num)d months after receipt. Pick the day in "
                                     "the calendar.", num=MAX_MONTHS),
                      render_kw={"type": "date"})
    reason = TextAreaField(_l("Reason for the delay"), [InputRequired(
        _l("Say why: the requester must be told (e.g. 'large export across many sites')."))])


class CloseForm(ActionForm):
    """What was done, or why the request was refused."""

    outcome = TextAreaField(_l("Outcome"), [InputRequired(
        _l("Describe the outcome, e.g. 'export sent by e-mail on 2026-03-04'."))])


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
    form = ReferenceForm(request.args)
    theirs: set[int] | None = None
    if request.args.get("customer_reference") is not None and form.validate():
        try:
            theirs = purges_of_reference(purges, form.customer_reference.data or "")
        except InvalidInputError as exc:
            form.customer_reference.errors = [as_sentence(exc)]
        else:
            audit().note("purge.find", found=len(theirs))  # never the reference itself
    return render_template("privacy/purges.html", purges=purges, local=_local, form=form,
                           theirs=theirs)


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
    form.customer.choices = [SelectChoice("", _("None / not known")), *(
        SelectChoice(str(c.public_id), c.name) for c in customer_names(db()))]
    search = " ".join(request.args.get("q", "").split())[:200]
    people = find_persons(db(), search) if search else list_persons(db())
    form.person.choices = person_choices(people)
    if request.method == "GET":
        form.person.data = request.args.get("person", "")[:36]
        form.received_on.data = _today()
    if form.validate_on_submit():
        person = _subject_person(form)
        customer = _subject_customer(form)
        if not form.person.errors:
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
                flash(_("Request recorded; due on %(day)s.", day=made.due_on), "success")
                return redirect(url_for("privacy.request_detail", public_id=made.public_id))
    return render_template("privacy/request_new.html", form=form, search=search,
                           found=len(people))


def person_choices(people: list[PersonSummary]) -> list[SelectChoice]:
    """People to pick from, by name: each with their customer and e-mail, so that two people
    of the same name can be told apart."""
    people = sorted(people, key=lambda p: (p.person.name.casefold(), p.customer_name.casefold()))
    no_email = _("no e-mail")
    return [SelectChoice("", _("None / not known")), *(
        SelectChoice(str(p.person.public_id),
                     f"{p.person.name} ({p.customer_name}, {p.person.email or no_email})")
        for p in people)]


def _subject_person(form: RequestForm) -> Person | None:
    text = (form.person.data or "").strip()
    if not text:
        return None
    try:
        found = get_person_by_public_id(db(), uuid.UUID(text))
    except ValueError:
        found = None
    if found is None:
        form.person.errors = [_("That person is not on record (erased meanwhile?): choose the "
                                "person from the list, or leave it empty.")]
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
            flash(_("Deadline moved to %(day)s. Tell the requester why.", day=form.until.data),
                  "success")
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
            flash(_("Request closed."), "success")
            return redirect(url_for("privacy.requests"))
    return _request_page(found, close=form)


# --- rights on a person: moved to the person's page -----------------------------------------

# The person's page (``customers.person``) is the hub for everything about a person; these
# addresses, linked from older pages and bookmarks, lead there. A POST is redirected with 308,
# which keeps the method and the form (with its CSRF token), so an old form still works.
MOVED = {"export": "person_rights.export", "erase": "person_rights.erase",
         "withdraw-consent": "person_rights.withdraw", "restrict": "customers.restrict",
         "lift": "customers.unrestrict"}


@bp.get("/persons/<uuid:public_id>")
@role_required(*ACT)
def person(public_id: uuid.UUID) -> BaseResponse:
    """Moved: the person's page."""
    _person_or_404(public_id)
    return redirect(url_for("customers.person", public_id=public_id), 301)


@bp.get("/persons/<uuid:public_id>/erase")
@role_required(*ACT)
def erase_confirm(public_id: uuid.UUID) -> BaseResponse:
    """Moved: the erasure's confirmation, reached from the person's page."""
    _person_or_404(public_id)
    return redirect(url_for("person_rights.erase_confirm", public_id=public_id), 301)


def _moved_action(what: str) -> Callable[[uuid.UUID], BaseResponse]:
    def moved(public_id: uuid.UUID) -> BaseResponse:
        return redirect(url_for(MOVED[what], public_id=public_id), 308)

    moved.__doc__ = f"Moved: {what} on the person's page."
    return moved


for _what in MOVED:
    bp.add_url_rule(f"/persons/<uuid:public_id>/{_what}", f"moved_{_what.replace('-', '_')}",
                    role_required(*ACT)(_moved_action(_what)), methods=["POST"])


# --- the register of processing activities ---------------------------------------------------

def _wanted_language() -> str:
    """The register's language: the one asked for, else the page's."""
    return request.args.get("lang") or current_language()


def _langs() -> tuple[Any, ...]:
    wanted = _wanted_language()
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
                           lang=_wanted_language())


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
