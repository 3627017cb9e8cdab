"""The dashboard tells the truth about each device of a door (issue 12, findings 1 and 2), in
headless Chromium at 1366 px and at 390 px, with the door's daemon running in-process against
the hardware simulator: unplug the sensor, unplug the door board, stop the daemon, force the
door (a full database: ``test_dashboard_database_browser``), and each time the card of that
door says which device is down, when it last answered, what happened in plain words and what
to do; the others keep their state.
``accessd status`` says the same about the board outage. Screenshots for the README go to
docs/screenshots/dashboard-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from accessd.cli.main import main as accessd_main
from tests.daemon.conftest import Door, door
from tests.web.conftest import FakeClock, StaffMember
from tests.web.live_door import app_config, clock, db_url, keys
from tests.web.pages_fixtures import browser_sign_in, console, policy_violations, screenshot

__all__ = ["app_config", "clock", "console", "db_url", "door", "keys"]  # fixtures used by name

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
LABELLED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST)")
LIVE = 10_000  # ms: the daemon writes its status every second, the page polls every 2 s


@pytest.fixture
def running(door: Door) -> Iterator[Door]:
    door.start()
    yield door
    door.stop()


@pytest.fixture
def dashboard(page: Page, live_server: str, admin: StaffMember, clock: FakeClock,
              running: Door) -> Page:
    """The dashboard, signed in, with every device of the door working."""
    page.set_viewport_size(WIDE)
    browser_sign_in(page, live_server, admin, clock)
    page.goto(f"{live_server}/")
    for key in ("daemon", "sensor", "board", "database"):
        expect(device(page, key).locator(".badge")).to_have_text(
            "running" if key == "daemon" else "online", timeout=LIVE)
    return page


def device(page: Page, key: str) -> Locator:
    return page.locator(f'#door-cards [data-device="{key}"]')


def expect_device(page: Page, key: str, state: str, *words: str) -> None:
    shown = device(page, key)
    expect(shown.locator(".badge")).to_have_text(state, timeout=LIVE)
    for text in words:
        expect(shown).to_contain_text(text)
    expect(shown.locator(".last-contact")).to_have_text(re.compile(
        r"last contact (never|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST))"))


def on_a_phone(page: Page, name: str) -> None:
    """At 390 px the card's words stay on the screen: nothing wider than the viewport, the
    fault and what to do inside it; then the screenshot."""
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for text in page.locator("#door-cards .device-problem, #door-cards .device-action, "
                             "#door-cards .alarm").all():
        box = text.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    expect(page.locator("#alarm-indicator")).to_be_in_viewport()
    screenshot(page, f"{name}-phone.png")
    page.set_viewport_size(WIDE)


def cli_status(door: Door, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert accessd_main(["--config", str(door.config), "status"]) == 0
    return capsys.readouterr().out


def test_an_unplugged_door_board_is_said_so_and_the_cli_agrees(
    dashboard: Page, running: Door, capsys: pytest.CaptureFixture[str], console: list[str],
) -> None:
    running.rig.door.port.unplug()
    expect_device(dashboard, "board", "offline", "The door board is not connected",
                  "What to do: Check the board's cable")
    expect_device(dashboard, "daemon", "running")
    expect_device(dashboard, "sensor", "online")
    expect_device(dashboard, "database", "online")
    expect(dashboard.locator(".door-lock")).to_contain_text("Lock unknown")
    card = dashboard.locator("#door-cards").inner_text()
    assert "Errno" not in card and "accessd doctor" not in card and "/dev/" not in card
    screenshot(dashboard, "dashboard-board-unplugged.png")

    shown = cli_status(running, capsys)
    assert "door main: OFFLINE, daemon running" in shown, shown
    assert re.search(r"\n  door daemon: running, last contact " + LABELLED.pattern, shown)
    assert re.search(r"\n  fingerprint reader: online, last contact " + LABELLED.pattern, shown)
    assert re.search(r"\n  door board: OFFLINE, last contact " + LABELLED.pattern
                     + r"\. The door board is not connected", shown), shown
    assert "What to do: Check the board's cable" in shown
    on_a_phone(dashboard, "dashboard-board-unplugged")

    running.rig.door.port.replug()
    expect_device(dashboard, "board", "online")
    expect(dashboard.locator(".door-lock")).to_contain_text("Lock locked")
    assert policy_violations(console) == []


def test_an_unplugged_sensor_is_said_so_while_the_board_works(
    dashboard: Page, running: Door,
) -> None:
    running.rig.sensor.port.unplug()
    expect_device(dashboard, "sensor", "offline", "The fingerprint reader is not connected",
                  "nobody can open the door with a finger", "What to do: Check the reader's")
    expect_device(dashboard, "daemon", "running")
    expect_device(dashboard, "board", "online")
    expect(dashboard.locator(".door-lock")).to_contain_text("Lock locked")
    screenshot(dashboard, "dashboard-sensor-unplugged.png")
    on_a_phone(dashboard, "dashboard-sensor-unplugged")
    running.rig.sensor.port.replug()
    expect_device(dashboard, "sensor", "online")


def test_a_stopped_daemon_is_said_so_and_its_devices_are_unknown(
    dashboard: Page, running: Door, clock: FakeClock,
) -> None:
    running.stop()
    clock.advance(minutes=3)  # the panel's clock: the daemon has been silent for 3 minutes
    expect_device(dashboard, "daemon", "not running",
                  "The door's daemon has not reported for 3 minutes",
                  "What to do: Check that the door's computer has power")
    for key in ("sensor", "board", "database"):
        expect_device(dashboard, key, "unknown")
    expect(dashboard.locator(".door-lock")).to_contain_text("Lock unknown")
    screenshot(dashboard, "dashboard-daemon-stopped.png")
    on_a_phone(dashboard, "dashboard-daemon-stopped")


def test_a_forced_door_shows_its_alarm_on_the_card_and_in_the_header(
    dashboard: Page, running: Door, live_server: str,
) -> None:
    running.rig.door.force_door()
    alarm = dashboard.locator("#door-cards .alarm")
    expect(alarm).to_contain_text("door forced open, raised", timeout=LIVE)
    expect(alarm).to_contain_text("the door was opened while locked")
    expect(dashboard.locator("#alarm-count")).to_have_text("1")
    screenshot(dashboard, "dashboard-door-forced.png")
    on_a_phone(dashboard, "dashboard-door-forced")
    dashboard.set_viewport_size(PHONE)
    dashboard.locator("#alarm-indicator").click()
    expect(dashboard.get_by_role("heading", name="Open alarms")).to_be_visible()
    expect(dashboard.locator(".alarm-list")).to_contain_text("door forced open")
    assert LABELLED.search(dashboard.locator(".alarm-list").inner_text())


def test_the_live_dashboard_speaks_dutch_when_dutch_is_chosen(
    dashboard: Page, running: Door,
) -> None:
    """The script rebuilds the cards with the page's words (its ``data-words``), not English."""
    dashboard.locator(".language-switch").get_by_role("button", name="Nederlands").click()
    expect(dashboard.get_by_role("heading", name="Laatste gebeurtenissen")).to_be_visible()
    expect(dashboard.locator("#dashboard-live")).to_have_text(" (live, elke 2 s)", timeout=LIVE)
    running.rig.door.force_door()
    card = dashboard.locator("#door-cards .door-card").first
    expect(card.locator(".alarm")).to_contain_text("deur opengebroken, gemeld", timeout=LIVE)
    expect(card.locator(".door-lock")).to_contain_text("Slot")
    expect(card.locator(".door-actions")).to_have_text("Ontgrendelen… Alarmen opheffen…")
    expect(card.locator(".last-contact").first).to_contain_text("laatste contact")
    expect(dashboard.locator("#alarm-indicator")).to_have_attribute("aria-label", "1 open alarm")
    text = card.inner_text()
    for english in ("raised", "last contact", "Unlock", "Clear alarms", "Lock "):
        assert english not in text, english
