"""Operators read plain language (issue 12, finding 9): a crawl of every page the panel links
to, as each role, in English and in Dutch, fails when a stored code (any value of accessd's
vocabularies, collected from the models, or a coded event reason: ``wrong_pin``,
``reader_closed``, ``unknown_finger``), a Python repr (``None``, ``{}``, ``[]``, quotes) or a
doubled full stop ("B.V..") reaches what a person reads; the history's CSV header too. Audit
targets read as names, or "deleted person" once the person is gone.

The site is seeded so each of these could show: a customer whose name ends in a full stop,
events with coded reasons, audit records with empty details, a target that was erased.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from collections import deque
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from accessd.customers.contracts import add_customer
from accessd.history.chain import record_event
from accessd.labels import codes
from accessd.models import (
    AuditOutcome,
    Customer,
    EventKind,
    EventMethod,
    LawfulBasis,
    LoginAttempt,
    LoginOutcome,
    Person,
    RequestKind,
    StaffRole,
)
from accessd.rights.requests import record_request
from accessd.staff import record_audit
from tests.web.conftest import FakeClock, csrf_token
from tests.web.pages_fixtures import SETTINGS, Site, client_as, site

__all__ = ["site"]  # fixtures used by name

CODES = sorted((c for c in codes() if "_" in c), key=len, reverse=True)
"""Codes that are no English word (``wrong_pin``): none may be read on a page. Codes that are
words (``granted``, ``admin``) cannot be told from the sentences around them."""
CODE = re.compile(r"(?<![\w.:/-])(" + "|".join(map(re.escape, CODES)) + r")(?![\w])")
REPR = re.compile(r"(?<=: )None\b|\bNone(?=[;,)\]}])|\{\}|\[\]|\{'|\['|'\]|'\}|: ''")
"""Python's repr of None, empty and other containers, strings: "before: None; filters: {}".
"None yet" and "None." are English."""
DOUBLE_STOP = re.compile(r"\w\.\.(?!\.)")
MAX_PAGES = 120
SKIPPED = ("/static/", "/logout", "/api/", "/export", ".csv", ".json", ".md", "/certificate")


class _Text(HTMLParser):
    """The text a person reads: text nodes outside script and style, and option labels."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1
        if tag in ("td", "th", "p", "li", "dd", "dt", "option", "h1", "h2", "h3", "div"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)


@pytest.fixture
def seeded(site: Site, sessions: sessionmaker[Session], clock: FakeClock) -> Site:
    """The pages' site, plus what could show codes or reprs."""
    now = clock()
    with sessions.begin() as db:
        hooli = add_customer(db, "Hooli Colocation B.V.", now.date() - dt.timedelta(days=30),
                             settings=SETTINGS, lawful_basis=LawfulBasis.CONSENT, now=now)
        acme = db.get_one(Customer, site.customer_id)
        alice = db.get_one(Person, site.alice_id)
        conn = db.connection()
        door = site.door_id
        common: dict[str, Any] = {"customer_id": acme.id, "customer_public_id": acme.public_id,
                                  "person_id": alice.id, "person_public_id": alice.public_id,
                                  "door_id": door}
        granted = record_event(conn, kind=EventKind.GRANTED, method=EventMethod.FINGER,
                               reason="allowed", at=now - dt.timedelta(minutes=9), **common)
        record_event(conn, kind=EventKind.DENIED, method=EventMethod.PIN, reason="wrong_pin",
                     at=now - dt.timedelta(minutes=8), **common)
        record_event(conn, kind=EventKind.UNKNOWN_FINGER, method=EventMethod.FINGER,
                     door_id=door, at=now - dt.timedelta(minutes=7))
        record_event(conn, kind=EventKind.TAMPER, reason="reader_closed", door_id=door,
                     at=now - dt.timedelta(minutes=6))
        record_event(conn, kind=EventKind.ALARM, reason="failure_backoff", door_id=door,
                     at=now - dt.timedelta(minutes=5))
        record_event(conn, kind=EventKind.PULSE_FAILED, reason="board_unreachable",
                     refers_to=granted, at=now - dt.timedelta(minutes=4), **common)
        record_event(conn, kind=EventKind.DENIED, method=EventMethod.FINGER,
                     reason="contract_ended", at=now - dt.timedelta(minutes=3), **common)
        request = record_request(db, RequestKind.WITHDRAW_CONSENT, now.date(),
                                 requester_name="Alice Jansen", person=alice)
        for target, details in [
            (f"person:{alice.public_id}", {"before": None, "filters": {}, "fields": []}),
            (f"person:{uuid.uuid4()}", {"result": "bad_password", "was_locked": False}),
            (f"customer:{hooli.public_id}", {"name": "Hooli Colocation B.V."}),
            (f"request:{request.public_id}", {"kind": "withdraw_consent"}),
            ("door:Hall A", {"reason": "escorted visitor"}),
        ]:
            record_audit(db, actor="oscar", action="test.words", outcome=AuditOutcome.REFUSED,
                         target=target, details=details, source_address="192.0.2.7", at=now)
        for outcome in LoginOutcome:
            db.add(LoginAttempt(username="oscar", source_address="192.0.2.8", outcome=outcome,
                                at=now - dt.timedelta(minutes=1)))
    return site


