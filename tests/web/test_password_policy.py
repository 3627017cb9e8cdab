"""New passwords are checked against a list of common and breached passwords that ships with
the product (issue 12, finding 5; ASVS 5.0 V6.2): offline, with zxcvbn's lists and estimate,
in every place a password is set (the panel's change of password, ``accessd user add`` and
``reset-password`` with ``--password-stdin``), refused beside the field with the reason; a
strength hint shows while typing (a static script: the CSP stays).
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, expect
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from accessd.errors import PasswordRejectedError
from accessd.staff.passwords import check_new_password, judge_password
from accessd.staff.policy import PASSWORD_MIN_LENGTH
from tests.cli.test_staff import Cli
from tests.web.conftest import FakeClock, StaffMember, csrf_token

# Entries of the shipped list long enough to pass the length rule: the list must refuse them.
LONG_LISTED = [p for p in FREQUENCY_LISTS["passwords"] if len(p) >= PASSWORD_MIN_LENGTH]


def test_the_shipped_list_has_long_entries_to_check() -> None:
    assert len(LONG_LISTED) > 200


@pytest.mark.parametrize("password", LONG_LISTED)
def test_every_listed_password_is_refused(password: str) -> None:
    verdict = judge_password(password, username="kim")
    assert not verdict.acceptable


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password1234", "list of common and breached passwords"),
        ("Password1234", "list of common and breached passwords"),
        ("short", f"at least {PASSWORD_MIN_LENGTH} characters"),
        ("eleven char", f"at least {PASSWORD_MIN_LENGTH} characters"),
        ("kimberly.devries", "must not be the user name"),
        ("aaaaaaaaaaaaaaaa", "easy to guess"),
        ("qwertyuiopasdf", "easy to guess"),
        ("x" * 257, "at most 256 characters"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    with pytest.raises(PasswordRejectedError, match=re.escape(reason)):
        check_new_password(password, username="kimberly.devries")


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "kim chose this one", "k7Hqm-Tz3Pa-aBcDe-XYZ23"]
)
def test_a_few_unrelated_words_or_a_generated_password_pass(password: str) -> None:
    check_new_password(password, username="kim")


def _change(client: object, current: str, new: str) -> str:
    response = client.post(  # type: ignore[attr-defined]
        "/account/password",
        data={"csrf_token": csrf_token(client, "/account/password"),  # type: ignore[arg-type]
              "current_password": current, "new_password": new, "confirm": new},
    )  # fmt: skip
    assert response.status_code == 200, "the form comes back with the refusal"
    page: str = response.get_data(as_text=True)
    return page


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("password1234", "This password is on the list of common and breached passwords"),
        ("short one", f"The password must have at least {PASSWORD_MIN_LENGTH} characters"),
    ],
)
def test_the_panel_refuses_a_weak_new_password_beside_the_field(
    signed_in: object, admin: StaffMember, new: str, message: str
) -> None:
    page = _change(signed_in, admin.password, new)
    error = re.search(r'<p class="error" id="new_password-error">([^<]+)</p>', page)
    assert error is not None and message in error.group(1)


@pytest.mark.parametrize("command", ["add", "reset-password"])
def test_the_cli_refuses_a_listed_password(cli_runner: Cli, command: str) -> None:
    if command == "reset-password":
        assert cli_runner("user", "add", "kim", "--role", "operator")[0] == 0
        argv: tuple[str, ...] = ("user", "reset-password", "kim", "--password-stdin")
    else:
        argv = ("user", "add", "kim", "--role", "operator", "--password-stdin")
    status, out = cli_runner(*argv, stdin="password1234\n")
    assert status == 1
    assert "list of common and breached passwords" in out


@pytest.fixture
def cli_runner(sessions: object, keys: object, clock: FakeClock) -> Cli:
    return Cli(sessions, keys, clock)  # type: ignore[arg-type]


@pytest.mark.browser
def test_the_strength_hint_follows_the_typing_within_the_policy(
    page: Page, live_server: str, admin: StaffMember, clock: FakeClock
) -> None:
    messages: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        messages.append(message.text)

    page.on("console", keep)
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill(admin.username)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_label("Code from your authenticator app").fill(admin.code(clock()))
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server}/account/password")
    hint = page.locator("#password-strength")
    new = page.get_by_label("New password", exact=True)
    new.fill("short")
    expect(hint).to_contain_text("Too short")
    new.fill("password1234")
    expect(hint).to_contain_text("Easy to guess")
    new.fill("correct horse battery staple")
    expect(hint).to_have_text("Strong.")
    page.get_by_label("Current password").fill(admin.password)
    new.fill("password1234")
    page.get_by_label("New password again").fill("password1234")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#new_password-error")).to_contain_text(
        "list of common and breached passwords")
    assert [m for m in messages if "Content Security Policy" in m] == []


def test_the_staff_page_offers_the_hint_script_only_as_static_files(
    app: Flask, signed_in: object
) -> None:
    page = signed_in.get("/account/password").get_data(as_text=True)  # type: ignore[attr-defined]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip()
                           for attrs, body in scripts)
