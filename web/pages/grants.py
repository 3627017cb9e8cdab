"""Zone grants per customer and per person: which zones, on which weekly windows, closed on
the site's holidays or not, between which days. Every rule lives in ``accessd.zones.grants``
(a person's grants stay inside the customer's; a schedule parses or is refused in words);
the views turn forms into those calls and their refusals into messages beside the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import InputRequired, Optional

from accessd.errors import AccessdError
from accessd.models import Customer, Grant, Person
from accessd.zones.grants import (
    GrantTerms,
    grant_zone,
    grants_of,
    libraries_follow,
    revoke_zone,
)
from accessd.zones.places import list_zones
from accessd.zones.schedule import FORMAT_HELP
from web.forms import ActionForm, WithinDays, as_sentence
from web.pages.customers import CHANGERS, customer_or_404, person_or_404, place_error
from web.panel import db
from web.request_audit import audit
from web.security import current_staff, login_required, role_required

bp = Blueprint("grants", __name__, url_prefix="/customers")


class GrantForm(FlaskForm):
    """A zone and when it holds; granting a zone again replaces its terms."""

    zone = SelectField(_l("Zone"), [InputRequired(_l("Choose a zone."))],
                       description=_l("Granting a zone grants every zone inside it."))
    schedule = StringField(_l("Weekly windows (optional)"), [Optional()],
                           description=_l("Empty: 24/7. Otherwise %(help)s.",
                                          help=_l(FORMAT_HELP)))
    closed_on_holidays = BooleanField(_l("Closed on the site's holidays"))
    valid_from = DateField(_l("First valid day (optional)"), [Optional(), WithinDays()])
    valid_until = DateField(_l("Last valid day (optional)"), [Optional(), WithinDays()])


class RevokeForm(ActionForm):
    """Take one zone back."""

    zone = HiddenField()


def _form() -> GrantForm:
    form = GrantForm()
    form.zone.choices = [SelectChoice(z.name, " > ".join(z.path)) for z in list_zones(db())]
    return form


@bp.get("/<uuid:public_id>/grants")
@login_required
def customer(public_id: uuid.UUID) -> str:
    """A customer's grants; operators add, change and revoke them."""
    found = customer_or_404(public_id)
    audit().note("grant.list", target=f"customer:{found.public_id}")
    return _page(_form(), found, None)


@bp.post("/<uuid:public_id>/grants")
@role_required(*CHANGERS)
def set_customer(public_id: uuid.UUID) -> str | Response:
    """Grant the customer a zone, or change a grant's terms."""
    found = customer_or_404(public_id)
    form = _form()
    return _set(form, found, None, lambda terms: grant_zone(
        db(), found, form.zone.data or "", terms, actor=_actor()))


@bp.get("/persons/<uuid:public_id>/grants")
@login_required
def person(public_id: uuid.UUID) -> str:
    """A person's own grants (none: the customer's apply)."""
    found = person_or_404(public_id)
    audit().note("grant.list", target=f"person:{found.public_id}")
    return _page(_form(), found.customer, found)


@bp.post("/persons/<uuid:public_id>/grants")
@role_required(*CHANGERS)
def set_person(public_id: uuid.UUID) -> str | Response:
    """Grant the person a zone of the customer's, or change a grant's terms."""
    found = person_or_404(public_id)
    form = _form()
    return _set(form, found.customer, found, lambda terms: grant_zone(
        db(), found.customer, form.zone.data or "", terms, person=found, actor=_actor()))


@bp.post("/<uuid:public_id>/grants/revoke")
@role_required(*CHANGERS)
def revoke_customer(public_id: uuid.UUID) -> Response:
    """Take a zone back from the customer (and its people's grants inside it)."""
    found = customer_or_404(public_id)
    return _revoke(lambda zone: revoke_zone(db(), found, zone), f"customer:{found.public_id}",
                   url_for("grants.customer", public_id=found.public_id))


@bp.post("/persons/<uuid:public_id>/grants/revoke")
@role_required(*CHANGERS)
def revoke_person(public_id: uuid.UUID) -> Response:
    """Take a zone back from the person."""
    found = person_or_404(public_id)
    return _revoke(lambda zone: revoke_zone(db(), found.customer, zone, person=found),
                   f"person:{found.public_id}",
                   url_for("grants.person", public_id=found.public_id))


def _actor() -> str:
    staff = current_staff()
    assert staff is not None
    return staff.username


def _set(form: GrantForm, customer: Customer, person: Person | None,
         grant: Callable[[GrantTerms], Grant]) -> str | Response:
    target = f"person:{person.public_id}" if person else f"customer:{customer.public_id}"
    audit().note("grant.set", target=target, zone=form.zone.data)
    if form.validate_on_submit():
        terms = GrantTerms((form.schedule.data or "").strip() or None,
                           bool(form.closed_on_holidays.data), form.valid_from.data,
                           form.valid_until.data)
        try:
            made = grant(terms)
        except AccessdError as exc:
            place_error(form, exc, "zone")
        else:
            described = GrantTerms(made.schedule, made.closed_on_holidays, made.valid_from,
                                   made.valid_until).describe()
            libraries_follow(db(), _actor())
            db().commit()
            flash(_("Zone %(zone)s granted: %(terms)s.", zone=form.zone.data, terms=described),
                  "success")
            back = (url_for("grants.person", public_id=person.public_id) if person
                    else url_for("grants.customer", public_id=customer.public_id))
            return redirect(back)
    return _page(form, customer, person)


def _revoke(revoke: Callable[[str], int], target: str, back: str) -> Response:
    form = RevokeForm()
    zone = form.zone.data or ""
    audit().note("grant.revoke", target=target, zone=zone)
    if not form.validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(back)
    try:
        removed = revoke(zone)
    except AccessdError as exc:
        flash(as_sentence(exc), "error")
        return redirect(back)
    libraries_follow(db(), _actor())
    db().commit()
    if removed > 1:
        flash(_("Zone %(zone)s revoked (and %(num)d grant(s) of its people inside it).",
                zone=zone, num=removed - 1), "success")
    else:
        flash(_("Zone %(zone)s revoked.", zone=zone), "success")
    return redirect(back)


def _page(form: GrantForm, customer: Customer, person: Person | None) -> str:
    rows = grants_of(db(), customer, person)
    inherited = grants_of(db(), customer) if person is not None and not rows else []
    return render_template("customers/grants.html", form=form, customer=customer,
                           person=person, rows=rows, inherited=inherited, revoke=RevokeForm())
