"""In headless Chromium, at a desktop (1366 px) and a phone (390 px) width: a person's page as
the hub for everything about them, and a consent withdrawal that says what will be lost before
it happens. Saves docs/screenshots/person-hub*.png and withdraw-consent*.png for the README."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.models import Customer, FingerLabel, Person, RequestKind
from accessd.rights.requests import record_request
from tests.privacy.seed import enrol
from tests.web.conftest import FakeClock, StaffMember
from tests.web.pages_fixtures import (
    Site,
    browser_sign_in,
    console,
    policy_violations,
    screenshot,
    site,
)

__all__ = ["console", "site"]

pytestmark = pytest.mark.browser

WIDTHS = {1366: "", 390: "-phone"}  # viewport width: screenshot suffix


@pytest.fixture
def alice(sessions: sessionmaker[Session], keys: FileKeyProvider, site: Site,
          clock: FakeClock) -> str:
    """Alice with two fingers and an open access request; returns her page's path."""
    with sessions.begin() as db:
        acme = db.get_one(Customer, site.customer_id)
        person = db.get_one(Person, site.alice_id)
        for label in (FingerLabel.RIGHT_INDEX, FingerLabel.LEFT_THUMB):
            _, finger = enrol(db, keys, acme, person.name, label=label, person=person)
            finger.enrolled_at = clock()
        record_request(db, RequestKind.ACCESS, clock().date(), requester_name="Alice Jansen",
                       person=person)
    return f"/customers/persons/{site.alice_public_id}"


def _fits(page: Page, width: int) -> None:
    """Nothing pushes the page wider than the screen (a phone must not scroll sideways)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_person_page_holds_everything_about_the_person(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, alice: str,
    console: list[str], width: int,
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    browser_sign_in(page, live_server, admin, clock)
    page.goto(f"{live_server}{alice}")
    expect(page.get_by_role("heading", name="Alice Jansen", exact=True)).to_be_visible()
    for heading in ("Fingers", "PIN", "Restriction", "Consent", "Privacy",
                    "Open requests about Alice Jansen"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    fingers = page.locator(".finger-list li")
    expect(fingers).to_have_count(2)
    expect(fingers.first).to_contain_text("Left thumb")
    expect(page.get_by_label("Way in from now on")).to_have_value("finger_or_pin")
    expect(page.get_by_role("link", name="Withdraw consent…")).to_be_visible()
    expect(page.get_by_role("link", name="Erase Alice Jansen…")).to_be_visible()
    expect(page.locator(".hub-requests")).to_contain_text("Access")
    _fits(page, width)
    screenshot(page, f"person-hub{WIDTHS[width]}.png")
    assert policy_violations(console) == []


@pytest.mark.parametrize("width", list(WIDTHS))
def test_withdrawing_consent_shows_what_is_lost_then_the_button_is_gone(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, alice: str,
    console: list[str], width: int,
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    browser_sign_in(page, live_server, admin, clock)
    page.goto(f"{live_server}{alice}")
    page.get_by_role("link", name="Withdraw consent…").click()
    lost = page.get_by_role("region", name="This cannot be undone")
    expect(lost).to_contain_text(
        "2 fingerprint templates will be deleted from the database and the sensor of 1 door")
    expect(lost).to_contain_text("way in from then on: none")
    _fits(page, width)
    screenshot(page, f"withdraw-consent{WIDTHS[width]}.png")

    page.get_by_role("button", name="Withdraw consent and delete 2 templates").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Consent withdrawn: 2 fingerprint template(s) deleted")
    expect(page.locator(".consent-state")).to_contain_text(
        f"consent withdrawn on {clock().date().isoformat()}")
    expect(page.get_by_role("link", name="Withdraw consent…")).to_have_count(0)
    expect(page.locator(".finger-list")).to_have_count(0)
    _fits(page, width)
    assert policy_violations(console) == []
