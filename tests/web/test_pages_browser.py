"""The pages in headless Chromium without a door: customers, ending a contract with its purge
preview, and the history with its chart and CSV export. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tests.web.conftest import FakeClock, StaffMember
from tests.web.pages_fixtures import (
    Site,
    add_events,
    browser_sign_in,
    console,
    policy_violations,
    screenshot,
    site,
)

__all__ = ["console", "site"]

pytestmark = pytest.mark.browser


def test_end_a_contract_after_seeing_what_will_be_purged_and_when(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, site: Site,
    console: list[str],
) -> None:
    page.set_viewport_size({"width": 1100, "height": 700})
    browser_sign_in(page, live_server, admin, clock)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()
    expect(page.get_by_role("row", name="Acme Hosting B.V.")).to_contain_text("201 days left")
    screenshot(page, "customers.png")

    page.get_by_role("link", name="Acme Hosting B.V.").click()
    page.get_by_role("link", name="End contract").click()
    page.get_by_label("Last day of service").fill("2026-03-31")
    page.get_by_role("button", name="Show what will be purged").click()
    preview = page.get_by_role("region", name="What will be purged, and when")
    expect(preview).to_contain_text("on 2026-04-01 at 00:00 site time")
    expect(preview).to_contain_text("2 persons")
    expect(preview).to_contain_text("1 consent record")
    screenshot(page, "end-contract.png")

    page.get_by_role("button", name="End the contract on 2026-03-31").click()
    expect(page.get_by_role("status")).to_contain_text("its data is purged on 2026-04-01")
    assert policy_violations(console) == []


def test_filter_the_history_see_the_chart_and_export_csv(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, site: Site,
    sessions: sessionmaker[Session], console: list[str],
) -> None:
    for days in range(12):
        add_events(sessions, site, clock() - dt.timedelta(days=days, hours=2), 3 + days % 4)
    page.set_viewport_size({"width": 1100, "height": 800})
    browser_sign_in(page, live_server, admin, clock)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page.get_by_role("img", name="Granted and refused accesses per day")).to_be_visible()
    page.get_by_label("Result").select_option(label="Granted")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table.events tbody tr").first).to_contain_text("granted")
    screenshot(page, "history.png")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    path = download_info.value.path()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {row["kind"] for row in rows} == {"granted"}
    assert {row["person"] for row in rows} == {"Alice Jansen"}
    assert policy_violations(console) == []


def test_the_panel_works_on_a_phone(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, site: Site,
) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    browser_sign_in(page, live_server, admin, clock)
    page.goto(f"{live_server}/customers/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 380  # wide tables scroll inside their box, not the page


def test_the_dashboard_follows_a_resync_with_a_live_progress_bar(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, site: Site,
    sessions: sessionmaker[Session], console: list[str],
) -> None:
    from sqlalchemy import select, update

    from accessd.door import command_table
    from accessd.models import CommandKind, CommandState, DeviceCommand

    browser_sign_in(page, live_server, admin, clock)
    with sessions.begin() as db:  # what an erasure asks of every door
        command_table.request_resync_everywhere(db, created_by=admin.username,
                                                why="person erased")
        command_id = db.scalars(select(DeviceCommand.id).where(
            DeviceCommand.kind == CommandKind.RESYNC)).one()
    page.goto(f"{live_server}/")
    row = page.locator("#work-rows tr").first
    expect(row).to_contain_text("sensor resync (person erased)")
    expect(row).to_contain_text("pending")
    page.evaluate("window.notReloaded = true")
    with sessions.begin() as db:
        db.execute(update(DeviceCommand).values(state=CommandState.RUNNING))
    report = command_table.CommandProgress(sessions, command_id, "resync", "templates")
    report(300, 1000)  # the daemon's writes, as it uploads
    bar = row.locator("progress")
    expect(bar).to_have_attribute("max", "1000", timeout=10_000)
    expect(bar).to_have_js_property("value", 300)
    expect(row).to_contain_text("resync: 300/1000 templates")
    report(1000, 1000)
    command_table.finish(sessions, command_id, ok=True,
                         message="sensor in step: 1000 uploaded, 0 wiped, 0 kept")
    expect(row).to_contain_text("sensor in step: 1000 uploaded", timeout=10_000)
    expect(row).to_contain_text("done")
    assert page.evaluate("window.notReloaded") is True
    assert policy_violations(console) == []
