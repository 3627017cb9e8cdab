"""The requests page reminds staff of open requests about to be deleted unless closed."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import session_scope
from accessd.models import RequestKind
from accessd.rights.requests import record_request


def test_the_requests_page_reminds_of_open_requests_about_to_be_deleted(
        signed_in: FlaskClient, sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as db:  # the panel's day is 2026-03-02
        old = record_request(db, RequestKind.ACCESS, dt.date(2025, 9, 15),
                             requester_name="Forgotten Requester")
        record_request(db, RequestKind.ACCESS, dt.date(2026, 2, 20),
                       requester_name="Recent Requester")
        old_id = old.public_id
    page = signed_in.get("/privacy/requests").get_data(as_text=True)
    assert "1 open request will be deleted unless answered and closed" in page
    reminder = " ".join(page.split("will be deleted unless")[1].split("</ul>")[0].split())
    assert "access received 2025-09-15</a>: deleted on 2026-03-15 (in 13 days)" in reminder
    assert "2026-02-20" not in reminder
    assert "A request never closed is deleted 6 months after receipt" in page
    detail = signed_in.get(f"/privacy/requests/{old_id}").get_data(as_text=True)
    assert "Kept until</dt><dd>2026-03-15 <strong class=\"warning-text\">deleted then unless " \
           "closed" in detail
