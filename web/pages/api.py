"""The JSON API under /api/v1, for the provider's ticketing and customer portal.

Endpoints (docs/api.md): customers, their persons, a person, events (filters and a cursor),
doors, and, for operator and admin tokens, adding a customer's person and a remote unlock.
``web/openapi.json`` describes every one of them (served at ``/api/v1/openapi.json``);
``tests/web/test_openapi.py`` runs schemathesis against it and checks it lists exactly the
routes of this blueprint.

Authenticated by ``Authorization: Bearer <token>`` only (tokens from ``accessd token add``,
each with a role); it takes no cookies, so it needs no CSRF token. Errors are JSON:
``{"error": {"status": 403, "title": ..., "message": ...}}`` (``web.error_pages``).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import Blueprint, abort, current_app, g, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from accessd.customers.contracts import (
    CustomerSummary,
    customer_summary,
    get_customer_by_public_id,
    list_customers,
)
from accessd.customers.people import (
    PersonSummary,
    add_person,
    get_person_by_public_id,
    list_persons,
    person_summary,
)
from accessd.door.devices import devices
from accessd.door.doors import door_named
from accessd.door.remote_unlock import ACTOR_MAX, request_unlock
from accessd.door.status import door_states
from accessd.errors import (
    ContractOverError,
    DuplicatePersonError,
    HistoryError,
    InvalidInputError,
    NotFoundError,
)
from accessd.history.query import PAGE_MAX, EventFilter, page_events, parse_kinds
from accessd.inputs import ID_MAX, parse_id, parse_moment
from accessd.models import (
    ApiToken,
    Credential,
    StaffRole,
)
from accessd.staff import role_allows, verify_api_token
from accessd.zones.grants import all_grants_of
from accessd.zones.places import door_places
from web.errors import ApiError
from web.panel import current_panel, db
from web.request_audit import audit
from web.security import Access, csrf, mark_access

if TYPE_CHECKING:
    from accessd.models import Customer, Person

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])


def current_token() -> ApiToken:
    """The token this API request was made with (inside ``token_required`` views)."""
    token = g.get("api_token")
    assert isinstance(token, ApiToken)
    return token


def token_required(*roles: StaffRole | str) -> Callable[[F], F]:
    """Open to API tokens with one of ``roles`` (any role when none given; admin always).

    No or a bad token: 401; a token whose role does not fit: 403.
    """
    allowed = frozenset(StaffRole(role) for role in roles)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            token = None
            if scheme.lower() == "bearer" and presented.strip():
                token = verify_api_token(db(), presented.strip(), now=current_panel().now())
                db().commit()
            if token is None:
                abort(401)
            g.api_token = token
            audit().actor = f"token:{token.name}"
            if allowed and not role_allows(token.role, allowed):
                abort(403)
            return view(*args, **kwargs)

        return mark_access(cast(F, guarded), Access("token", allowed))

    return decorate


@bp.get("/whoami")
@token_required()
def whoami() -> Response:
    """The token's own name, role and expiry: a cheap check that a token works."""
    token = current_token()
    return jsonify(
        {
            "name": token.name,
            "role": token.role.value,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
    )


@functools.cache
def openapi_document() -> bytes:
    """``web/openapi.json``, as shipped with the panel."""
    return importlib.resources.files("web").joinpath("openapi.json").read_bytes()


@bp.get("/openapi.json", merge_slashes=False)
@token_required()
def openapi() -> Response:
    """This API's OpenAPI 3 description. Behind a token like every endpoint (ASVS 5.0 13.4.5:
    no API documentation for strangers); any role may read it."""
    return current_app.response_class(openapi_document(), mimetype="application/json")


# --- errors with the reason, in JSON ---------------------------------------------------------

_TITLES = {400: "Bad parameter", 404: "Not found", 409: "Conflict"}




@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> tuple[Response, int]:
    body = {"error": {"status": error.status, "title": _TITLES.get(error.status, "Error"),
                      "message": error.message}}
    return jsonify(body), error.status


def _public_id(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ApiError(404, f"no {what} has the id {text[:60]!r}: ids are UUIDs as listed by "
                       f"the API") from None


def _customer(text: str) -> Customer:
    public_id = _public_id(text, "customer")
    found = get_customer_by_public_id(db(), public_id)
    if found is None:
        raise ApiError(404, f"no customer has the id {public_id}; GET /api/v1/customers "
                       "lists them")
    return found


def _person(text: str) -> Person:
    public_id = _public_id(text, "person")
    found = get_person_by_public_id(db(), public_id)
    if found is None:
        raise ApiError(404, f"no person has the id {public_id} (erased, purged, or never "
                       "there); GET /api/v1/customers/<id>/persons lists them")
    return found


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat().replace(
        "+00:00", "Z")


def _day(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _customer_json(summary: CustomerSummary) -> dict[str, Any]:
    customer, status = summary.customer, summary.status
    return {
        "id": str(customer.public_id), "name": customer.name,
        "contract_start": _day(customer.contract_start),
        "contract_end": _day(customer.contract_end), "grace_days": customer.grace_days,
        "state": status.state.value, "purge_on": _day(status.purge_on),
        "lawful_basis": customer.lawful_basis.value if customer.lawful_basis else None,
        "persons": summary.persons,
    }


def _person_json(summary: PersonSummary) -> dict[str, Any]:
    person = summary.person
    return {
        "id": str(person.public_id), "customer_id": str(person.customer.public_id),
        "name": person.name, "email": person.email, "active": person.active,
        "restricted": person.restricted, "credential": person.credential.value,
        "fingers": sorted(f.label.value for f in person.fingers),
        "consent_given_at": _iso(summary.consent_given_at),
    }


# --- read endpoints (any token role) ---------------------------------------------------------

@bp.get("/customers", merge_slashes=False)
@token_required()
def customers() -> Response:
    """Every customer with its contract state and purge date, by name."""
    summaries = list_customers(db(), current_panel().site)
    return jsonify({"customers": [_customer_json(s) for s in summaries]})


@bp.get("/customers/<public_id>", merge_slashes=False)
@token_required()
def customer(public_id: str) -> Response:
    """One customer, its contract and how many people it has."""
    found = _customer(public_id)
    return jsonify(_customer_json(customer_summary(db(), found, current_panel().site)))


@bp.get("/customers/<public_id>/persons", merge_slashes=False)
@token_required()
def customer_persons(public_id: str) -> Response:
    """The customer's people (a bulk read of personal data: audited)."""
    found = _customer(public_id)
    people = list_persons(db(), found)
    audit().note("api.persons.list", target=f"customer:{found.public_id}", count=len(people))
    return jsonify({"persons": [_person_json(p) for p in people]})


@bp.get("/customers/<public_id>/grants", merge_slashes=False)
@token_required()
def customer_grants(public_id: str) -> Response:
    """The zones granted to the customer, and to each of its people who has grants of their
    own (audited: a person's grants say where they may go)."""
    found = _customer(public_id)
    rows = all_grants_of(db(), found)
    audit().note("api.grants.list", target=f"customer:{found.public_id}", count=len(rows))
    return jsonify({"grants": [{
        "zone": row.zone, "zone_path": list(row.zone_path),
        "person_id": str(person) if person else None, "schedule": row.terms.schedule,
        "closed_on_holidays": row.terms.closed_on_holidays,
        "valid_from": _day(row.terms.valid_from), "valid_until": _day(row.terms.valid_until),
    } for row, person in rows]})


@bp.get("/persons/<public_id>", merge_slashes=False)
@token_required()
def person(public_id: str) -> Response:
    """One person: details, credential, enrolled fingers (never templates), consent."""
    found = _person(public_id)
    audit().note("api.person.read", target=f"person:{found.public_id}")
    return jsonify(_person_json(person_summary(db(), found)))


EVENT_PARAMETERS = frozenset({"customer", "person", "door", "kind", "since", "until", "limit",
                              "cursor"})
MAX_CURSOR = ID_MAX


def _event_filter(args: MultiDict[str, str]) -> EventFilter:
    unknown = sorted(set(args) - EVENT_PARAMETERS)
    if unknown:
        raise ApiError(400, f"unknown parameter {unknown[0]!r}; use "
                       + ", ".join(sorted(EVENT_PARAMETERS)))
    try:
        customer_id = _customer(args["customer"]).id if "customer" in args else None
    except ApiError as exc:
        raise ApiError(400, f"customer: {exc.message}") from None
    try:
        person_id = _person(args["person"]).id if "person" in args else None
    except ApiError as exc:
        raise ApiError(400, f"person: {exc.message}") from None
    door_id = None
    if "door" in args:
        try:
            door_id = door_named(db(), args["door"]).id
        except NotFoundError:
            raise ApiError(400, f"door: no door is named {args['door'][:60]!r}; GET "
                           "/api/v1/doors lists them") from None
    zone = current_panel().site.zone
    try:
        kinds = parse_kinds(word for value in args.getlist("kind") for word in value.split(","))
        since = None if "since" not in args else parse_moment("since", args["since"], zone)
        until = None if "until" not in args else parse_moment("until", args["until"], zone)
        return EventFilter(customer_id=customer_id, person_id=person_id, door_id=door_id,
                           kinds=kinds, since=since, until=until)
    except InvalidInputError as exc:
        raise ApiError(400, str(exc)) from None


def _int_parameter(args: MultiDict[str, str], name: str, default: int | None, low: int,
                   high: int) -> int | None:
    text = args.get(name)
    if text is None:
        return default
    try:
        return parse_id(name, text, low=low, high=high)
    except InvalidInputError as exc:
        raise ApiError(400, str(exc)) from None


@bp.get("/events", merge_slashes=False)
@token_required()
def events() -> Response:
    """A page of access events, newest first; ``next_cursor`` fetches the page after it."""
    where = _event_filter(request.args)
    limit = _int_parameter(request.args, "limit", 100, 1, PAGE_MAX)
    cursor = _int_parameter(request.args, "cursor", None, 1, MAX_CURSOR)
    assert limit is not None
    try:
        page = page_events(db(), where, before=cursor, limit=limit)
    except HistoryError as exc:
        raise ApiError(400, f"cursor: {exc}") from None
    audit().note("api.events.read", count=len(page.rows),
                 filters={k: v for k, v in request.args.items() if k != "cursor"})
    return jsonify({
        "events": [{
            "id": row.id, "at": _iso(row.at), "kind": row.kind.value,
            "method": row.method.value if row.method else None, "reason": row.reason,
            "door": row.door, "customer": row.customer, "person": row.person,
            "person_id": str(row.person_id) if row.person_id else None,
            "refers_to": row.refers_to,
        } for row in page.rows],
        "next_cursor": str(page.next_before) if page.next_before is not None else None,
    })


@bp.get("/doors", merge_slashes=False)
@token_required()
def doors() -> Response:
    """Every door's state as its daemon last reported it (``online`` false when stale), and
    each of its devices as the dashboard and ``accessd status`` show them, with its zone and
    authentication mode."""
    places = {place.name: place for place in door_places(db())}
    return jsonify({"doors": [{
        "name": door.name, "location": door.location,
        "zone": places[door.name].zone, "auth_mode": places[door.name].auth_mode.value,
        "online": door.online,
        "locked": door.locked, "door_open": door.door_open, "sensor_online": door.sensor_online,
        "fault": door.fault, "heartbeat_at": _iso(door.report.at) if door.report else None,
        "alarms": sorted(alarm.kind.value for alarm in door.alarms),
        "devices": [{
            "device": device.key, "state": device.state, "health": device.health.value,
            "last_contact": _iso(device.last_contact), "problem": device.problem,
            "action": device.action,
        } for device in devices(door)],
    } for door in door_states(db(), current_panel().now())]})


# --- writes: a customer's new person, a remote unlock -----------------------------------------

PERSON_FIELDS = frozenset({"name", "email", "credential"})


@bp.post("/customers/<public_id>/persons", merge_slashes=False)
@token_required(StaffRole.OPERATOR)
def add_customer_person(public_id: str) -> tuple[Response, int]:
    """Record one of the customer's people (a customer portal registering its engineers).

    409 with the reason when the customer's contract is over: nothing more is collected.
    """
    found = _customer(public_id)
    audit().note("api.person.create", customer=str(found.public_id))
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, 'send a JSON object: {"name": "Alice Example", "email": '
                       '"alice@example.com", "credential": "none"} with Content-Type: '
                       "application/json")
    unknown = sorted(set(body) - PERSON_FIELDS - {"same_name_ok"})
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; use "
                       + ", ".join(sorted(PERSON_FIELDS | {"same_name_ok"})))
    values = {key: body.get(key) for key in PERSON_FIELDS}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"{key}: must be a string")
    same_name_ok = body.get("same_name_ok", False)
    if not isinstance(same_name_ok, bool):
        raise ApiError(400, "same_name_ok: must be true or false")
    try:
        person = add_person(db(), found, values["name"] or "", values["email"],
                            values["credential"] or Credential.NONE, clock=current_panel().site,
                            allow_duplicate=same_name_ok)
    except DuplicatePersonError as exc:
        raise ApiError(409, str(exc)) from None
    except InvalidInputError as exc:
        raise ApiError(400, str(exc)) from None
    except ContractOverError as exc:
        raise ApiError(409, str(exc)) from None
    audit().note(target=f"person:{person.public_id}")
    db().commit()
    return jsonify(_person_json(person_summary(db(), person))), 201


# --- remote unlock ---------------------------------------------------------------------------


@bp.post("/doors/<name>/unlock", merge_slashes=False)
@token_required(StaffRole.OPERATOR)
def unlock(name: str) -> tuple[Response, int]:
    """Ask the door's daemon to release the lock once; the reason is kept with the event."""
    try:
        door = door_named(db(), name)
    except NotFoundError:
        raise ApiError(404, f"no door is named {name[:60]!r}; GET /api/v1/doors lists "
                       "them") from None
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, 'send a JSON object: {"reason": "escorted visitor, ticket 4711"} '
                       "with Content-Type: application/json")
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise ApiError(400, "reason: say why the door is opened (a non-empty string)")
    actor = f"token:{current_token().name}"[:ACTOR_MAX]
    try:
        command = request_unlock(db(), door.id, reason, actor=actor)
    except InvalidInputError as exc:
        raise ApiError(400, str(exc)) from None  # as the panel and the CLI say it
    audit().note("door.remote_unlock", target=f"door:{door.name}",
                 reason=command.args["reason"], command=command.id)
    db().commit()
    return jsonify({"door": door.name, "command_id": command.id, "state": "pending",
                    "message": "unlock requested; the door releases within seconds if its "
                               "daemon runs"}), 202
