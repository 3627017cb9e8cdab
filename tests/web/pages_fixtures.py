"""Fixtures for the page tests: a site with a door, a customer and its people, events, and
clients signed in with each role. Import what a test module uses from here."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from accessd.clock import SiteClock
from accessd.config import Settings
from accessd.customers.contracts import add_customer
from accessd.customers.people import add_person, record_consent
from accessd.history.chain import record_event
from accessd.models import (
    Alarm,
    AlarmKind,
    Credential,
    Door,
    DoorStatus,
    EventKind,
    EventMethod,
    LawfulBasis,
    StaffRole,
)
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in

SETTINGS = Settings()  # what the panel uses when it is given no settings (tests)


@dataclass(frozen=True)
class Site:
    """What the site fixture made (ids and public ids, to build URLs and check rows)."""

    door_id: int
    customer_id: int
    customer_public_id: str
    necessity_customer_public_id: str
    alice_id: int  # consent given
    alice_public_id: str
    bob_id: int  # no consent yet
    bob_public_id: str


@pytest.fixture
def site(sessions: sessionmaker[Session], clock: FakeClock) -> Site:
    """A door (online, one open alarm), Acme (consent basis) with Alice (consented) and Bob,
    and Vault Co (necessity basis) without people."""
    with sessions.begin() as db:
        door = Door(name="Hall A", location="ground floor")
        db.add(door)
        db.flush()
        db.add(DoorStatus(door_id=door.id, online=True, locked=True, door_open=False,
                          sensor_online=True, heartbeat_at=clock()))
        db.add(Alarm(door_id=door.id, kind=AlarmKind.DOOR_HELD_OPEN, detail="held 90 s",
                     raised_at=clock() - dt.timedelta(minutes=5)))
        today = clock().date()
        acme = add_customer(db, "Acme Hosting B.V.", today - dt.timedelta(days=100),
                            today + dt.timedelta(days=200), settings=SETTINGS,
                            lawful_basis=LawfulBasis.CONSENT, now=clock())
        vault = add_customer(db, "Vault Co", today - dt.timedelta(days=10), settings=SETTINGS,
                             lawful_basis=LawfulBasis.NECESSITY,
                             necessity_reference="DPIA-2026-01 section 4", now=clock())
        site_clock = SiteClock.of(SETTINGS, wall=clock)
        alice = add_person(db, acme, "Alice Jansen", "alice@example.com", Credential.FINGER,
                           clock=site_clock)
        bob = add_person(db, acme, "Bob de Vries", None, Credential.NONE, clock=site_clock)
        record_consent(db, alice, "1", "ada", now=clock())
        return Site(door.id, acme.id, str(acme.public_id), str(vault.public_id), alice.id,
                    str(alice.public_id), bob.id, str(bob.public_id))


def add_events(sessions: sessionmaker[Session], site: Site, start: dt.datetime,
               count: int, *, every: dt.timedelta = dt.timedelta(minutes=7)) -> list[int]:
    """``count`` events at the door, alternating granted (Alice) and unknown finger, some
    sharing a timestamp (pagination must break ties). Returns their ids, oldest first."""
    ids: list[int] = []
    with sessions.begin() as db:
        from accessd.models import Customer, Person

        acme = db.get_one(Customer, site.customer_id)
        alice = db.get_one(Person, site.alice_id)
        conn = db.connection()
        for n in range(count):
            at = start + every * (n // 3)  # three events per timestamp
            if n % 2 == 0:
                ids.append(record_event(
                    conn, kind=EventKind.GRANTED, customer_id=acme.id,
                    customer_public_id=acme.public_id, person_id=alice.id,
                    person_public_id=alice.public_id, door_id=site.door_id,
                    method=EventMethod.FINGER, at=at))
            else:
                ids.append(record_event(conn, kind=EventKind.UNKNOWN_FINGER,
                                        door_id=site.door_id, method=EventMethod.FINGER, at=at))
    return ids


def client_as(app: Flask, make_staff: Any, clock: FakeClock, role: StaffRole) -> FlaskClient:
    """A new client signed in as a fresh staff member with ``role``."""
    member: StaffMember = make_staff(f"someone-{role.value}", role)
    client = app.test_client()
    response = sign_in(client, member, clock)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def operator(app: Flask, make_staff: Any, clock: FakeClock) -> FlaskClient:
    """A client signed in as an operator."""
    return client_as(app, make_staff, clock, StaffRole.OPERATOR)


@pytest.fixture
def auditor(app: Flask, make_staff: Any, clock: FakeClock) -> FlaskClient:
    """A client signed in as an auditor (read-only)."""
    return client_as(app, make_staff, clock, StaffRole.AUDITOR)


def post_form(client: FlaskClient, path: str, data: dict[str, Any], *,
              form_page: str = "/") -> TestResponse:
    """Submit a form as a browser would: with a CSRF token read from ``form_page``."""
    return client.post(path, data={"csrf_token": csrf_token(client, form_page), **data})


def error_beside(html: str, field: str) -> str:
    """The error text shown beside ``field`` (empty when there is none)."""
    match = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', html, re.S)
    return match.group(1) if match else ""


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def browser_sign_in(page: Page, base: str, member: StaffMember, clock: FakeClock) -> None:
    """Sign in through the form as a person does, with the code their app shows now."""
    clock.advance(seconds=30)  # a fresh TOTP step: a used code is refused
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(member.username)
    page.get_by_label("Password").fill(member.password)
    page.get_by_label("Code from your authenticator app").fill(member.code(clock()))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".signed-in")).to_contain_text(f"Signed in as {member.username}")


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot for the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


@pytest.fixture
def console(page: Page) -> list[str]:
    """Every console message and page error the browser reports."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages


def policy_violations(console: list[str]) -> list[str]:
    """Console messages about the Content Security Policy (there must be none)."""
    return [m for m in console if "Content Security Policy" in m or "pageerror" in m]
