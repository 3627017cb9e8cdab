"""One answer from every interface: ``accessd status``, the dashboard and the API judge a door
online by the same rule, and ``accessd door unlock``, the panel's unlock form and the API's
unlock accept and refuse the same reasons with the same message.

The three run on one database; the CLI reads the panel's clock (tests move it, never sleep).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from accessd.config import write_default_config
from accessd.db import session_scope
from accessd.door.remote_unlock import ACTOR_MAX, REASON_MAX, event_reason
from accessd.door.status import ONLINE_WITHIN
from accessd.models import AccessEvent, CommandKind, DeviceCommand, DoorStatus, StaffRole
from accessd.staff import create_api_token
from tests.customers.conftest import Run, accessd
from tests.web.conftest import FakeClock
from tests.web.pages_fixtures import Site, add_events, error_beside, post_form, site

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


def test_a_board_outage_reads_the_same_in_accessd_status_and_on_the_dashboard(
    signed_in: FlaskClient, site: Site, sessions: sessionmaker[Session], cli_clock: FakeClock,
    accessd: Any,
) -> None:
    now = cli_clock()
    with sessions.begin() as db:  # the daemon's report: its board unplugged two minutes ago
        db.execute(update(DoorStatus).values(
            heartbeat_at=now, online=False, sensor_online=True, board_problem="unplugged",
            board_seen_at=now - dt.timedelta(minutes=2), sensor_seen_at=now,
            database_seen_at=now,
            fault="door board on /dev/ttyACM0: open failed ([Errno 2] No such file); check "
                  "that it is plugged in (`accessd doctor` shows the ports)"))

    out = accessd("status").out
    (shown,) = signed_in.get("/dashboard/state.json").get_json()["doors"]

    states = {device["key"]: device["state"] for device in shown["devices"]}
    assert states == {"daemon": "running", "sensor": "online", "board": "offline",
                      "database": "online"}
    assert shown["lock"] == "unknown"
    assert out.startswith("door Hall A: OFFLINE, daemon running; lock and door contact unknown")
    for device in shown["devices"]:  # each device in the same words, at the same time
        state = device["state"].upper() if device["health"] == "down" else device["state"]
        assert (f"  {device['label'].lower()}: {state}, last contact {device['last_contact']}"
                in out), out
        assert device["problem"] in out and device["action"] in out
    board = next(d for d in shown["devices"] if d["key"] == "board")
    local = (now - dt.timedelta(minutes=2) + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert board["last_contact"] == f"{local} CET"  # UTC + 1 h: the site's time, zone said
    assert "What to do: Check the board's cable" in out
    # The device's own words are for a technician, in the CLI only; never on the page.
    assert "detail for a technician: door board on /dev/ttyACM0" in out
    page = signed_in.get("/").get_data(as_text=True)
    assert "Errno" not in page and "accessd doctor" not in page
    assert re.search(r"ALARM door held open, raised 2026-03-02 09:55:\d\d CET: held 90 s", out)
    assert "times in the site's zone (Europe/Amsterdam)" in out


def test_the_cli_and_the_panel_show_the_same_times_with_the_same_zone(
    signed_in: FlaskClient, site: Site, sessions: sessionmaker[Session], cli_clock: FakeClock,
    accessd: Any,
) -> None:
    add_events(sessions, site, cli_clock() - dt.timedelta(hours=1), 1)
    (event,) = signed_in.get("/dashboard/state.json").get_json()["events"]
    assert re.fullmatch(r"2026-03-02 \d\d:\d\d:\d\d CET", event["time"])
    listed = accessd("events", "list").out
    assert event["time"] in listed  # site time, zone said, in both
    staff_page = signed_in.get("/staff/").get_data(as_text=True)
    assert re.search(r'<time class="site-time" datetime="2026-03-02T\d\d:\d\d:\d\dZ">'
                     r"2026-03-02 \d\d:\d\d CET</time>", staff_page)


def unlock_everywhere(accessd: Any, client: FlaskClient, token: dict[str, str], site: Site,
                      reason: str) -> tuple[Run, str, TestResponse]:
    """Ask for the same unlock of Hall A through the CLI, the panel's form and the API."""
    cli = accessd("door", "unlock", "--door", "Hall A", "--reason", reason, "--by", "ada",
                  "--no-wait")
    path = f"/doors/{site.door_id}/unlock"
    form = post_form(client, path, {"reason": reason}, form_page=path)
    panel = html.unescape(error_beside(form.get_data(as_text=True), "reason"))
    api = client.post("/api/v1/doors/Hall%20A/unlock", headers=token, json={"reason": reason})
    return cli, panel if form.status_code == 200 else "", api


def unlocks(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as db:
        return [(c.created_by, c.args["reason"]) for c in db.scalars(
            select(DeviceCommand).where(DeviceCommand.kind == CommandKind.REMOTE_UNLOCK)
            .order_by(DeviceCommand.id))]


def test_a_reason_one_over_the_limit_is_refused_with_one_message_everywhere(
    signed_in: FlaskClient, site: Site, operator_token: dict[str, str],
    sessions: sessionmaker[Session], accessd: Any,
) -> None:
    too_long = "x" * (REASON_MAX + 1)
    message = f"reason: the reason has {REASON_MAX + 1} characters; at most {REASON_MAX} fit " \
              "in the access history beside who asked, so shorten it"

    cli, panel, api = unlock_everywhere(accessd, signed_in, operator_token, site, too_long)

    assert (cli.code, cli.err) == (1, f"accessd: {message}\n")
    assert panel == message
    assert api.status_code == 400 and api.get_json()["error"]["message"] == message
    assert unlocks(sessions) == []


def test_a_reason_at_the_limit_is_accepted_everywhere_and_recorded_whole(
    signed_in: FlaskClient, site: Site, operator_token: dict[str, str],
    sessions: sessionmaker[Session], accessd: Any,
) -> None:
    reason = "y" * REASON_MAX

    cli, panel, api = unlock_everywhere(accessd, signed_in, operator_token, site, reason)

    assert cli.code == 0 and cli.out.startswith("queued command")
    assert panel == ""  # no error: the form redirected
    assert api.status_code == 202
    assert unlocks(sessions) == [("ada", reason), ("ada", reason), ("token:portal", reason)]
    # What the door's daemon will record for each fits its event whole.
    longest_actor = "a" * ACTOR_MAX
    assert event_reason(reason, longest_actor) == f"{reason} (by {longest_actor})"
    assert len(event_reason(reason, longest_actor)) == AccessEvent.__table__.c.reason.type.length


def test_the_limits_add_up_to_the_columns_that_keep_them() -> None:
    assert ACTOR_MAX == DeviceCommand.__table__.c.created_by.type.length
    assert REASON_MAX + len(" (by )") + ACTOR_MAX == AccessEvent.__table__.c.reason.type.length
