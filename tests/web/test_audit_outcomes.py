"""The audit log tells the truth about how a panel action ended: a refused action is recorded
as refused, never as a success, and reads of requests and of a person's edit page are
recorded as reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import AuditOutcome, AuditRecord, DataSubjectRequest, Door, RequestKind
from accessd.rights.requests import record_request
from accessd.staff import get_staff_user
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in
from tests.web.test_api_v1 import Site, seed_site


def _records(sessions: sessionmaker[Session], action: str) -> list[AuditRecord]:
    with session_scope(sessions) as db:
        rows = list(db.scalars(select(AuditRecord).where(AuditRecord.action == action)
                               .order_by(AuditRecord.id)))
        db.expunge_all()
        return rows


def _post(client: FlaskClient, path: str, **data: str) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, "/staff/new"), **data})


def test_disabling_the_last_admin_is_recorded_as_refused(
    signed_in: FlaskClient, admin: StaffMember, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as db:
        public_id = get_staff_user(db, admin.username).public_id
    response = _post(signed_in, f"/staff/{public_id}/disable")
    assert response.status_code == 302  # back to the list, with the refusal flashed
    (record,) = _records(sessions, "staff.disable")
    assert record.outcome is AuditOutcome.REFUSED
    assert record.target == f"staff:{public_id}"
    assert record.details is not None and record.details["refused"] == "message"


def test_a_refused_request_extension_is_recorded_as_refused(
    signed_in: FlaskClient, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with session_scope(sessions) as db:
        made = record_request(db, RequestKind.ACCESS, dt.date(2026, 3, 1),
                              requester_name="Someone")
        public_id = made.public_id
    # Beyond three months after receipt: the service refuses, the form shows why.
    response = _post(signed_in, f"/privacy/requests/{public_id}/extend", until="2026-07-01",
                     reason="many systems")
    assert response.status_code == 200 and "at the latest" in response.get_data(as_text=True)
    (record,) = _records(sessions, "request.extend")
    assert record.outcome is AuditOutcome.REFUSED
    assert record.details is not None and record.details["fields"] == ["until"]
    with session_scope(sessions) as db:
        assert db.scalars(select(DataSubjectRequest)).one().extended_due_on is None

    granted = _post(signed_in, f"/privacy/requests/{public_id}/extend", until="2026-05-01",
                    reason="many systems")
    assert granted.status_code == 302
    assert [r.outcome for r in _records(sessions, "request.extend")] == [
        AuditOutcome.REFUSED, AuditOutcome.SUCCESS]


def test_unlocking_a_door_that_does_not_exist_is_recorded_as_refused(
    signed_in: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as db:
        door = Door(name="Hall A")
        db.add(door)
        db.flush()
        door_id = door.id
    assert _post(signed_in, "/doors/999/unlock", reason="visitor").status_code == 404
    assert _post(signed_in, f"/doors/{door_id}/unlock", reason="").status_code == 200
    assert _post(signed_in, f"/doors/{door_id}/unlock", reason="visitor, ticket 1"
                 ).status_code == 302
    with session_scope(sessions) as db:
        rows = db.scalars(select(AuditRecord).where(AuditRecord.action.in_(
            ["POST doors.unlock", "door.remote_unlock"])).order_by(AuditRecord.id)).all()
        seen = [(r.action, r.outcome, (r.details or {}).get("url")) for r in rows]
    assert seen == [
        ("POST doors.unlock", AuditOutcome.REFUSED, {"door_id": "999"}),  # no such door
        ("POST doors.unlock", AuditOutcome.REFUSED, {"door_id": str(door_id)}),  # no reason
        ("door.remote_unlock", AuditOutcome.SUCCESS, None),  # the one real unlock
    ]


def test_a_form_refused_by_a_service_is_recorded_as_refused(
    signed_in: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    response = _post(signed_in, "/customers/new", name="Acme", contract_start="2026-03-01",
                     contract_end="2026-01-01", lawful_basis="", necessity_reference="")
    assert response.status_code == 200
    (record,) = _records(sessions, "customer.create")
    assert record.outcome is AuditOutcome.REFUSED
    assert record.details is not None and record.details["fields"] == ["contract_end"]


def test_reading_requests_and_a_persons_edit_page_is_audited_as_reads(
    app: Any, make_staff: Any, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    site: Site = seed_site(sessions)
    client = app.test_client()
    sign_in(client, make_staff("olga", "operator"), clock)
    with session_scope(sessions) as db:
        made = record_request(db, RequestKind.ACCESS, dt.date(2026, 3, 1),
                              requester_name="Alice Example")
        public_id = made.public_id
    assert client.get("/privacy/requests").status_code == 200
    assert client.get(f"/privacy/requests/{public_id}").status_code == 200
    assert client.get(f"/customers/persons/{site.alice}/edit").status_code == 200

    (listing,) = _records(sessions, "request.list")
    assert listing.outcome is AuditOutcome.SUCCESS and listing.actor == "olga"
    assert listing.details is not None and listing.details["open"] == 1
    (one,) = _records(sessions, "request.view")
    assert one.target == f"request:{public_id}"
    edit = [r for r in _records(sessions, "person.view") if (r.details or {}).get("page")
            == "edit"]
    assert [r.target for r in edit] == [f"person:{site.alice}"]
