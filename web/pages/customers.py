"""Customers and their people: contracts, lawful basis, and each person's page, the hub for
everything about them (details, way in, fingers, PIN, consent, restriction, privacy actions and
their open requests; what destroys data is in ``web.pages.person_rights``).

Every rule lives in ``accessd.customers.contracts``, ``accessd.customers.people`` and
``accessd.rights``; the views turn forms into service calls and the services' refusals into
messages beside the field they concern. Ending a contract goes through a confirmation page
showing what the purge will remove and when it really runs. The way in changes only as staff
choose it (correcting details, or the PIN form's own field). A PIN is shown once, on the
response that set it, and is never logged or stored in plain text.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    Field,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional

from accessd.config import Settings
from accessd.customers.collection import collection_refusal
from accessd.customers.consent import active_consent, withdrawn_consent
from accessd.customers.contracts import (
    ContractStatus,
    add_customer,
    contract_status,
    end_contract,
    get_customer_by_public_id,
    list_customers,
    parse_date,
    preview_end_contract,
)
from accessd.customers.people import (
    add_person,
    get_person_by_public_id,
    keypad_entry,
    list_persons,
    person_summary,
    pin_usable,
    rectify_person,
    restrict_person,
    set_pin,
    unrestrict_person,
    with_pin,
)
from accessd.db import read_only_engine
from accessd.errors import AccessdError, DuplicatePersonError, InvalidInputError
from accessd.fingers.enrolment import early_refusal
from accessd.labels import N_
from accessd.models import Credential, LawfulBasis, StaffRole
from accessd.rights.actions import preview_withdrawal
from accessd.rights.requests import open_requests_about
from web.forms import DATE_HINT, ActionForm, as_sentence
from web.navigation import NavLink
from web.panel import current_panel, db
from web.request_audit import audit
from web.security import login_required, role_required
from web.times import site_time, time_text

if TYPE_CHECKING:
    from accessd.models import Customer, Person

bp = Blueprint("customers", __name__, url_prefix="/customers")
nav = [NavLink("Customers", "customers.index", order=20)]

CHANGERS = (StaffRole.OPERATOR,)  # admins pass every role check
BASIS_CHOICES = [
    SelectChoice("", _l("Not decided yet (enrolment is refused until it is recorded)")),
    SelectChoice(LawfulBasis.CONSENT.value, _l("Consent: each person agrees, witnessed by staff")),
    SelectChoice(LawfulBasis.NECESSITY.value,
                 _l("Necessity: a documented security need (UAVG art. 29)")),
]
CONTRACT_STATES = (N_("not started"), N_("active"), N_("ended"), N_("purge due"))
"""The words of ``ContractState`` (its values), for the catalogue: pages show them with
``| label``."""
CREDENTIAL_LABELS = {
    Credential.NONE: _l("Not chosen yet (let in by staff)"),
    Credential.FINGER: _l("Finger"),
    Credential.PIN: _l("PIN at the keypad"),
    Credential.FINGER_OR_PIN: _l("Finger or PIN"),
}
CREDENTIAL_CHOICES = [SelectChoice(c.value, label) for c, label in CREDENTIAL_LABELS.items()]


def site_settings() -> Settings:
    """The settings the daemon runs with (defaults when the panel was given none: tests)."""
    return current_panel().site_settings


@contextmanager
def read_only_session() -> Iterator[Session]:
    """A session whose transactions begin DEFERRED: pages that only read (the dashboard every
    2 s, the history, an export) must not take the write lock the door needs for its events."""
    with Session(read_only_engine(current_panel().engine)) as session:
        yield session


def local_time(moment: dt.datetime | None) -> str:
    """A UTC moment as the site's local time with its zone, to the second ("" for none)."""
    return time_text(moment)