def _crawl(client: FlaskClient) -> dict[str, str]:
    """Every page reachable by links from the dashboard: URL -> the text a person reads."""
    seen: dict[str, str] = {}
    queue = deque(["/"])
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        response = client.get(url)
        assert response.status_code < 500, url
        if response.status_code in (301, 302, 303):
            queue.append(response.headers["Location"])
            seen[url] = ""
            continue
        if "text/html" not in response.content_type:
            continue
        parser = _Text()
        parser.feed(response.get_data(as_text=True))
        seen[url] = parser.text
        for href in parser.links:
            target = urljoin(url, href.split("#")[0])
            parts = urlsplit(target)
            if parts.netloc or not parts.path.startswith("/") or any(
                    skip in parts.path for skip in SKIPPED):
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if path not in seen:
                queue.append(path)
    return seen


def _problems(text: str) -> list[str]:
    found = [f"code {m.group(1)!r}" for m in CODE.finditer(text)]
    found += [f"repr {m.group(0)!r}" for m in REPR.finditer(text)]
    found += [f"double stop {m.group(0)!r}" for m in DOUBLE_STOP.finditer(text)]
    return found


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("role", [StaffRole.ADMIN, StaffRole.OPERATOR, StaffRole.AUDITOR])
def test_no_page_shows_a_code_a_repr_or_a_double_stop(
        app: Flask, make_staff: Any, clock: FakeClock, seeded: Site, role: StaffRole,
        language: str) -> None:
    client = client_as(app, make_staff, clock, role)
    client.post("/language", data={"csrf_token": csrf_token(client, "/"), "language": language})
    pages = _crawl(client)
    assert len(pages) >= 8, sorted(pages)
    assert "/history/" in pages and ("/audit/" in pages) is (role is not StaffRole.OPERATOR)
    problems = {url: found for url, text in pages.items() if (found := _problems(text))}
    assert problems == {}
    if language == "nl":
        leftovers = {url: english for url, text in pages.items()
                     for pattern, english, _ in LEFTOVERS
                     if re.fullmatch(pattern, url) and english in text}
        assert leftovers == {}


LEFTOVERS = [
    # (pages, an English sentence of their templates, its Dutch)
    (r"/", "Latest events", "Laatste gebeurtenissen"),
    (r"/", "Work at the doors", "Werk bij de deuren"),
    (r"/", "Unlock…", "Ontgrendelen…"),
    (r"/", "Times in the site's time zone.", "Tijden in de tijdzone van de locatie."),
    (r"/customers/", "Add customer", "Klant toevoegen"),
    (r"/customers/[0-9a-f-]{36}", "Grace period", "Respijtperiode"),
    (r"/customers/[0-9a-f-]{36}", "End contract", "Contract beëindigen"),
    (r"/customers/persons/[0-9a-f-]{36}", "Enrol a finger", "Een vinger registreren"),
    (r"/customers/persons/[0-9a-f-]{36}", "Withdraw consent…", "Toestemming intrekken…"),
    (r"/customers/persons/[0-9a-f-]{36}", "Download the export", "De export downloaden"),
    (r"/customers/persons/[0-9a-f-]{36}", "Record a request about",
     "Een verzoek over"),
    (r"/privacy/", "Purge schedule", "Wisschema"),
    (r"/privacy/purges", "No purges yet.", "Nog geen wissingen."),
    (r"/privacy/requests", "Record a request", "Een verzoek vastleggen"),
    (r"/privacy/requests/new.*", "Find the person", "De persoon zoeken"),
    (r"/privacy/requests/[0-9a-f-]{36}", "Close the request", "Het verzoek afsluiten"),
    (r"/privacy/register", "Register of processing activities",
     "Register van verwerkingsactiviteiten"),
    (r"/enrolment/[0-9a-f-]{36}.*", "Start enrolment", "Registratie starten"),
    (r"/doors/", "Authentication", "Authenticatie"),
    (r"/doors/\d+/unlock", "Unlock now", "Nu ontgrendelen"),
    (r"/doors/\d+/alarms", "Clear the alarms", "De alarmen opheffen"),
]
"""Sentences of the customers, privacy, enrolment, doors and dashboard templates that an
untranslated page would show in Dutch too (issue 12: the panel in English and Dutch)."""


