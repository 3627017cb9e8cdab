"""The audit log: who did what, when (UTC), from where, and how it ended, even on failure."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import AuditOutcome, AuditRecord
from accessd.staff import sanitise
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in
from web.request_audit import audit
from web.security import login_required


def _records(sessions: sessionmaker[Session]) -> list[AuditRecord]:
    with session_scope(sessions) as db:
        return list(db.scalars(select(AuditRecord).order_by(AuditRecord.id)))


def test_a_staff_action_is_recorded_with_who_what_when_where_and_outcome(
    app: Flask, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    sign_in(client, admin, clock)
    client.post("/staff/new", data={"csrf_token": csrf_token(client, "/staff/new"),
                                   "username": "newbie", "role": "auditor"})  # fmt: skip
    created = [r for r in _records(sessions) if r.action == "staff.create"]
    assert len(created) == 1
    record = created[0]
    assert record.actor == "ada"
    assert record.at == clock()
    assert record.source_address == "198.51.100.7"
    assert record.outcome is AuditOutcome.SUCCESS
    assert record.target is not None and record.target.startswith("staff:")
    assert record.details is not None and record.details["role"] == "auditor"


def test_sign_in_attempts_are_audited_without_the_password(
    client: FlaskClient, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, admin, clock, password="a wrong secret guess")
    sign_in(client, admin, clock)
    logins = [r for r in _records(sessions) if r.action == "auth.login"]
    assert [r.outcome for r in logins] == [AuditOutcome.DENIED, AuditOutcome.SUCCESS]
    assert all("secret guess" not in repr(r.details) for r in logins)


def test_a_refused_request_is_audited_as_denied(
    app: Flask, make_staff: Any, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    member: StaffMember = make_staff("opal", "operator")
    client = app.test_client()
    sign_in(client, member, clock)
    assert client.get("/staff/").status_code == 403
    denied = [r for r in _records(sessions) if r.outcome is AuditOutcome.DENIED]
    assert [(r.actor, r.action) for r in denied] == [("opal", "GET staff_admin.index")]


def test_a_post_refused_for_its_csrf_token_is_audited(
    signed_in: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    signed_in.post("/logout", data={})
    last = _records(sessions)[-1]
    assert (last.actor, last.action, last.outcome) == ("ada", "POST auth.logout",
                                                      AuditOutcome.DENIED)  # fmt: skip


def test_a_request_that_fails_is_still_audited_as_failed(
    make_app: Any, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    app: Flask = make_app(PROPAGATE_EXCEPTIONS=False)

    @login_required
    def explode() -> str:
        audit().note("probe.explode", target="probe:1")
        raise RuntimeError("database on fire")

    app.add_url_rule("/explode", "explode", explode, methods=["POST"])
    client = app.test_client()
    sign_in(client, admin, clock)
    response = client.post("/explode", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 500
    failed = _records(sessions)[-1]
    assert (failed.action, failed.outcome, failed.target) == (
        "probe.explode", AuditOutcome.FAILED, "probe:1")  # fmt: skip


def test_plain_page_views_are_not_audited(
    signed_in: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    before = len(_records(sessions))
    signed_in.get("/")
    signed_in.get("/account/password")
    assert len(_records(sessions)) == before


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("bob\n2026-01-01 admin login ok", "bob\\x0a2026-01-01 admin login ok"),
        ("tab\there", "tab\\x09here"),
        ("cr\rlf", "cr\\x0dlf"),
        ("ansi\x1b[31mred", "ansi\\x1b[31mred"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("line\u2028sep", "line\\u2028sep"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("plain j.devries", "plain j.devries"),
        ("ünïcödé", "ünïcödé"),
    ],
)
def test_values_are_sanitised_against_log_injection(raw: str, stored: str) -> None:
    assert sanitise(raw) == stored


def test_a_forged_user_name_cannot_forge_an_audit_line(
    client: FlaskClient, admin: StaffMember, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    forged = StaffMember("eve\nada", admin.role, "whatever-whatever", admin.totp_secret)
    sign_in(client, forged, clock)
    record = [r for r in _records(sessions) if r.action == "auth.login"][-1]
    assert "\n" not in record.actor and record.actor == "eve\\x0aada"


def test_long_values_are_cut_to_their_column(sessions: sessionmaker[Session]) -> None:
    from accessd.staff import record_audit

    with session_scope(sessions) as db:
        record = record_audit(db, actor="a" * 500, action="b" * 500, target="c" * 500,
                              details={"k": "v" * 5000}, outcome=AuditOutcome.SUCCESS)  # fmt: skip
    assert len(record.actor) == 64 and len(record.action) == 64
    assert record.target is not None and len(record.target) == 200
    assert record.details is not None and len(record.details["k"]) == 500