class CustomerForm(FlaskForm):
    """A new customer: name, contract dates, grace period and lawful basis."""

    name = StringField(_l("Company name"), [InputRequired(_l("Enter the customer's name."))])
    contract_start = StringField(
        _l("First day of the contract"),
        [InputRequired(_l("Enter the first day of the contract."))],
        description=DATE_HINT, render_kw={"type": "date"})
    contract_end = StringField(
        _l("Last day of the contract (optional)"),
        description=_l("Leave empty while it runs on. Pick the day in the calendar."),
        render_kw={"type": "date"})
    grace_days = IntegerField(
        _l("Grace days before the purge (optional)"), [Optional()],
        description=_l("0 to 90 days; empty uses the site's setting."),
        render_kw={"inputmode": "numeric"},
        invalid_value_message=_l("Enter a whole number of days from 0 to 90, or leave it empty."))
    lawful_basis = SelectField(_l("Lawful basis for fingerprints"), choices=BASIS_CHOICES,
                               default="")
    necessity_reference = StringField(
        _l("Necessity assessment reference"),
        description=_l("Only for necessity: where the security need is documented, e.g. "
                       "DPIA-2026-03 section 4."))


class EndContractForm(FlaskForm):
    """The last day of service, asked before the confirmation page (a GET form)."""

    class Meta:
        csrf = False  # it only previews; the confirmation's POST carries the token

    last_day = StringField(_l("Last day of service"), [InputRequired(_l("Enter the last day."))],
                           description=DATE_HINT, render_kw={"type": "date"})


class PersonForm(FlaskForm):
    """A new person of a customer."""

    name = StringField("Name", [InputRequired("Enter the person's name.")])
    email = StringField("E-mail (optional)", render_kw={"type": "email", "autocomplete": "off"})
    credential = SelectField(_l("Way in"), choices=CREDENTIAL_CHOICES,
                             default=Credential.NONE.value,
                             description=_l("A way in without a fingerprint must always exist."))
    same_name_ok = BooleanField(
        _l("This is someone else who has the same name and e-mail: add them anyway"))


class RectifyForm(FlaskForm):
    """Corrected details of a person (GDPR art. 16), and their way in."""

    name = StringField("Name", [InputRequired("Enter the person's name.")])
    email = StringField("E-mail (optional)", render_kw={"type": "email", "autocomplete": "off"})
    credential = SelectField(
        _l("Way in"), choices=CREDENTIAL_CHOICES,
        description=_l("The door takes a PIN only with 'PIN at the keypad' or 'Finger or PIN'."))
    notes = TextAreaField(_l("Notes (optional)"))


class RestrictForm(FlaskForm):
    """Why processing of a person is restricted (GDPR art. 18)."""

    reason = StringField(_l("Reason for the restriction"), [InputRequired(
        _l("Say why, for example 'request 2026-014: accuracy contested'."))])


class PinForm(FlaskForm):
    """A PIN typed by the person, or none for a generated one, and the way in from then on."""

    pin = StringField(_l("PIN (optional)"),
                      description=_l("Digits only; leave empty to generate one."),
                      render_kw={"autocomplete": "off", "inputmode": "numeric"})
    # Not sent (an older form): the way in stays; a value not offered is the service's refusal.
    credential = SelectField(_l("Way in from now on"), choices=CREDENTIAL_CHOICES,
                             validate_choice=False)

    def for_person(self, person: Person) -> PinForm:
        """Offer the person's way in with a PIN added, and say what it is now."""
        now = Credential(person.credential)
        if self.credential.data is None:
            self.credential.data = with_pin(now).value
        self.credential.description = _(
            "Now: %(way_in)s. The door takes the PIN only with 'PIN at the keypad' or 'Finger "
            "or PIN'.", way_in=CREDENTIAL_LABELS[now])
        return self


def place_error(form: FlaskForm, error: AccessdError, fallback: str) -> None:
    """Show a service's refusal beside the field it names (else beside ``fallback``)."""
    name = getattr(error, "field", fallback)
    field: Field | None = getattr(form, name, None) or getattr(form, fallback)
    assert field is not None
    field.errors = [*field.errors, as_sentence(error)]


