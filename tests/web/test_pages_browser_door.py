"""The panel and a door together, in headless Chromium: the door's daemon runs in-process
against the hardware simulator (as in tests/daemon), the panel shares its database.

Staff enrol a person (recording consent) while the simulator plays the finger whenever the
page asks for it; then the enrolled finger opens the door and the dashboard shows the event
by itself, without a reload.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.models import Consent, Credential, Person
from tests.daemon.conftest import Door, People, door, people
from tests.web.conftest import FakeClock, StaffMember
from tests.web.live_door import app_config, clock, db_url, keys
from tests.web.pages_fixtures import browser_sign_in, console, policy_violations, screenshot

__all__ = ["app_config", "clock", "console", "db_url", "door", "keys", "people"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FINGER = "carla-right-index"


@pytest.fixture
def running(door: Door, people: People) -> Door:
    """The daemon, connected to the simulated sensor and door board."""
    door.start()
    return door


def _carla(sessions: sessionmaker[Session], people: People) -> str:
    with sessions.begin() as db:
        carla = Person(customer_id=people.acme, name="Carla Smit", credential=Credential.FINGER)
        db.add(carla)
        db.flush()
        return str(carla.public_id)


def _play_the_finger(page: Page, door: Door, timeout: float = 60) -> None:
    """Do what the page asks at the reader until it reports the end."""
    result = page.locator("#enrol-result")
    deadline = time.monotonic() + timeout
    while not result.is_visible():
        assert time.monotonic() < deadline, "the enrolment did not finish"
        asked = page.locator("#enrol-progress").text_content() or ""
        if asked.startswith("place") and door.rig.sensor.finger is None:
            door.rig.sensor.place(FINGER)
        elif asked == "lift" and door.rig.sensor.finger is not None:
            door.rig.sensor.lift()
        time.sleep(0.05)


def test_enrol_with_consent_while_the_simulator_supplies_the_finger_then_see_the_door_open(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, running: Door,
    people: People, sessions: sessionmaker[Session], console: list[str],
) -> None:
    public_id = _carla(sessions, people)
    page.set_viewport_size({"width": 1000, "height": 720})
    browser_sign_in(page, live_server, admin, clock)

    page.goto(f"{live_server}/customers/persons/{public_id}")
    page.get_by_role("link", name="Enrol a finger").click()
    expect(page.get_by_role("group", name="Consent")).to_contain_text("version 1")
    page.get_by_label("Finger", exact=True).select_option("right_index")
    page.get_by_role("button", name="Start enrolment").click()
    expect(page.get_by_text("Confirm that the person agreed")).to_be_visible()
    page.get_by_label("The person read the consent text and agreed").check()
    page.get_by_role("button", name="Start enrolment").click()

    expect(page.locator("#enrol-progress")).to_have_text("place finger", timeout=15_000)
    screenshot(page, "enrolment.png")
    _play_the_finger(page, running)
    expect(page.locator("#enrol-result")).to_contain_text(
        "Enrolled: the finger is stored on this door's sensor")
    with sessions() as db:
        consent = db.scalars(select(Consent).join(Person).where(
            Person.name == "Carla Smit")).one()
        assert (consent.text_version, consent.witnessed_by) == ("1", admin.username)

    # The dashboard, open and untouched, shows the door opening for Carla by itself.
    page.goto(f"{live_server}/")
    expect(page.locator("#door-cards")).to_contain_text("online")
    page.evaluate("window.notReloaded = true")
    before = running.last_event_id()
    running.present(FINGER)
    running.wait_event("granted", after=before)
    running.lift()
    newest = page.locator("#event-rows tr").first
    expect(newest).to_contain_text("Carla Smit", timeout=10_000)
    expect(newest).to_contain_text("granted")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#dashboard-live")).to_contain_text("live")
    screenshot(page, "dashboard.png")
    assert policy_violations(console) == []


def test_a_failed_enrolment_shows_the_daemons_reason(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, running: Door,
    people: People, sessions: sessionmaker[Session],
) -> None:
    running.enrol(people.alice, "alice-right-index")  # Alice's finger is on the sensor now
    page.set_viewport_size({"width": 1000, "height": 720})
    browser_sign_in(page, live_server, admin, clock)
    with sessions() as db:
        bob = db.get_one(Person, people.bob).public_id
    page.goto(f"{live_server}/enrolment/{bob}")
    page.get_by_role("button", name="Start enrolment").click()
    expect(page.locator("#enrol-progress")).to_have_text("place finger", timeout=15_000)
    running.rig.sensor.place("alice-right-index")  # Bob offers Alice's finger
    result = page.locator("#enrol-result")
    deadline = time.monotonic() + 30
    while not result.is_visible():
        assert time.monotonic() < deadline
        if (page.locator("#enrol-progress").text_content() or "") == "lift":
            running.rig.sensor.lift()
        time.sleep(0.05)
    expect(result).to_contain_text("Enrolment failed: this finger already matches someone")
    with sessions() as db:
        assert db.get_one(Person, people.bob).fingers == []
