"""In headless Chromium: answer an access request from start to finish.

Sign in with a TOTP code, record an access request for a person, download their export, close
the request with its outcome and see it leave the open list. Saves docs/screenshots/privacy.png
and requests.png for the README.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tests.web.conftest import FakeClock, StaffMember
from tests.web.test_api_v1 import Site, seed_site

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.browser


def test_an_operator_answers_an_access_request(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock,
    sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    site: Site = seed_site(sessions)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text
            else None)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1100, "height": 800})

    clock.advance(seconds=30)
    page.goto(f"{live_server}/privacy/persons/{site.alice}")
    page.get_by_label("User name").fill(admin.username)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_label("Code from your authenticator app").fill(admin.code(clock()))
    page.get_by_role("button", name="Sign in").click()
    # The old address of a person's rights leads to the person's page, the hub.
    expect(page.get_by_role("heading", name="Alice Example", exact=True)).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "privacy.png"), full_page=True)

    page.get_by_role("link", name="Record a request about Alice Example").click()
    page.get_by_label("Kind of request").select_option("access")
    page.get_by_label("Requester").fill("Alice Example")
    page.get_by_label("Contact (optional)").fill("alice@example.com")
    page.get_by_role("button", name="Record the request").click()
    expect(page.get_by_role("status")).to_contain_text("Request recorded; due on 2026-04-02")

    page.get_by_role("link", name="Export, erase or restrict Alice Example").click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the export").click()
    saved = tmp_path / "export.zip"
    download_info.value.save_as(saved)
    assert "persons.json" in zipfile.ZipFile(saved).namelist()

    page.goto(f"{live_server}/privacy/requests")
    open_list = page.locator("table.open-requests")
    expect(open_list).to_contain_text("Alice Example")
    page.screenshot(path=str(SCREENSHOTS / "requests.png"), full_page=True)
    open_list.get_by_role("link", name="access").click()
    page.get_by_role("textbox", name="Outcome").fill("export sent to alice@example.com")
    page.get_by_role("button", name="Close the request").click()

    expect(page.get_by_role("status")).to_contain_text("Request closed.")
    expect(page.get_by_text("No open requests.")).to_be_visible()
    expect(page.locator("table.closed-requests")).to_contain_text(
        "export sent to alice@example.com")
    assert problems == []