def test_no_english_sentence_is_left_on_the_dutch_pages(
        app: Flask, make_staff: Any, clock: FakeClock, seeded: Site) -> None:
    """As an admin (who sees every page and action), each sentence shows in English on its
    pages, and in Dutch only its translation does."""
    client = client_as(app, make_staff, clock, StaffRole.ADMIN)
    english = _crawl(client)
    client.post("/language", data={"csrf_token": csrf_token(client, "/"), "language": "nl"})
    dutch = _crawl(client)
    for pattern, sentence, translation in LEFTOVERS:
        shown = [url for url in english if re.fullmatch(pattern, url)
                 and sentence in english[url]]
        assert shown, f"no English page of {pattern} shows {sentence!r}"
        for url in shown:
            assert sentence not in dutch[url], (url, sentence)
            assert translation in dutch[url], (url, translation)


def test_the_crawl_would_see_a_code_or_a_repr() -> None:
    assert _problems("Detail\nwrong_pin\n") == ["code 'wrong_pin'"]
    assert _problems("before: None; filters: {}") == ["repr 'None'", "repr '{}'"]
    assert _problems("Customer Hooli Colocation B.V.. added") == ["double stop 'V..'"]
    assert _problems("person. or door. … and so on...") == []


def test_history_reads_in_words(app: Flask, make_staff: Any, clock: FakeClock,
                                seeded: Site) -> None:
    client = client_as(app, make_staff, clock, StaffRole.AUDITOR)
    rows = _rows(client.get("/history/").get_data(as_text=True), "events")
    assert ["refused", "Acme Hosting B.V.", "Alice Jansen", "PIN", "wrong PIN"] == rows[5][2:7]
    unknown = rows[4]
    assert unknown[2] == "unknown finger" and unknown[4] == "", "what happened, not who"
    assert rows[3][2:] == ["reader housing", "", "", "", "the reader's housing was closed"]
    assert rows[1][6].startswith("the door board did not answer (about event")
    client.post("/language", data={"csrf_token": csrf_token(client, "/"), "language": "nl"})
    dutch = _rows(client.get("/history/").get_data(as_text=True), "events")
    assert dutch[5][5:7] == ["pincode", "verkeerde pincode"] and dutch[4][2] == "onbekende vinger"


def test_audit_lines_name_their_target_and_say_their_details_in_words(
        app: Flask, make_staff: Any, clock: FakeClock, seeded: Site) -> None:
    client = client_as(app, make_staff, clock, StaffRole.AUDITOR)
    rows = _rows(client.get("/audit/?action=test.").get_data(as_text=True), "audit-log")
    about = {row[3]: row[6] for row in rows}
    assert about["Alice Jansen (person)"] == "before: none; fields: none; filters: none"
    assert about["deleted person"] == "result: wrong password; was locked: no"
    assert about["Hooli Colocation B.V. (customer)"] == "name: Hooli Colocation B.V."
    assert about[f"withdrawal of consent, received {clock().date()} (request)"] == \
        "kind: withdrawal of consent"
    assert about["Hall A (door)"] == "reason: escorted visitor"
    assert all(row[4] == "refused" for row in rows)


def test_the_history_csv_header_names_its_columns_in_words(
        app: Flask, make_staff: Any, clock: FakeClock, seeded: Site) -> None:
    client = client_as(app, make_staff, clock, StaffRole.AUDITOR)
    body = client.get("/history/export.csv").get_data(as_text=True)
    header = next(csv.reader(io.StringIO(body)))
    assert header and not set(header) & codes()
    assert all(REPR.search(cell) is None for cell in header)


def _rows(page: str, table_class: str) -> list[list[str]]:
    table = re.search(rf'<table class="{table_class}".*?</table>', page, re.S)
    assert table is not None, page
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), re.S)[1:]:
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        rows.append([re.sub(r"<[^>]+>", "", cell).strip().replace("&#39;", "'")
                     .replace("&amp;", "&") for cell in cells])
    return rows


def test_refusals_name_things_by_what_staff_know_not_by_row_ids(
        seeded: Site, sessions: sessionmaker[Session], clock: FakeClock) -> None:
    from accessd.errors import InvalidInputError, SubjectRequestError
    from accessd.rights.requests import close_request

    with sessions.begin() as db:
        with pytest.raises(InvalidInputError) as taken:
            add_customer(db, "hooli colocation b.v.", clock().date(), settings=SETTINGS,
                         lawful_basis=LawfulBasis.CONSENT, now=clock())
        request = record_request(db, RequestKind.ACCESS, clock().date(),
                                 requester_name="Bob de Vries")
        close_request(request, "export sent", now=clock())
        with pytest.raises(SubjectRequestError) as closed:
            close_request(request, "again", now=clock())
    assert taken.value.problem == ("a customer named 'Hooli Colocation B.V.' already exists; "
                                   "choose another name")
    assert str(closed.value) == (f"the access request received on {clock().date()} was "
                                 f"already closed on {clock().date()}")
