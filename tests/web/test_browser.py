"""The panel in headless Chromium: sign in with a TOTP code, see the dashboard, sign out.

The screenshots land in docs/screenshots/ for the README. Any console message about the
Content Security Policy fails the test: the policy must not break the pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.web.conftest import FakeClock, StaffMember

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture
def console(page: Page) -> list[str]:
    """Every console message and page error the browser reports."""
    messages: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        messages.append(f"{message.type}: {message.text}")

    page.on("console", keep)
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages


def _no_csp_violations(console: list[str]) -> None:
    violations = [m for m in console if "Content Security Policy" in m or "Content-Security" in m]
    assert violations == []


def test_staff_sign_in_with_a_totp_code_see_the_dashboard_and_sign_out(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, console: list[str]
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1000, "height": 640})
    page.goto(f"{live_server}/")
    expect(page).to_have_url(f"{live_server}/login?next=/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "login.png"), full_page=True)

    page.get_by_label("User name").fill(admin.username)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_label("Code from your authenticator app").fill(admin.code(clock()))
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server}/")
    expect(page.locator(".signed-in")).to_contain_text("Signed in as ada")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Staff")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server}/login")
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    page.goto(f"{live_server}/")
    expect(page).to_have_url(f"{live_server}/login?next=/")
    _no_csp_violations(console)


def test_a_wrong_code_shows_the_generic_message_beside_nothing_revealing(
    page: Page, live_server: str, admin: StaffMember, console: list[str]
) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill(admin.username)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    _no_csp_violations(console)


def test_the_second_factor_page_draws_its_qr_code_within_the_policy(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, console: list[str]
) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill(admin.username)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_label("Code from your authenticator app").fill(admin.code(clock()))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Second factor").click()
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] > 100
    page.screenshot(path=str(SCREENSHOTS / "second-factor.png"), full_page=True)
    _no_csp_violations(console)


def test_the_panel_fits_a_phone_screen(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock, console: list[str]
) -> None:
    page.set_viewport_size({"width": 375, "height": 700})
    page.goto(f"{live_server}/login")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    _no_csp_violations(console)
