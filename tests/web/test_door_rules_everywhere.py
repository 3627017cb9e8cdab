"""One answer from every interface: ``accessd status``, the dashboard and the API judge a door
online by the same rule, and ``accessd door unlock``, the panel's unlock form and the API's
unlock accept and refuse the same reasons with the same message.

The three run on one database; the CLI reads the panel's clock (tests move it, never sleep).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import write_default_config
from accessd.db import session_scope
from accessd.door.status import ONLINE_WITHIN
from accessd.models import DoorStatus, StaffRole
from accessd.staff import create_api_token
from tests.customers.conftest import Run, accessd
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import Site, site

__all__ = ["accessd", "site"]


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    """The CLI's configuration, on the panel's database."""
    path = write_default_config(tmp_path / "accessd.toml", tmp_path / "data")
    text = re.sub(r'(?m)^url = ""$', f'url = "{db_url}"', path.read_text())
    assert db_url in text
    path.write_text(text)
    return path


@pytest.fixture
def cli_clock(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The site's clock as the CLI reads it (``accessd.clock``) is the panel's clock."""
    monkeypatch.setattr("accessd.clock.utc_now", clock)
    return clock


@pytest.fixture
def operator_token(sessions: sessionmaker[Session], clock: FakeClock) -> dict[str, str]:
    """An API token with the operator role, as the Authorization header."""
    with session_scope(sessions) as db:
        _row, token = create_api_token(db, "portal", StaffRole.OPERATOR, created_by="test",
                                       now=clock())
    return {"Authorization": f"Bearer {token}"}


def door_line(run: Run, name: str) -> str:
    assert run.code == 0, run.err
    (line,) = [line for line in run.out.splitlines() if line.startswith(f"door {name}:")]
    return line


@pytest.mark.parametrize(("silence", "online"), [
    (ONLINE_WITHIN, True),
    (ONLINE_WITHIN + dt.timedelta(seconds=1), False),
])
def test_the_cli_the_dashboard_and_the_api_agree_whether_a_door_is_online(
    signed_in: FlaskClient, site: Site, operator_token: dict[str, str],
    sessions: sessionmaker[Session], cli_clock: FakeClock, accessd: Any,
    silence: dt.timedelta, online: bool,
) -> None:
    with sessions.begin() as db:  # the daemon's last status, written now
        db.execute(update(DoorStatus).values(heartbeat_at=cli_clock()))
    cli_clock.advance(seconds=silence.total_seconds())

    line = door_line(accessd("status"), "Hall A")
    (shown,) = signed_in.get("/dashboard/state.json").get_json()["doors"]
    (listed,) = signed_in.get("/api/v1/doors", headers=operator_token).get_json()["doors"]

    assert line.startswith("door Hall A: online," if online else "door Hall A: OFFLINE,")
    assert shown["connection"] == ("online" if online else "offline")
    assert listed["online"] is online
    assert (shown["lock"], listed["locked"]) == (("locked", True) if online else ("unknown", None))
