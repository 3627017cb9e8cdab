"""The JSON API v1: customers, persons, events with a cursor, doors, and the remote unlock.

Every answer is JSON; refusals say what was wrong (400), what is missing (404), that the
token's role does not allow it (403) or that there is no valid token (401).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.clock import SiteClock
from accessd.config import Settings
from accessd.customers.contracts import add_customer
from accessd.customers.people import add_person
from accessd.db import session_scope
from accessd.history.chain import append_event
from accessd.models import (
    AuditRecord,
    CommandKind,
    Customer,
    DeviceCommand,
    Door,
    DoorStatus,
    EventKind,
    EventMethod,
    Person,
    StaffRole,
)
from accessd.staff import create_api_token
from accessd.zones.grants import GrantTerms, grant_zone
from accessd.zones.places import add_zone
from tests.web.conftest import START, FakeClock


@dataclass(frozen=True)
class Site:
    """What ``seed_site`` made: two customers, their people, a door, and 30 events."""

    acme: str
    globex: str
    alice: str
    bob: str
    carol: str


def seed_site(sessions: sessionmaker[Session], now: dt.datetime = START) -> Site:
    """A small site: Acme (Alice, Bob), Globex (Carol), door "main" online, 30 events."""
    settings = Settings()
    clock = SiteClock.of(settings, wall=lambda: now)
    with session_scope(sessions) as db:
        acme = add_customer(db, "Acme", dt.date(2025, 1, 1), dt.date(2026, 6, 30),
                            settings=settings, lawful_basis="consent", now=now)
        globex = add_customer(db, "Globex", dt.date(2025, 1, 1), settings=settings, now=now)
        alice = add_person(db, acme, "Alice Example", "alice@example.com", clock=clock)
        bob = add_person(db, acme, "Bob Example", clock=clock)
        carol = add_person(db, globex, "Carol Example", clock=clock)
        door = Door(name="main", location="hall")
        db.add(door)
        db.flush()
        db.add(DoorStatus(door_id=door.id, online=True, locked=True, door_open=False,
                          sensor_online=True, heartbeat_at=now))
        for n in range(30):
            who = (alice, bob, carol)[n % 3]
            append_event(db, kind=EventKind.GRANTED if n % 5 else EventKind.DENIED,
                         customer=who.customer, person=who, door_id=door.id,
                         method=EventMethod.FINGER, reason="test",
                         at=now - dt.timedelta(hours=30 - n))
        return Site(str(acme.public_id), str(globex.public_id), str(alice.public_id),
                    str(bob.public_id), str(carol.public_id))


@pytest.fixture
def site(sessions: sessionmaker[Session]) -> Site:
    """The small site, seeded."""
    return seed_site(sessions)


@pytest.fixture
def bearer(sessions: sessionmaker[Session], clock: FakeClock) -> Any:
    """Makes a token of a role and returns the Authorization header for it."""

    def make(role: StaffRole = StaffRole.AUDITOR) -> dict[str, str]:
        with session_scope(sessions) as db:
            _row, token = create_api_token(db, f"t-{role.value}-{uuid.uuid4().hex[:6]}", role,
                                           created_by="test", now=clock())
        return {"Authorization": f"Bearer {token}"}

    return make


def test_an_auditor_token_lists_customers_with_contract_state(
    client: FlaskClient, site: Site, bearer: Any
) -> None:
    response = client.get("/api/v1/customers", headers=bearer())
    assert response.status_code == 200 and response.is_json
    listed = {c["name"]: c for c in response.json["customers"]}
    assert listed["Acme"] == {
        "id": site.acme, "name": "Acme", "contract_start": "2025-01-01",
        "contract_end": "2026-06-30", "grace_days": 0, "state": "active",
        "purge_on": "2026-07-01", "lawful_basis": "consent", "persons": 2}
    assert listed["Globex"]["contract_end"] is None and listed["Globex"]["persons"] == 1


def test_one_customer_and_its_persons(client: FlaskClient, site: Site, bearer: Any) -> None:
    headers = bearer()
    assert client.get(f"/api/v1/customers/{site.globex}", headers=headers).json["name"] == \
        "Globex"
    persons = client.get(f"/api/v1/customers/{site.acme}/persons", headers=headers).json
    assert [p["name"] for p in persons["persons"]] == ["Alice Example", "Bob Example"]
    alice = client.get(f"/api/v1/persons/{site.alice}", headers=headers).json
    assert alice["email"] == "alice@example.com" and alice["customer_id"] == site.acme
    assert alice["fingers"] == [] and "template" not in str(alice)


def test_reading_persons_is_audited(
    client: FlaskClient, site: Site, bearer: Any, sessions: sessionmaker[Session]
) -> None:
    client.get(f"/api/v1/customers/{site.acme}/persons", headers=bearer())
    client.get(f"/api/v1/persons/{site.bob}", headers=bearer())
    with session_scope(sessions) as db:
        actions = db.scalars(select(AuditRecord.action)).all()
    assert "api.persons.list" in actions and "api.person.read" in actions


@pytest.mark.parametrize("path", ["/api/v1/customers/{x}", "/api/v1/customers/{x}/persons",
                                  "/api/v1/persons/{x}"])
@pytest.mark.parametrize("x", ["not-a-uuid", str(uuid.UUID(int=7))])
def test_unknown_ids_get_a_404_that_says_so(
    client: FlaskClient, site: Site, bearer: Any, path: str, x: str
) -> None:
    response = client.get(path.format(x=x), headers=bearer())
    assert response.status_code == 404 and response.is_json
    assert "no " in response.json["error"]["message"]


def test_events_page_through_with_a_cursor(client: FlaskClient, site: Site, bearer: Any) -> None:
    headers = bearer()
    seen: list[int] = []
    url = "/api/v1/events?limit=7"
    while True:
        body = client.get(url, headers=headers).json
        seen += [e["id"] for e in body["events"]]
        if body["next_cursor"] is None:
            break
        url = f"/api/v1/events?limit=7&cursor={body['next_cursor']}"
    assert len(seen) == 30 and len(set(seen)) == 30 and seen == sorted(seen, reverse=True)


def test_events_filter_by_customer_person_kind_and_period(
    client: FlaskClient, site: Site, bearer: Any
) -> None:
    headers = bearer()

    def count(query: str) -> int:
        response = client.get(f"/api/v1/events?limit=1000&{query}", headers=headers)
        assert response.status_code == 200, response.json
        return len(response.json["events"])

    assert count(f"customer={site.acme}") == 20
    assert count(f"person={site.carol}") == 10
    assert count("kind=denied") == 6
    assert count("kind=granted,denied&door=main") == 30
    since = (START - dt.timedelta(hours=10)).isoformat()
    assert count(f"since={since.replace('+00:00', 'Z')}") == 10
    alice = client.get(f"/api/v1/events?person={site.alice}&limit=1", headers=headers).json
    assert alice["events"][0]["person"] == "Alice Example"


@pytest.mark.parametrize(("query", "words"), [
    ("limit=0", "limit"), ("limit=abc", "limit"), ("limit=100000", "limit"),
    ("cursor=-4", "cursor"), ("cursor=99999999", "cursor"), ("kind=opened", "kind"),
    ("since=yesterday", "since"), ("since=2026-03-01T10:00:00", "offset"),
    ("since=2026-03-02&until=2026-03-01", "until"), ("customer=nope", "customer"),
    ("door=back", "door"), ("colour=red", "unknown parameter"),
])
def test_bad_event_parameters_get_a_400_naming_the_problem(
    client: FlaskClient, site: Site, bearer: Any, query: str, words: str
) -> None:
    response = client.get(f"/api/v1/events?{query}", headers=bearer())
    assert response.status_code == 400 and response.is_json
    assert words in response.json["error"]["message"]


def test_doors_report_their_state(client: FlaskClient, site: Site, bearer: Any,
                                  clock: FakeClock) -> None:
    clock.now = START
    (door,) = client.get("/api/v1/doors", headers=bearer()).json["doors"]
    devices = door.pop("devices")
    assert door == {"name": "main", "location": "hall", "zone": None,
                    "auth_mode": "finger_or_pin", "online": True, "locked": True,
                    "door_open": False, "sensor_online": True, "fault": None,
                    "heartbeat_at": "2026-03-02T09:00:00Z", "alarms": []}
    assert [(d["device"], d["state"], d["problem"]) for d in devices] == [
        ("daemon", "running", None), ("sensor", "online", None), ("board", "online", None),
        ("database", "online", None)]
    clock.advance(minutes=5)
    (stale,) = client.get("/api/v1/doors", headers=bearer()).json["doors"]
    assert stale["online"] is False and stale["locked"] is None
    daemon = stale["devices"][0]
    assert (daemon["state"], daemon["last_contact"]) == ("not running", "2026-03-02T09:00:00Z")
    assert daemon["problem"] == "The door's daemon has not reported for 5 minutes."


def test_a_customers_grants_are_listed_with_each_persons_own(
        client: FlaskClient, site: Site, bearer: Any, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        acme = session.scalars(select(Customer).where(
            Customer.public_id == uuid.UUID(site.acme))).one()
        alice = session.scalars(select(Person).where(Person.name == "Alice Example")).one()
        add_zone(session, "cage-7", "cage", parent="site")
        grant_zone(session, acme, "site", GrantTerms(schedule="mon-fri 07:00-19:00"))
        grant_zone(session, acme, "cage-7", person=alice)
        acme_public, alice_public = str(acme.public_id), str(alice.public_id)
    response = client.get(f"/api/v1/customers/{acme_public}/grants", headers=bearer())
    assert response.status_code == 200
    assert response.json["grants"] == [
        {"zone": "site", "zone_path": ["site"], "person_id": None,
         "schedule": "mon-fri 07:00-19:00", "closed_on_holidays": False, "valid_from": None,
         "valid_until": None},
        {"zone": "cage-7", "zone_path": ["site", "cage-7"], "person_id": alice_public,
         "schedule": None, "closed_on_holidays": False, "valid_from": None, "valid_until": None},
    ]


def test_an_operator_token_unlocks_a_door_with_a_reason(
    client: FlaskClient, site: Site, bearer: Any, sessions: sessionmaker[Session]
) -> None:
    response = client.post("/api/v1/doors/main/unlock", headers=bearer(StaffRole.OPERATOR),
                           json={"reason": "escorted visitor, ticket 4711"})
    assert response.status_code == 202 and response.json["state"] == "pending"
    with session_scope(sessions) as db:
        command = db.scalars(select(DeviceCommand)).one()
        assert command.kind is CommandKind.REMOTE_UNLOCK
        assert command.args == {"reason": "escorted visitor, ticket 4711"}
        assert command.created_by.startswith("token:t-operator")
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "door.remote_unlock")).one()
        assert record.target == "door:main"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({}, 400, "reason"), ({"reason": "   "}, 400, "reason"), ({"reason": 5}, 400, "reason"),
    ({"reason": "x" * 151}, 400, "at most"), ([1, 2], 400, "JSON object"),
    (None, 400, "JSON object"),
])
def test_an_unlock_without_a_good_reason_is_refused(
    client: FlaskClient, site: Site, bearer: Any, body: Any, status: int, words: str
) -> None:
    response = client.post("/api/v1/doors/main/unlock", headers=bearer(StaffRole.ADMIN),
                           json=body)
    assert response.status_code == status and words in response.json["error"]["message"]


def test_unlocking_an_unknown_door_is_a_404(client: FlaskClient, site: Site,
                                            bearer: Any) -> None:
    response = client.post("/api/v1/doors/back/unlock", headers=bearer(StaffRole.ADMIN),
                           json={"reason": "visitor"})
    assert response.status_code == 404 and "GET /api/v1/doors" in response.json["error"][
        "message"]


def test_an_auditor_token_may_not_unlock(client: FlaskClient, site: Site, bearer: Any,
                                         sessions: sessionmaker[Session]) -> None:
    response = client.post("/api/v1/doors/main/unlock", headers=bearer(),
                           json={"reason": "visitor"})
    assert response.status_code == 403 and response.json["error"]["status"] == 403
    with session_scope(sessions) as db:
        assert db.scalars(select(DeviceCommand)).all() == []


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/events", "/api/v1/doors"])
def test_no_token_is_a_401(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401 and response.is_json


def test_a_wrong_method_is_a_json_405(client: FlaskClient, bearer: Any) -> None:
    response = client.delete("/api/v1/customers", headers=bearer())
    assert response.status_code == 405 and response.is_json