def customer_or_404(public_id: uuid.UUID) -> Customer:
    """The customer with this public id, or a 404 page."""
    found = get_customer_by_public_id(db(), public_id)
    if found is None:
        abort(404)
    return found


def person_or_404(public_id: uuid.UUID) -> Person:
    """The person with this public id, or a 404 page."""
    found = get_person_by_public_id(db(), public_id)
    if found is None:
        abort(404)
    return found


def _status(customer: Customer) -> ContractStatus:
    return contract_status(customer, current_panel().site)


@bp.get("/")
@login_required
def index() -> str:
    """Every customer: contract dates and state, days to purge, persons and fingers."""
    summaries = list_customers(db(), current_panel().site)
    return render_template("customers/index.html", summaries=summaries)


@bp.route("/new", methods=["GET", "POST"])
@role_required(*CHANGERS)
def new() -> str | Response:
    """Record a customer, its contract and its lawful basis."""
    form = CustomerForm()
    if request.method == "POST":
        audit().note("customer.create")  # refused too: the outcome says which
    if form.validate_on_submit():
        try:
            start = parse_date("contract_start", form.contract_start.data or "")
            end_text = (form.contract_end.data or "").strip()
            end = parse_date("contract_end", end_text) if end_text else None
            customer = add_customer(
                db(), form.name.data or "", start, end, settings=site_settings(),
                grace_days=form.grace_days.data, lawful_basis=form.lawful_basis.data or None,
                necessity_reference=form.necessity_reference.data or None,
                now=current_panel().now())
        except InvalidInputError as exc:
            place_error(form, exc, "name")
        else:
            audit().note("customer.create", target=f"customer:{customer.public_id}")
            db().commit()
            flash(_("Customer %(name)s added.", name=customer.name), "success")
            return redirect(url_for("customers.detail", public_id=customer.public_id))
    return render_template("customers/new.html", form=form)


@bp.get("/<uuid:public_id>")
@login_required
def detail(public_id: uuid.UUID) -> str:
    """One customer: its contract and its people with credential, fingers and consent."""
    customer = customer_or_404(public_id)
    audit().note("customer.view", target=f"customer:{customer.public_id}")
    return render_template("customers/detail.html", customer=customer,
                           status=_status(customer), persons=list_persons(db(), customer),
                           closed=_collection_refusal(customer))


@bp.get("/<uuid:public_id>/end")
@role_required(*CHANGERS)
def end(public_id: uuid.UUID) -> str:
    """Ask for the last day, then show what the purge will remove and when (no change yet)."""
    customer = customer_or_404(public_id)
    form = EndContractForm(request.args)
    plan = None
    if request.args and form.validate():
        try:
            last_day = parse_date("last_day", form.last_day.data or "")
            plan = preview_end_contract(db(), customer, last_day, settings=site_settings(),
                                        now=current_panel().now())
        except InvalidInputError as exc:
            place_error(form, exc, "last_day")
    elif not request.args:
        form.last_day.data = _status(customer).today.isoformat()
    return render_template("customers/end.html", customer=customer, form=form, plan=plan,
                           confirm=ActionForm(), site_time=site_time)


