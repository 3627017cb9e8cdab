"""Privacy pages: purge schedule and records, data-subject requests, rights on a person, and
the register; operators act, auditors read."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings
from accessd.crypto import FileKeyProvider
from accessd.customers.contracts import add_customer
from accessd.customers.people import record_consent
from accessd.db import create_db_engine, session_scope
from accessd.models import (
    AccessEvent,
    AuditRecord,
    Consent,
    Customer,
    DataSubjectRequest,
    Person,
    RequestKind,
    RequestStatus,
    StaffRole,
)
from accessd.privacy.purge import run_due_purges, verify_certificate
from accessd.rights.requests import record_request
from tests.privacy.seed import confirm_resyncs
from tests.web.conftest import START, FakeClock, StaffMember, csrf_token, sign_in
from tests.web.test_api_v1 import Site, seed_site


@pytest.fixture
def site(sessions: sessionmaker[Session]) -> Site:
    """The API tests' small site: Acme (Alice, Bob), Globex (Carol), 30 events."""
    return seed_site(sessions)


@pytest.fixture
def operator(client: FlaskClient, make_staff: Any, clock: FakeClock) -> FlaskClient:
    """A client signed in as an operator."""
    member: StaffMember = make_staff("olga", StaffRole.OPERATOR)
    assert sign_in(client, member, clock).status_code == 302
    return client


@pytest.fixture
def auditor(app: Any, make_staff: Any, clock: FakeClock) -> FlaskClient:
    """A second browser, signed in as an auditor."""
    client = app.test_client()
    member: StaffMember = make_staff("audrey", StaffRole.AUDITOR)
    assert sign_in(client, member, clock).status_code == 302
    return client


def _form(client: FlaskClient, page: str, action: str, **data: str) -> Any:
    return client.post(action, data={"csrf_token": csrf_token(client, page), **data})


def _audited(sessions: sessionmaker[Session], action: str) -> list[AuditRecord]:
    with session_scope(sessions) as db:
        rows = db.scalars(select(AuditRecord).where(AuditRecord.action == action)).all()
        db.expunge_all()
        return list(rows)


# --- purge schedule and records ----------------------------------------------------------------

def test_the_schedule_shows_every_customer_and_what_goes(auditor: FlaskClient,
                                                         site: Site) -> None:
    page = auditor.get("/privacy/").get_data(as_text=True)
    assert "Acme" in page and "Globex" in page and "2026-07-01 00:00" in page
    assert "2 person(s), 0 finger(s), 0 consent(s), 20 access event(s)" in page
    assert "not planned" in page  # Globex has no end date


def test_a_purge_record_offers_its_signed_certificate(
    auditor: FlaskClient, sessions: sessionmaker[Session], keys: FileKeyProvider, db_url: str,
    site: Site,
) -> None:
    later = dt.datetime(2026, 7, 2, tzinfo=dt.UTC)
    engine = create_db_engine(db_url)
    try:
        (waiting,) = run_due_purges(sessions, keys, engine, later, site_timezone="UTC")
        page = auditor.get("/privacy/purges").get_data(as_text=True)
        # Until the door's daemon confirms its sensor dropped the templates: no certificate.
        assert "waiting for 1 door(s) to confirm their sensor" in page
        assert "main (resync pending since" in page
        assert auditor.get(f"/privacy/purges/{waiting.id}/certificate").status_code == 404
        confirm_resyncs(sessions)
        (record,) = run_due_purges(sessions, keys, engine, later, site_timezone="UTC")
    finally:
        engine.dispose()
    page = auditor.get("/privacy/purges").get_data(as_text=True)
    assert record.customer_digest[:16] in page and "signature valid" in page
    assert "Acme" not in page  # anonymised
    response = auditor.get(f"/privacy/purges/{record.id}/certificate")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert verify_certificate(response.data, provider=keys).valid
    assert json.loads(response.data)["certificate"]["counts"]["persons"] == 2
    assert _audited(sessions, "purge.certificate")
    assert auditor.get("/privacy/purges/999/certificate").status_code == 404


