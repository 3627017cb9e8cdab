"""Sign-in throttling a stranger cannot turn into a denial of service (issue 11, 9).

Before: 10 failures from anyone locked an account for everyone, each further failure doubled
the lock up to 24 hours, nothing limited a source address, and no admin could unlock. Now
(``accessd.staff.throttle``): an address is paused after 30 failures, a name *from an address*
after 10, and a name everywhere only after 20 checked failures in 15 minutes, for at most 15
minutes after the latest checked one; an admin ends every pause of a name at once.

The time argon2 takes on refused attempts is not what is under test: ``burn_time`` is made
free here, so a thousand attempts take a second rather than thirty.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import accessd.staff.login
from accessd.crypto import FileKeyProvider
from accessd.db import session_scope
from accessd.models import AuditOutcome, AuditRecord, LoginAttempt, LoginOutcome, StaffRole
from accessd.staff import authenticate, get_staff_user, locked_until, name_locks, unlock_name
from accessd.staff.policy import (
    ACCOUNT_THRESHOLD,
    ACCOUNT_WINDOW,
    ADDRESS_THRESHOLD,
    ADDRESS_WINDOW,
    LOCKOUT_THRESHOLD,
)
from tests.cli.test_staff import Cli
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in

STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture(autouse=True)
def _free_burn_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accessd.staff.login, "burn_time", lambda _password: None)


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with session_scope(sessions) as session:
        yield session


def _fail(db: Session, keys: FileKeyProvider, clock: FakeClock, address: str,
          name: str = "ada") -> LoginOutcome:
    result = authenticate(db, name, "not the password", "000000", provider=keys,
                          source_address=address, now=clock())
    db.flush()
    return result.outcome


def _owner_signs_in(db: Session, keys: FileKeyProvider, clock: FakeClock, owner: StaffMember,
                    address: str = OWNER) -> LoginOutcome:
    clock.advance(seconds=30)  # a fresh code
    return authenticate(db, owner.username, owner.password, owner.code(clock()), provider=keys,
                        source_address=address, now=clock()).outcome


def test_a_thousand_failures_from_one_address_never_keep_the_owner_out_elsewhere(
        db: Session, keys: FileKeyProvider, clock: FakeClock, admin: StaffMember) -> None:
    outcomes = []
    for n in range(1000):
        clock.advance(seconds=1)  # a thousand in 17 minutes, spraying other names too
        outcomes.append(_fail(db, keys, clock, STRANGER, name=("ada", "bob", "ghost")[n % 3]))
        if n % 100 == 99:  # and at any moment of the attack, the owner gets in from elsewhere
            assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.SUCCESS, n
    checked = [o for o in outcomes if o is LoginOutcome.BAD_PASSWORD or
               o is LoginOutcome.UNKNOWN_USER]
    assert len(checked) <= ADDRESS_THRESHOLD * 2  # the address is paused, window after window
    assert outcomes[-1] is LoginOutcome.THROTTLED
    assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.SUCCESS


def test_one_address_alone_never_pauses_a_name_everywhere(
        db: Session, keys: FileKeyProvider, clock: FakeClock, admin: StaffMember) -> None:
    for _ in range(200):  # one name only, slowly enough to stay under the address pause
        clock.advance(minutes=1)
        _fail(db, keys, clock, STRANGER)
    assert locked_until(db, "ada", now=clock(), source_address=STRANGER) is not None
    assert locked_until(db, "ada", now=clock(), source_address=OWNER) is None
    assert name_locks(db, "ada", now=clock()).everywhere_until is None
    assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.SUCCESS


def test_many_addresses_pause_a_name_for_at_most_fifteen_minutes_after_the_last_checked_failure(
        db: Session, keys: FileKeyProvider, clock: FakeClock, admin: StaffMember) -> None:
    for n in range(ACCOUNT_THRESHOLD):  # a botnet: each address guesses once
        clock.advance(seconds=10)
        assert _fail(db, keys, clock, f"192.0.2.{n}") is LoginOutcome.BAD_PASSWORD
    last_checked = clock()
    assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.LOCKED_OUT
    for n in range(100):  # more addresses during the pause: refused, and no longer pause
        clock.advance(seconds=5)
        assert _fail(db, keys, clock, f"198.18.0.{n}") is LoginOutcome.LOCKED_OUT
    until = locked_until(db, "ada", now=clock(), source_address=OWNER)
    assert until is not None and until <= last_checked + ACCOUNT_WINDOW
    clock.now = last_checked + ACCOUNT_WINDOW
    assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.SUCCESS


def test_the_pause_everywhere_never_escalates(
        db: Session, keys: FileKeyProvider, clock: FakeClock, admin: StaffMember) -> None:
    for round_ in range(3):
        for n in range(ACCOUNT_THRESHOLD):
            clock.advance(seconds=1)
            _fail(db, keys, clock, f"10.{round_}.0.{n}")
        pause = name_locks(db, "ada", now=clock()).everywhere_until
        assert pause is not None
        assert pause - clock() <= ACCOUNT_WINDOW  # the same 15 minutes every round
        clock.now = pause
    assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.SUCCESS


def test_an_address_that_sprays_names_is_paused_for_all_of_them_until_quiet(
        db: Session, keys: FileKeyProvider, clock: FakeClock, admin: StaffMember) -> None:
    for n in range(ADDRESS_THRESHOLD):
        clock.advance(seconds=1)
        assert _fail(db, keys, clock, STRANGER, name=f"user{n}") is LoginOutcome.UNKNOWN_USER
    assert _fail(db, keys, clock, STRANGER, name="someone-else") is LoginOutcome.THROTTLED
    assert _owner_signs_in(db, keys, clock, admin, address=STRANGER) is LoginOutcome.THROTTLED
    assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.SUCCESS  # another address
    clock.advance(seconds=ADDRESS_WINDOW.total_seconds())
    assert _owner_signs_in(db, keys, clock, admin, address=STRANGER) is LoginOutcome.SUCCESS


def test_an_unlock_ends_every_pause_of_the_name_and_counting_starts_again(
        db: Session, keys: FileKeyProvider, clock: FakeClock, admin: StaffMember) -> None:
    for n in range(ACCOUNT_THRESHOLD):
        clock.advance(seconds=1)
        _fail(db, keys, clock, OWNER if n < LOCKOUT_THRESHOLD else f"192.0.2.{n}")
    locks = name_locks(db, "ada", now=clock())
    assert locks.everywhere_until is not None and OWNER in locks.addresses
    assert "for everyone" in locks.describe() and "1 address" in locks.describe()
    was = unlock_name(db, "ada", source_address="local", now=clock())
    assert was == locks
    assert not name_locks(db, "ada", now=clock()).locked
    assert _owner_signs_in(db, keys, clock, admin) is LoginOutcome.SUCCESS
    unlocked = db.scalar(select(LoginAttempt).where(
        LoginAttempt.outcome == LoginOutcome.UNLOCKED))
    assert unlocked is not None and unlocked.username == "ada"


def test_the_pair_lock_still_doubles_but_only_for_its_address(
        db: Session, keys: FileKeyProvider, clock: FakeClock, admin: StaffMember) -> None:
    for _ in range(LOCKOUT_THRESHOLD):
        clock.advance(seconds=1)
        _fail(db, keys, clock, STRANGER)
    first = locked_until(db, "ada", now=clock(), source_address=STRANGER)
    assert first == clock() + dt.timedelta(minutes=15)
    clock.now = first
    _fail(db, keys, clock, STRANGER)
    assert locked_until(db, "ada", now=clock(), source_address=STRANGER) == \
        clock() + dt.timedelta(minutes=30)
    assert locked_until(db, "ada", now=clock(), source_address=OWNER) is None


# --- through the panel -------------------------------------------------------------------------


def _client_at(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_an_attack_through_the_panel_leaves_the_owner_a_way_in(
        app: Flask, admin: StaffMember, clock: FakeClock) -> None:
    stranger = _client_at(app, STRANGER)
    for _ in range(ADDRESS_THRESHOLD + 10):
        clock.advance(seconds=2)
        page = sign_in(stranger, admin, clock, password="guess guess guess", next_step=False)
        assert page.status_code == 200
    assert sign_in(stranger, admin, clock).status_code == 200  # the right password: refused
    assert sign_in(_client_at(app, OWNER), admin, clock).status_code == 302


@pytest.fixture
def bob(make_staff: object, app: Flask, clock: FakeClock) -> StaffMember:
    member: StaffMember = make_staff("bob", StaffRole.OPERATOR)  # type: ignore[operator]
    client = _client_at(app, OWNER)
    for _ in range(LOCKOUT_THRESHOLD):
        clock.advance(seconds=2)
        sign_in(client, member, clock, password="wrong wrong wrong", next_step=False)
    assert sign_in(client, member, clock).status_code == 200  # paused from his own address
    return member


def test_an_admin_unlocks_an_account_from_the_staff_page_and_it_is_audited(
        signed_in: FlaskClient, app: Flask, bob: StaffMember, clock: FakeClock,
        sessions: sessionmaker[Session]) -> None:
    page = signed_in.get("/staff/").get_data(as_text=True)
    assert "sign-in paused after failed sign-ins" in page and "Unlock sign-in" in page
    with session_scope(sessions) as db:
        bob_id = get_staff_user(db, "bob").public_id
    action = f"/staff/{bob_id}/unlock"
    assert action in page
    response = signed_in.post(action, data={"csrf_token": csrf_token(signed_in, "/staff/")},
                              follow_redirects=True)
    assert "bob can sign in again" in response.get_data(as_text=True)
    assert "Unlock sign-in" not in signed_in.get("/staff/").get_data(as_text=True)
    assert sign_in(_client_at(app, OWNER), bob, clock).status_code == 302
    with session_scope(sessions) as db:
        record = db.scalars(select(AuditRecord).where(AuditRecord.action == "staff.unlock")).one()
        assert (record.actor, record.target, record.outcome) == (
            "ada", f"staff:{bob_id}", AuditOutcome.SUCCESS)
        assert record.details is not None and record.details["was_locked"] is True
        assert record.details["paused_from"] == [OWNER]


def _state_of(page: str, username: str) -> str:
    row = re.search(rf"<th scope=\"row\">{username}.*?</tr>", page, re.S)
    assert row is not None
    state = re.search(r'<span class="state state-[a-z]+">([^<]+)</span>', row.group(0))
    assert state is not None
    return state.group(1)


def test_a_locked_account_reads_locked_not_active_until_an_admin_unlocks_it(
        signed_in: FlaskClient, bob: StaffMember, sessions: sessionmaker[Session]) -> None:
    page = signed_in.get("/staff/").get_data(as_text=True)
    assert _state_of(page, "bob") == "locked" and _state_of(page, "ada") == "active"
    assert re.search(r"until \d{4}-\d\d-\d\d \d\d:\d\d CET", page), "site time, zone named"
    with session_scope(sessions) as db:
        action = f"/staff/{get_staff_user(db, 'bob').public_id}/unlock"
    signed_in.post(action, data={"csrf_token": csrf_token(signed_in, "/staff/")})
    assert _state_of(signed_in.get("/staff/").get_data(as_text=True), "bob") == "active"


def test_only_admins_unlock_and_only_with_a_csrf_token(
        app: Flask, signed_in: FlaskClient, bob: StaffMember, make_staff: object,
        clock: FakeClock, sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as db:
        action = f"/staff/{get_staff_user(db, 'bob').public_id}/unlock"
    assert signed_in.post(action).status_code == 400  # no token
    operator: StaffMember = make_staff("olga", StaffRole.OPERATOR)  # type: ignore[operator]
    client = app.test_client()
    assert sign_in(client, operator, clock).status_code == 302
    refused = client.post(action, data={"csrf_token": csrf_token(client, "/")})
    assert refused.status_code == 403
    with session_scope(sessions) as db:
        assert name_locks(db, "bob", now=clock()).locked


def test_accessd_user_unlock_ends_the_pause_and_is_audited(
        sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock,
        bob: StaffMember, app: Flask) -> None:
    cli = Cli(sessions, keys, clock)
    assert re.search(r"bob\s+operator\s+locked", cli("user", "list")[1])
    status, out = cli("user", "unlock", "Bob")
    assert status == 0
    assert re.search(r"bob\s+operator\s+active", cli("user", "list")[1])
    assert re.search(r"Unlocked bob: the pause from 1 address \(the last until .* UTC\) ended",
                     out), out
    assert sign_in(_client_at(app, OWNER), bob, clock).status_code == 302
    status, out = cli("user", "unlock", "bob")
    assert status == 0 and "bob was not locked" in out
    with session_scope(sessions) as db:
        records = list(db.scalars(select(AuditRecord).where(
            AuditRecord.action == "staff.unlock").order_by(AuditRecord.id)))
        assert [(r.actor, r.source_address) for r in records] == [("cli:tester", "local")] * 2
        assert records[0].details is not None and records[0].details["paused_from"] == [OWNER]
        assert records[1].details is not None and records[1].details["was_locked"] is False


def test_accessd_user_unlock_of_an_unknown_account_says_so(
        sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock) -> None:
    status, out = Cli(sessions, keys, clock)("user", "unlock", "nobody")
    assert status == 1 and "nobody" in out


def test_the_login_history_shows_the_unlock(
        signed_in: FlaskClient, bob: StaffMember, sessions: sessionmaker[Session],
        clock: FakeClock, keys: FileKeyProvider) -> None:
    Cli(sessions, keys, clock)("user", "unlock", "bob")
    page = signed_in.get("/audit/logins?outcome=unlocked").get_data(as_text=True)
    assert "bob" in page and "unlocked" in page


@pytest.mark.browser
@pytest.mark.parametrize("width", [1366, 390])
def test_an_admin_sees_the_lock_and_unlocks_it_in_the_browser(
        page: Page, live_server: str, admin: StaffMember, bob: StaffMember, clock: FakeClock,
        width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill(admin.username)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_label("Code from your authenticator app").fill(admin.code(clock()))
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server}/staff/")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="bob"))
    expect(row.locator(".state")).to_have_text("locked")
    expect(row).to_contain_text("sign-in paused after failed sign-ins from 1 address, until")
    unlock = row.get_by_role("button", name="Unlock sign-in")
    unlock.scroll_into_view_if_needed()
    expect(unlock).to_be_visible()
    unlock.click()
    expect(page.get_by_role("status")).to_contain_text("bob can sign in again")
    expect(row.locator(".state")).to_have_text("active")
    expect(row.get_by_role("button", name="Unlock sign-in")).to_have_count(0)
