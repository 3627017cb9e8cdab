"""The audit log and the login history: auditors and admins read them, filtered and paged."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import AuditOutcome, AuditRecord, LoginAttempt, LoginOutcome, StaffRole
from accessd.staff import record_audit
from tests.web.conftest import START, FakeClock, StaffMember, sign_in


@pytest.fixture
def auditor(client: FlaskClient, make_staff: Any, clock: FakeClock) -> FlaskClient:
    """A client signed in as an auditor."""
    member: StaffMember = make_staff("audrey", StaffRole.AUDITOR)
    assert sign_in(client, member, clock).status_code == 302
    return client


def _records(sessions: sessionmaker[Session], n: int, **fields: Any) -> None:
    with session_scope(sessions) as db:
        for i in range(n):
            record_audit(db, actor=fields.get("actor", "oscar"),
                         action=fields.get("action", "person.erase"),
                         outcome=fields.get("outcome", AuditOutcome.SUCCESS),
                         target=f"person:{i}", details={"n": i},
                         source_address="192.0.2.7",
                         at=fields.get("at", START - dt.timedelta(days=3)) + dt.timedelta(
                             seconds=i))


def test_an_auditor_reads_the_audit_log(auditor: FlaskClient,
                                        sessions: sessionmaker[Session]) -> None:
    _records(sessions, 3)
    page = auditor.get("/audit/").get_data(as_text=True)
    assert "person.erase" in page and "192.0.2.7" in page and "oscar" in page


DOOR_MAIN = 'main <span class="hint">(door)</span>'  # the target door:main, in words


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ("who=oscar", "person:1", DOOR_MAIN),
    ("action=door.", DOOR_MAIN, "person:1"),
    ("outcome=denied", DOOR_MAIN, "person:1"),
    ("since=2026-02-25&until=2026-02-26", DOOR_MAIN, "person:1"),
])
def test_the_audit_log_filters(auditor: FlaskClient, sessions: sessionmaker[Session],
                               query: str, shown: str, hidden: str) -> None:
    _records(sessions, 2)
    with session_scope(sessions) as db:
        record_audit(db, actor="token:portal", action="door.remote_unlock",
                     outcome=AuditOutcome.DENIED, target="door:main",
                     at=dt.datetime(2026, 2, 25, 12, tzinfo=dt.UTC))
    page = auditor.get(f"/audit/?{query}").get_data(as_text=True)
    assert shown in page and hidden not in page


@pytest.mark.parametrize(("query", "message"), [
    ("since=yesterday", "Enter a day as YYYY-MM-DD, for example 2026-03-01."),
    ("since=2026-03-02&until=2026-03-01", "swap them"),
    ("outcome=maybe", "Choose one of the listed options."),
    ("who=" + "x" * 65, "At most 64"),
])
def test_bad_filters_are_explained_beside_the_field(auditor: FlaskClient, query: str,
                                                     message: str) -> None:
    response = auditor.get(f"/audit/?{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page and 'aria-invalid="true"' in page


def test_the_audit_log_pages_by_keyset(auditor: FlaskClient,
                                       sessions: sessionmaker[Session]) -> None:
    _records(sessions, 120, action="events.export")
    seen: list[str] = []
    url = "/audit/?action=events."
    for _ in range(5):
        page = auditor.get(url).get_data(as_text=True)
        seen += [f"person:{i}" for i in range(120) if f">person:{i}<" in page]
        marker = 'rel="next"'
        if marker not in page:
            break
        href = page[:page.index(marker)].rsplit('href="', 1)[1].split('"', 1)[0]
        assert "action=events." in href  # the filter is kept on the next page
        url = href.replace("&amp;", "&")
    assert sorted(seen) == sorted(f"person:{i}" for i in range(120))
    assert len(seen) == 120


def test_reading_the_audit_log_is_audited(auditor: FlaskClient,
                                          sessions: sessionmaker[Session]) -> None:
    auditor.get("/audit/?who=oscar")
    auditor.get("/audit/logins")
    with session_scope(sessions) as db:
        reads = db.scalars(select(AuditRecord).where(
            AuditRecord.action.in_(["audit_log.read", "login_history.read"]))).all()
    assert {r.action for r in reads} == {"audit_log.read", "login_history.read"}
    assert all(r.actor == "audrey" for r in reads)


def test_the_login_history_shows_failures_with_their_source(
    client: FlaskClient, make_staff: Any, clock: FakeClock, admin: StaffMember
) -> None:
    member: StaffMember = make_staff("audrey", StaffRole.AUDITOR)
    sign_in(client, member, clock, password="wrong password")
    assert sign_in(client, member, clock).status_code == 302
    page = client.get("/audit/logins?outcome=bad_password").get_data(as_text=True)
    assert "audrey" in page and "wrong password" in page and "127.0.0.1" in page
    assert 'outcome-success">' not in page
    everything = client.get("/audit/logins?who=audrey").get_data(as_text=True)
    assert 'outcome-success">signed in' in everything


def test_the_login_history_filters_by_period(
    auditor: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as db:
        db.add(LoginAttempt(username="mallory", source_address="203.0.113.9",
                            outcome=LoginOutcome.UNKNOWN_USER,
                            at=dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)))
    assert "mallory" in auditor.get("/audit/logins?since=2026-01-05&until=2026-01-05").get_data(
        as_text=True)
    assert "mallory" not in auditor.get("/audit/logins?since=2026-01-06").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/audit/", "/audit/logins"])
def test_operators_may_not_read_the_logs(client: FlaskClient, make_staff: Any,
                                         clock: FakeClock, path: str) -> None:
    member: StaffMember = make_staff("olga", StaffRole.OPERATOR)
    sign_in(client, member, clock)
    assert client.get(path).status_code == 403


def test_admins_see_the_log_links_in_the_menu(signed_in: FlaskClient) -> None:
    page = signed_in.get("/audit/").get_data(as_text=True)
    assert 'href="/audit/logins"' in page and 'aria-current="page"' in page