def test_staff_find_a_customers_purge_by_the_reference_from_their_contract_records(
    auditor: FlaskClient, sessions: sessionmaker[Session], keys: FileKeyProvider, db_url: str,
    site: Site,
) -> None:
    with session_scope(sessions) as db:
        references = dict(db.execute(select(Customer.name, Customer.reference)).all())
    engine = create_db_engine(db_url)
    try:
        run_due_purges(sessions, keys, engine, dt.datetime(2026, 7, 2, tzinfo=dt.UTC),
                       site_timezone="UTC")
    finally:
        engine.dispose()
    typed = references["Acme"].lower().replace("-", " ")  # as someone might type it
    found = auditor.get("/privacy/purges", query_string={"customer_reference": typed})
    page = found.get_data(as_text=True)
    assert "1 purge record of the customer holding this reference" in page
    assert page.count('class="purge-theirs"') == 1 and "this customer's" in page
    assert "Acme" not in page and references["Acme"] not in page.replace(typed, "")
    other = auditor.get("/privacy/purges", query_string={
        "customer_reference": references["Globex"]}).get_data(as_text=True)
    assert "No purge record was made for the customer holding this reference" in other
    assert 'class="purge-theirs"' not in other
    bad = auditor.get("/privacy/purges", query_string={"customer_reference": "ACME-1"})
    assert "25 letters and digits" in bad.get_data(as_text=True)
    assert [(r.details or {})["found"] for r in _audited(sessions, "purge.find")] == [1, 0]


# --- requests ----------------------------------------------------------------------------------