@bp.post("/<uuid:public_id>/end")
@role_required(*CHANGERS)
def end_confirmed(public_id: uuid.UUID) -> str | Response:
    """End the contract on the confirmed last day; the purge follows at its due time."""
    customer = customer_or_404(public_id)
    form = EndContractForm(request.form)
    audit().note("customer.end_contract", target=f"customer:{customer.public_id}")
    if ActionForm().validate_on_submit() and form.validate():
        try:
            last_day = parse_date("last_day", form.last_day.data or "")
            plan = end_contract(db(), customer, last_day, settings=site_settings(),
                                now=current_panel().now())
        except InvalidInputError as exc:
            place_error(form, exc, "last_day")
        else:
            audit().note("customer.end_contract", target=f"customer:{customer.public_id}",
                         last_day=last_day.isoformat(), purge_on=plan.purge_on.isoformat())
            db().commit()
            if plan.already_due:
                flash(_("The contract of %(name)s ended on %(day)s; its data is purged at the "
                        "next purge check, by %(by)s at the latest.", name=customer.name,
                        day=plan.last_day, by=time_text(plan.runs_by, seconds=False)),
                      "success")
            else:
                flash(_("The contract of %(name)s ends on %(day)s; its data is purged on "
                        "%(purge_on)s.", name=customer.name, day=plan.last_day,
                        purge_on=plan.purge_on), "success")
            return redirect(url_for("customers.detail", public_id=customer.public_id))
    return render_template("customers/end.html", customer=customer, form=form, plan=None,
                           confirm=ActionForm(), site_time=site_time)


@bp.route("/<uuid:public_id>/persons/new", methods=["GET", "POST"])
@role_required(*CHANGERS)
def new_person(public_id: uuid.UUID) -> str | Response:
    """Add one of the customer's people."""
    customer = customer_or_404(public_id)
    form = PersonForm()
    closed = _collection_refusal(customer)
    if request.method == "POST":
        audit().note("person.create", customer=str(customer.public_id))
        if closed is not None:  # the page offered no form; a hand-made POST is refused
            audit().refuse("contract_over")
    duplicate = False
    if closed is None and form.validate_on_submit():
        try:
            person = add_person(db(), customer, form.name.data or "", form.email.data,
                                form.credential.data or Credential.NONE,
                                clock=current_panel().site,
                                allow_duplicate=bool(form.same_name_ok.data))
        except InvalidInputError as exc:
            duplicate = isinstance(exc, DuplicatePersonError)
            place_error(form, exc, "name")
        else:
            audit().note(target=f"person:{person.public_id}")
            db().commit()
            flash(_("%(name)s added.", name=person.name), "success")
            return redirect(url_for("customers.person", public_id=person.public_id))
    return render_template("customers/person_new.html", customer=customer, form=form,
                           closed=closed, duplicate=duplicate or bool(form.same_name_ok.data))


def _collection_refusal(customer: Customer) -> str | None:
    """Why no person may be added to ``customer`` now (its contract is over), as a sentence."""
    refusal = collection_refusal(customer, current_panel().site.today())
    return None if refusal is None else as_sentence(refusal)


def _person_page(person: Person, **forms: FlaskForm) -> str:
    """The person's hub: details, fingers, way in, PIN, consent, restriction, privacy actions
    and their open requests."""
    audit().note("person.view", target=f"person:{person.public_id}")
    site = current_panel().site
    refusal = early_refusal(db(), person, site_settings().access.max_fingers_per_person,
                            today=site.today())
    pin_form = forms.get("pin") or PinForm(formdata=None)
    assert isinstance(pin_form, PinForm)
    return render_template(
        "customers/person.html", person=person, summary=person_summary(db(), person),
        closed=_collection_refusal(person.customer),
        enrol_refusal=None if refusal is None else as_sentence(refusal),
        consent=active_consent(db(), person), withdrawn=withdrawn_consent(db(), person),
        withdrawal=preview_withdrawal(db(), person),
        requests=open_requests_about(db(), person, site.today()),
        credential_label=CREDENTIAL_LABELS[Credential(person.credential)],
        restrict=forms.get("restrict") or RestrictForm(), pin=pin_form.for_person(person),
        action=ActionForm(), local_time=site_time, local_day=local_day)


def local_day(moment: dt.datetime | None) -> str:
    """A UTC moment as the site's local day ("" for none)."""
    if moment is None:
        return ""
    return current_panel().site.local(moment).date().isoformat()


