"""One "today at the site" everywhere: the CLI, the panel and the API agree at the site's
midnight, also where the UTC date is another day.

At Kiritimati (UTC+14) local midnight comes while UTC is still on the previous day; at
St John's (UTC-3:30) UTC has already moved on while the site's day is not over. A contract's
last day and a request's deadline are the site's days, so every screen must count them there.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings, load_settings
from accessd.customers.contracts import add_customer
from accessd.db import session_scope
from accessd.models import RequestKind, StaffRole
from accessd.rights.requests import add_months, record_request
from accessd.staff import create_api_token
from tests.customers.conftest import Run, cli, write_config
from tests.web.conftest import FakeClock, sign_in

GRACE_DAYS = 30  # an ended contract stays "ended" (data kept) for a while before its purge


@dataclass(frozen=True)
class Edge:
    """A moment close to the site's midnight, and what the site's day makes of it."""

    zone: str
    moment: dt.datetime  # UTC
    last_day: dt.date  # a contract's last day, and a request's due date
    state: str  # the contract's state at ``moment``
    overdue_days: int  # how late the request is at ``moment`` (0: due today)


EDGES = [
    # 00:30 on 10 March at the site, 10:30 on 9 March in UTC: the 9th was yesterday.
    pytest.param(Edge("Pacific/Kiritimati", dt.datetime(2026, 3, 9, 10, 30, tzinfo=dt.UTC),
                      dt.date(2026, 3, 9), "ended", 1), id="kiritimati-just-after-midnight"),
    # 23:30 on 20 January at the site, 03:00 on 21 January in UTC: the 20th is still today.
    pytest.param(Edge("America/St_Johns", dt.datetime(2026, 1, 21, 3, 0, tzinfo=dt.UTC),
                      dt.date(2026, 1, 20), "active", 0), id="st-johns-just-before-midnight"),
]


@dataclass
class Site:
    """The panel, an API token and the CLI, all on one database, one clock and one zone."""

    panel: FlaskClient
    api_headers: dict[str, str]
    accessd: Any  # runs `accessd ARGS...` and returns a Run
    customer_public_id: str


@pytest.fixture(params=EDGES)
def edge(request: pytest.FixtureRequest) -> Edge:
    found: Edge = request.param
    # The premise: UTC's date and the site's date differ at this moment.
    assert found.moment.date() != found.moment.astimezone(ZoneInfo(found.zone)).date()
    return found


@pytest.fixture
def site(edge: Edge, tmp_path: Path, db_url: str, clock: FakeClock, make_app: Any,
         make_staff: Any, sessions: sessionmaker[Session],
         capsys: pytest.CaptureFixture[str]) -> Site:
    """A customer whose last day and a request whose deadline are ``edge.last_day``, seen at
    ``edge.moment`` by a signed-in operator, an API token and the command line."""
    config = write_config(tmp_path, db_url, timezone=edge.zone)
    settings: Settings = load_settings(config)
    clock.now = edge.moment - dt.timedelta(days=40)
    with session_scope(sessions) as db:
        customer = add_customer(db, "Edge Hosting", edge.last_day - dt.timedelta(days=365),
                                edge.last_day, settings=settings, grace_days=GRACE_DAYS,
                                now=clock())
        record_request(db, RequestKind.ACCESS, add_months(edge.last_day, -1),
                       requester_name="Rita Requester", customer=customer)
        _row, token = create_api_token(db, "edge", StaffRole.AUDITOR, created_by="test",
                                       now=clock())
        public_id = str(customer.public_id)
    app: Flask = make_app(ACCESSD_SETTINGS=settings)
    panel = app.test_client()
    clock.now = edge.moment - dt.timedelta(minutes=5)
    assert sign_in(panel, make_staff("olga", StaffRole.OPERATOR), clock).status_code == 302
    clock.now = edge.moment
    return Site(panel, {"Authorization": f"Bearer {token}"}, cli(config, capsys, wall=clock),
                public_id)


def test_cli_panel_and_api_agree_whether_the_contract_is_over(edge: Edge, site: Site) -> None:
    shown: Run = site.accessd("customer", "show", "Edge Hosting")
    assert shown.code == 0, shown.err
    assert re.search(rf"(?m)^State\s+{edge.state}; purge due on", shown.out), shown.out
    as_json: Run = site.accessd("customer", "show", "Edge Hosting", "--json")
    assert json.loads(as_json.out)["state"] == edge.state

    page = site.panel.get(f"/customers/{site.customer_public_id}")
    assert page.status_code == 200
    assert (f'<span class="state state-{edge.state}">{edge.state}</span>'
            in page.get_data(as_text=True))

    api = site.panel.get(f"/api/v1/customers/{site.customer_public_id}",
                         headers=site.api_headers)
    assert api.status_code == 200
    assert api.get_json()["state"] == edge.state


def test_cli_and_panel_agree_whether_a_request_is_overdue(edge: Edge, site: Site) -> None:
    listed: Run = site.accessd("requests")
    assert listed.code == 0, listed.err
    if edge.overdue_days:
        assert f"OVERDUE {edge.overdue_days} d" in listed.out
        assert "1 open, 1 overdue" in listed.out
    else:
        assert "0 d left" in listed.out
        assert "1 open, 0 overdue" in listed.out

    page = site.panel.get("/privacy/requests").get_data(as_text=True)
    assert "Rita Requester" in page
    if edge.overdue_days:
        assert '<tr class="overdue">' in page
        assert f"by {edge.overdue_days} day" in page
    else:
        assert "OVERDUE" not in page
        assert "(0 days left)" in page