def test_an_operator_records_a_request_due_in_a_month(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    response = _form(operator, f"/privacy/requests/new?person={site.alice}",
                     "/privacy/requests/new", kind="access", received_on="2026-03-01",
                     requester_name="Alice Example", requester_contact="alice@example.com",
                     person=site.alice, customer="")
    assert response.status_code == 302, response.get_data(as_text=True)
    page = operator.get(response.headers["Location"]).get_data(as_text=True)
    assert "Due</dt><dd>2026-04-01" in page and "Alice Example" in page
    with session_scope(sessions) as db:
        request = db.scalars(select(DataSubjectRequest)).one()
        assert request.handled_by == "olga" and request.person_id is not None
    assert _audited(sessions, "request.record")


@pytest.mark.parametrize(("data", "message"), [
    ({"requester_name": ""}, "Name who asked."),
    ({"received_on": "yesterday"}, "Not a valid date value"),
    ({"received_on": "2026-04-01"}, "in the future"),
    ({"person": "not-an-id"}, "choose the person from the list"),
    ({"person": "00000000-0000-0000-0000-000000000001"}, "choose the person from the list"),
    ({"kind": "complaint"}, "Not a valid choice"),
])
def test_a_bad_request_form_says_what_is_wrong_beside_the_field(
    operator: FlaskClient, site: Site, data: dict[str, str], message: str,
    sessions: sessionmaker[Session],
) -> None:
    fields = {"kind": "access", "received_on": "2026-03-01", "requester_name": "Alice",
              "person": "", "customer": "", **data}
    response = _form(operator, "/privacy/requests/new", "/privacy/requests/new", **fields)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page and 'aria-invalid="true"' in page
    with session_scope(sessions) as db:
        assert db.scalars(select(DataSubjectRequest)).all() == []


def _request(sessions: sessionmaker[Session], received: dt.date, person: str | None = None
             ) -> str:
    with session_scope(sessions) as db:
        subject = db.scalars(select(Person).where(Person.name == person)).one() if person \
            else None
        made = record_request(db, RequestKind.ERASURE, received, requester_name="Requester",
                              person=subject)
        return str(made.public_id)


def test_overdue_requests_are_marked(auditor: FlaskClient, sessions: sessionmaker[Session],
                                     site: Site) -> None:
    _request(sessions, dt.date(2026, 1, 15), "Bob Example")  # due 2026-02-15: overdue
    _request(sessions, dt.date(2026, 2, 20))  # due 2026-03-20
    page = auditor.get("/privacy/requests").get_data(as_text=True)
    assert page.count("OVERDUE") == 1 and "by 15 days" in page and "18 days left" in page
    assert page.index("2026-02-15") < page.index("2026-03-20")
    assert "Bob Example (Acme)" in page


def test_extending_needs_a_reason_and_stays_within_three_months(
    operator: FlaskClient, sessions: sessionmaker[Session], site: Site
) -> None:
    public_id = _request(sessions, dt.date(2026, 2, 20))
    page = f"/privacy/requests/{public_id}"
    missing = _form(operator, page, f"{page}/extend", until="2026-04-20", reason="")
    assert "Say why" in missing.get_data(as_text=True)
    too_far = _form(operator, page, f"{page}/extend", until="2026-06-01", reason="complex")
    assert "2026-05-20 at the latest" in too_far.get_data(as_text=True)
    done = _form(operator, page, f"{page}/extend", until="2026-05-20", reason="many sites")
    assert done.status_code == 302
    assert "extended from 2026-03-20: many sites" in operator.get(page).get_data(as_text=True)


def test_closing_a_request_moves_it_out_of_the_open_list(
    operator: FlaskClient, sessions: sessionmaker[Session], site: Site
) -> None:
    public_id = _request(sessions, dt.date(2026, 2, 20))
    page = f"/privacy/requests/{public_id}"
    empty = _form(operator, page, f"{page}/close", outcome="  ")
    assert "Describe the outcome" in empty.get_data(as_text=True)
    closed = _form(operator, page, f"{page}/close", outcome="erased on 2026-03-02")
    assert closed.status_code == 302
    listing = operator.get("/privacy/requests").get_data(as_text=True)
    assert "No open requests." in listing and "erased on 2026-03-02" in listing
    with session_scope(sessions) as db:
        assert db.scalars(select(DataSubjectRequest.status)).one() is RequestStatus.CLOSED
    again = _form(operator, page, f"{page}/close", outcome="twice")
    assert "already closed" in operator.get(again.headers["Location"]).get_data(as_text=True)


def test_an_auditor_reads_requests_but_may_not_change_them(
    auditor: FlaskClient, sessions: sessionmaker[Session], site: Site
) -> None:
    public_id = _request(sessions, dt.date(2026, 2, 20))
    page = auditor.get(f"/privacy/requests/{public_id}").get_data(as_text=True)
    assert "Requester" in page and "Close the request" not in page
    token = csrf_token(auditor, "/privacy/requests")
    assert auditor.post(f"/privacy/requests/{public_id}/close",
                        data={"csrf_token": token, "outcome": "x"}).status_code == 403
    assert auditor.get("/privacy/requests/new").status_code == 403


# --- rights on a person ------------------------------------------------------------------------

def test_the_export_is_a_zip_of_everything_held_and_is_audited(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    page = f"/customers/persons/{site.alice}"
    with _form(operator, page, f"{page}/export") as response:  # closes the spooled file
        assert response.status_code == 200 and response.mimetype == "application/zip"
        assert f"export-person-{site.alice}" in response.headers["Content-Disposition"]
        archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert {"persons.json", "access_events.csv", "manifest.json"} <= set(archive.namelist())
    persons = json.loads(archive.read("persons.json"))
    assert persons[0]["name"] == "Alice Example"
    assert len(json.loads(archive.read("access_events.json"))) == 10
    (record,) = _audited(sessions, "person.export")
    assert record.actor == "olga" and record.target == f"person:{site.alice}"


def test_erasure_asks_first_then_erases_and_anonymises(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    page = f"/customers/persons/{site.bob}"
    confirm = operator.get(f"{page}/erase").get_data(as_text=True)
    assert "This cannot be undone" in confirm and "Erase Bob Example now" in confirm
    with session_scope(sessions) as db:
        assert db.scalars(select(Person).where(Person.name == "Bob Example")).one()
    response = _form(operator, f"{page}/erase", f"{page}/erase")
    assert response.status_code == 302
    with session_scope(sessions) as db:
        assert db.scalars(select(Person).where(Person.name == "Bob Example")).first() is None
        assert len(db.scalars(select(AccessEvent)).all()) == 30  # kept, anonymised
    assert operator.get(page).status_code == 404
    assert _audited(sessions, "person.erase")[0].outcome.value == "success"


def test_restrict_needs_a_reason_and_can_be_lifted(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    page = f"/customers/persons/{site.alice}"
    missing = _form(operator, page, f"{page}/restrict", reason="")
    assert "Say why" in missing.get_data(as_text=True)
    assert _form(operator, page, f"{page}/restrict", reason="accuracy contested").status_code \
        == 302
    shown = operator.get(page).get_data(as_text=True)
    assert "restricted since" in shown and "accuracy contested" in shown
    assert _form(operator, page, f"{page}/unrestrict").status_code == 302
    assert "not restricted" in operator.get(page).get_data(as_text=True)
    assert _audited(sessions, "person.restrict") and _audited(sessions, "person.unrestrict")


def test_withdrawing_consent_records_it_or_says_there_is_none(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    page = f"/customers/persons/{site.bob}"
    nothing = _form(operator, page, f"{page}/withdraw-consent")
    assert "nothing to withdraw" in operator.get(nothing.headers["Location"]).get_data(
        as_text=True)
    with session_scope(sessions) as db:
        bob = db.scalars(select(Person).where(Person.name == "Bob Example")).one()
        record_consent(db, bob, "v1", "olga", now=clock())
    done = _form(operator, page, f"{page}/withdraw-consent")
    assert "Consent withdrawn" in operator.get(done.headers["Location"]).get_data(as_text=True)
    with session_scope(sessions) as db:
        assert db.scalars(select(Consent.withdrawn_at)).one() is not None


def test_an_auditor_may_not_act_on_a_person(auditor: FlaskClient, site: Site) -> None:
    assert auditor.get(f"/privacy/persons/{site.alice}").status_code == 403
    page = auditor.get(f"/customers/persons/{site.alice}").get_data(as_text=True)
    assert "Alice Example" in page and "Withdraw consent" not in page and "Erase" not in page
    token = csrf_token(auditor, "/privacy/requests")
    for action in ("export", "erase", "restrict", "unrestrict", "withdraw-consent",
                   "fingers/right_index/remove"):
        response = auditor.post(f"/customers/persons/{site.alice}/{action}",
                                data={"csrf_token": token})
        assert response.status_code == 403, action
    for action in ("export", "erase", "restrict", "lift", "withdraw-consent"):
        response = auditor.post(f"/privacy/persons/{site.alice}/{action}",
                                data={"csrf_token": token})
        assert response.status_code == 403, action


# --- the register ------------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "words"), [
    ("en", ["Register of processing activities", "Legal ground",
            "Door access for customers&#39;", "Controller (GDPR art. 30(1)(a))",
            "NOT CONFIGURED: set controller.name", "Transfers to third countries",
            "Technical and organisational security measures", "Acme"]),
    ("nl", ["Register van verwerkingsactiviteiten", "Grond voor verwerking",
            "tot einde dienstverlening", "NIET INGESTELD", "Doorgifte naar derde landen"]),
])
def test_the_register_in_english_and_dutch(auditor: FlaskClient, site: Site, lang: str,
                                           words: list[str]) -> None:
    page = auditor.get(f"/privacy/register?lang={lang}").get_data(as_text=True)
    for word in words:
        assert word in page


@pytest.mark.parametrize(("fmt", "start"), [("csv", "Language / Taal,"),
                                            ("md", "## Register of processing activities")])
def test_the_register_downloads_as_csv_and_markdown(
    auditor: FlaskClient, site: Site, sessions: sessionmaker[Session], fmt: str, start: str
) -> None:
    response = auditor.get(f"/privacy/register.{fmt}?lang=both")
    assert response.status_code == 200 and "attachment" in response.headers[
        "Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith(start) and "Verantwoordelijke" in text
    assert _audited(sessions, "register.download")


def test_an_unknown_register_format_is_a_404(auditor: FlaskClient) -> None:
    assert auditor.get("/privacy/register.pdf").status_code == 404


def test_the_purge_moment_is_local_midnight_at_the_site(
    make_app: Any, make_staff: Any, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as db:
        add_customer(db, "Initech", dt.date(2025, 1, 1), dt.date(2026, 3, 31),
                     settings=Settings(), grace_days=3, now=START)
    client = make_app().test_client()
    sign_in(client, make_staff("olga", StaffRole.OPERATOR), clock)
    page = client.get("/privacy/").get_data(as_text=True)
    assert "Initech" in page and "2026-04-04 00:00" in page and "3 days" in page