@bp.get("/persons/<uuid:public_id>")
@login_required
def person(public_id: uuid.UUID) -> str:
    """One person: details, credential, fingers, consent, restriction, and the actions."""
    return _person_page(person_or_404(public_id))


@bp.route("/persons/<uuid:public_id>/edit", methods=["GET", "POST"])
@role_required(*CHANGERS)
def edit_person(public_id: uuid.UUID) -> str | Response:
    """Correct a person's name, e-mail or notes (rectification)."""
    found = person_or_404(public_id)
    form = RectifyForm(obj=found)
    if request.method == "GET":
        form.credential.data = Credential(found.credential).value
    if request.method == "POST":
        audit().note("person.rectify", target=f"person:{found.public_id}")
    else:  # the form shows the person's details: a read
        audit().note("person.view", target=f"person:{found.public_id}", page="edit")
    if form.validate_on_submit():
        try:
            changed = rectify_person(db(), found, name=form.name.data or "",
                                     email=form.email.data or "", notes=form.notes.data or "",
                                     credential=form.credential.data or None)
        except InvalidInputError as exc:
            place_error(form, exc, "name")
        else:
            audit().note("person.rectify", target=f"person:{found.public_id}", fields=changed)
            db().commit()
            flash(_("Saved.") if changed else _("Nothing changed."), "success")
            return redirect(url_for("customers.person", public_id=found.public_id))
    return render_template("customers/person_edit.html", person=found, form=form)


@bp.post("/persons/<uuid:public_id>/restrict")
@role_required(*CHANGERS)
def restrict(public_id: uuid.UUID) -> str | Response:
    """Restrict processing: the door refuses the person, the data is kept."""
    found = person_or_404(public_id)
    form = RestrictForm()
    audit().note("person.restrict", target=f"person:{found.public_id}")
    if form.validate_on_submit():
        try:
            restrict_person(db(), found, form.reason.data or "", now=current_panel().now())
        except AccessdError as exc:
            place_error(form, exc, "reason")
        else:
            db().commit()
            flash(_("%(name)s is restricted: the door refuses them until it is lifted.",
                    name=found.name), "success")
            return redirect(url_for("customers.person", public_id=found.public_id))
    return _person_page(found, restrict=form)


@bp.post("/persons/<uuid:public_id>/unrestrict")
@role_required(*CHANGERS)
def unrestrict(public_id: uuid.UUID) -> Response:
    """Lift a restriction."""
    found = person_or_404(public_id)
    audit().note("person.unrestrict", target=f"person:{found.public_id}")
    if ActionForm().validate_on_submit():
        try:
            unrestrict_person(db(), found)
        except AccessdError as exc:
            flash(as_sentence(exc), "error")
        else:
            db().commit()
            flash(_("The restriction of %(name)s is lifted.", name=found.name), "success")
    return redirect(url_for("customers.person", public_id=found.public_id))


@bp.post("/persons/<uuid:public_id>/pin")
@role_required(*CHANGERS)
def pin(public_id: uuid.UUID) -> str:
    """Set a PIN and show what to type at the keypad, this once only."""
    found = person_or_404(public_id)
    form = PinForm()
    audit().note("person.set_pin", target=f"person:{found.public_id}")  # never the PIN
    if form.validate_on_submit():
        before = Credential(found.credential)
        try:
            chosen = set_pin(db(), found, (form.pin.data or "").strip() or None,
                             credential=form.credential.data or None)
        except AccessdError as exc:
            db().rollback()
            place_error(form, exc, "pin")
        else:
            entry = keypad_entry(found, chosen)
            if found.credential is not before:
                audit().note(credential=Credential(found.credential).value)
            db().commit()
            return render_template(
                "customers/pin.html", person=found, entry=entry, usable=pin_usable(found),
                way_in=CREDENTIAL_LABELS[Credential(found.credential)],
                was=None if found.credential is before else CREDENTIAL_LABELS[before])
    return _person_page(found, pin=form)
