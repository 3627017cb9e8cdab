"""The dashboard and remote unlock: door states with faults and alarms, the latest events,
the JSON the page polls, names shown as text (never HTML), and an audited unlock."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.models import (
    Alarm,
    AlarmKind,
    AuditRecord,
    CommandKind,
    DeviceCommand,
    Door,
    DoorStatus,
    Person,
)
from tests.web.conftest import FakeClock, csrf_token
from tests.web.pages_fixtures import (
    Site,
    add_events,
    auditor,
    error_beside,
    operator,
    post_form,
    site,
)

__all__ = ["auditor", "operator", "site"]


def test_the_dashboard_shows_each_door_its_alarms_and_the_latest_events(
    signed_in: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    add_events(sessions, site, clock() - dt.timedelta(minutes=1), 2)
    html = signed_in.get("/").get_data(as_text=True)
    door = html.split('data-door="')[1].split("</li>\n  ")[0]
    assert "Hall A" in door and "badge-ok" in door and "badge-locked" in door
    assert re.search(r'door held open, raised <time class="site-time" datetime="2026-03-02T08:55:'
                     r'\d\dZ">2026-03-02 09:55:\d\d CET</time>: held 90 s', door)
    assert "Unlock" in door
    events = html.split('id="event-rows"')[1]
    assert "Alice Jansen" in events and "unknown finger" in events
    assert 'src="/static/dashboard.js"' in html and "<script>" not in html


def test_the_json_snapshot_matches_the_page(
    auditor: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    add_events(sessions, site, clock(), 1)
    state = auditor.get("/dashboard/state.json").get_json()
    (door,) = state["doors"]
    assert {k: door[k] for k in ("name", "connection", "lock", "contact", "sensor")} == {
        "name": "Hall A", "connection": "online", "lock": "locked", "contact": "closed",
        "sensor": "online"}
    assert state["events"][0]["who"] == "Alice Jansen"
    assert state["events"][0]["tone"] == "granted"
    assert "Unlock" not in auditor.get("/").get_data(as_text=True)  # read-only role


def test_a_door_whose_daemon_went_quiet_is_shown_offline(
    signed_in: FlaskClient, site: Site, clock: FakeClock
) -> None:
    clock.advance(minutes=5)
    (door,) = signed_in.get("/dashboard/state.json").get_json()["doors"]
    assert (door["connection"], door["lock"], door["sensor"]) == ("offline", "unknown", "offline")
    daemon, *others = door["devices"]
    assert (daemon["label"], daemon["state"]) == ("Door daemon", "not running")
    assert daemon["problem"] == "The door's daemon has not reported for 5 minutes."
    assert re.fullmatch(r"2026-03-02 10:\d\d:\d\d CET", daemon["last_contact"])
    assert {device["state"] for device in others} == {"unknown"}


def test_each_device_is_said_in_dutch_with_its_duration_and_counts(
    signed_in: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    signed_in.post("/language", data={"csrf_token": csrf_token(signed_in, "/"),
                                      "language": "nl"})
    with sessions.begin() as db:
        db.execute(update(DoorStatus).values(
            online=False, board_problem="unplugged", database_problem="db_failing",
            journal_pending=3))
    (door,) = signed_in.get("/dashboard/state.json").get_json()["doors"]
    devices = {device["key"]: device for device in door["devices"]}
    assert devices["board"]["label"] == "Deurbord"
    assert devices["board"]["state"] == "niet verbonden"
    assert devices["board"]["problem"].startswith("Het deurbord is niet aangesloten")
    assert "3 gebeurtenissen bewaard" in devices["database"]["problem"]
    clock.advance(minutes=5)
    (door,) = signed_in.get("/dashboard/state.json").get_json()["doors"]
    assert door["devices"][0]["problem"] == "De deurdaemon heeft zich 5 minuten niet gemeld."


def test_a_fault_is_shown_and_names_are_text_not_html(
    signed_in: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with sessions.begin() as db:
        db.execute(update(DoorStatus).values(
            sensor_online=False, sensor_problem="unplugged",
            fault="sensor on /dev/ttyX: open failed ([Errno 2] No such file) <b>x</b>"))
        db.execute(update(Person).where(Person.id == site.alice_id)
                   .values(name="<img src=x onerror=alert(1)>"))
    add_events(sessions, site, clock(), 1)
    html = signed_in.get("/").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    # The device's own words stay in the log and the API: the page says it plainly.
    assert "Errno" not in html and "/dev/ttyX" not in html and "&lt;b&gt;" not in html
    assert "The fingerprint reader is not connected" in html
    assert "What to do: Check the reader&#39;s cable" in html


def test_the_json_needs_a_signed_in_user(client: FlaskClient) -> None:
    response = client.get("/dashboard/state.json")
    assert response.status_code == 302 and response.location.startswith("/login")


def test_remote_unlock_needs_a_reason_and_is_queued_and_audited(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    path = f"/doors/{site.door_id}/unlock"
    empty = post_form(operator, path, {"reason": ""}, form_page=path)
    assert "Say why" in error_beside(empty.get_data(as_text=True), "reason")
    long = post_form(operator, path, {"reason": "x" * 151}, form_page=path)
    assert "the reason has 151 characters; at most 130" in error_beside(long.get_data(as_text=True),
                                                            "reason")
    with sessions() as db:
        assert db.scalars(select(DeviceCommand)).all() == []
    done = post_form(operator, path, {"reason": "escorted visitor, ticket 4711"}, form_page=path)
    assert done.status_code == 302 and done.location == "/"
    with sessions() as db:
        command = db.scalars(select(DeviceCommand)).one()
        assert command.kind is CommandKind.REMOTE_UNLOCK
        assert command.args == {"reason": "escorted visitor, ticket 4711"}
        assert command.created_by == "someone-operator"
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "door.remote_unlock")).one()
        assert record.target == "door:Hall A" and record.actor == "someone-operator"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_auditor_cannot_unlock(auditor: FlaskClient, site: Site, method: str) -> None:
    path = f"/doors/{site.door_id}/unlock"
    if method == "GET":
        assert auditor.get(path).status_code == 403
    else:
        assert post_form(auditor, path, {"reason": "x"}).status_code == 403


def test_alarms_are_cleared_through_the_daemon_with_a_note_in_the_audit_log(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    path = f"/doors/{site.door_id}/alarms"
    dashboard = operator.get("/").get_data(as_text=True)
    assert f'href="{path}"' in dashboard  # the door has an open alarm
    page = operator.get(path).get_data(as_text=True)
    assert "door held open" in page and "held 90 s" in page
    empty = post_form(operator, path, {"note": ""}, form_page=path)
    assert "Say what was done" in error_beside(empty.get_data(as_text=True), "note")
    with sessions() as db:
        assert db.scalars(select(DeviceCommand)).all() == []
    done = post_form(operator, path, {"note": "door closed again, frame checked"},
                     form_page=path)
    assert done.status_code == 302 and done.location == "/"
    with sessions() as db:
        command = db.scalars(select(DeviceCommand)).one()
        assert (command.kind, command.door_id) == (CommandKind.CLEAR_ALARM, site.door_id)
        assert command.created_by == "someone-operator"
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "door.clear_alarms")).one()
        assert record.target == "door:Hall A"
        assert record.details is not None
        assert record.details["reason"] == "door closed again, frame checked"


def test_a_door_without_alarms_has_nothing_to_clear(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as db:
        db.execute(update(Alarm).values(cleared_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC)))
    path = f"/doors/{site.door_id}/alarms"
    # the link is absent (its words still reach the script, for an alarm raised later)
    assert "Clear alarms…</a>" not in operator.get("/").get_data(as_text=True)
    assert "no open alarm" in operator.get(path).get_data(as_text=True)
    post_form(operator, path, {"note": "nothing"}, form_page=path)
    with sessions() as db:
        assert db.scalars(select(DeviceCommand)).all() == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_auditor_cannot_clear_alarms(auditor: FlaskClient, site: Site, method: str) -> None:
    path = f"/doors/{site.door_id}/alarms"
    if method == "GET":
        assert auditor.get(path).status_code == 403
    else:
        assert post_form(auditor, path, {"note": "x"}).status_code == 403


def test_a_replaced_sensor_is_approved_from_the_alarms_page_with_a_note_in_the_audit_log(
    operator: FlaskClient, auditor: FlaskClient, site: Site, sessions: sessionmaker[Session],
    clock: FakeClock
) -> None:
    path = f"/doors/{site.door_id}/alarms"
    approve = f"/doors/{site.door_id}/sensor/approve"
    assert "Approve the new sensor" not in operator.get(path).get_data(as_text=True)
    assert post_form(operator, approve, {"checked": "x"}, form_page=path).status_code == 302
    assert "refused no sensor" in operator.get(path).get_data(as_text=True)  # nothing to approve
    with sessions.begin() as db:  # what the daemon wrote when it refused the sensor
        db.execute(update(Door).values(sensor_identity="zfm capacity=1000",
                                       sensor_refused="zfm capacity=200"))
        db.add(Alarm(door_id=site.door_id, kind=AlarmKind.SENSOR_SWAPPED, raised_at=clock(),
                     detail="the sensor's parameters are not those of the sensor this door "
                            "provisioned"))
    assert "Approve the new sensor" in operator.get(path).get_data(as_text=True)
    empty = post_form(operator, approve, {"checked": ""}, form_page=path)
    assert "Say what was checked" in error_beside(empty.get_data(as_text=True), "checked")
    assert post_form(auditor, approve, {"checked": "x"}, form_page="/").status_code == 403
    done = post_form(operator, approve, {"checked": "replaced by us, ticket 812"},
                     form_page=path)
    assert done.status_code == 302
    with sessions() as db:
        door = db.get_one(Door, site.door_id)
        assert door.sensor_identity is None  # the daemon adopts the sensor it finds next
        assert not db.scalars(select(Alarm).where(Alarm.kind == AlarmKind.SENSOR_SWAPPED,
                                                  Alarm.cleared_at.is_(None))).all()
        record = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "door.approve_sensor")).one()
        assert record.target == "door:Hall A" and record.actor == "someone-operator"
        assert record.details["sensor"] == "zfm capacity=200"


def test_a_resync_the_panel_started_shows_its_progress_on_the_dashboard(
    operator: FlaskClient, site: Site, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    from accessd.door import command_table

    assert "No resync under way" in operator.get("/").get_data(as_text=True)
    with sessions.begin() as db:  # what an erasure or a withdrawal asks of every door
        command_table.request_resync_everywhere(db, created_by="olga", why="person erased")
        (command_id,) = db.scalars(select(DeviceCommand.id).where(
            DeviceCommand.kind == CommandKind.RESYNC)).all()
    (waiting,) = operator.get("/dashboard/state.json").get_json()["work"]
    assert waiting["state"] == "pending" and waiting["total"] is None
    assert waiting["what"] == "sensor resync (person erased)" and waiting["door"] == "Hall A"
    # The daemon reports its counts on the command's row as it uploads.
    with sessions.begin() as db:
        db.execute(update(DeviceCommand).values(state="running"))
    command_table.CommandProgress(sessions, command_id, "resync", "templates")(120, 1000)
    (running,) = operator.get("/dashboard/state.json").get_json()["work"]
    assert (running["state"], running["done"], running["total"]) == ("running", 120, 1000)
    assert running["text"].startswith("resync: 120/1000 templates")
    html = operator.get("/").get_data(as_text=True)
    row = html.split('id="work-rows"')[1].split("</tr>")[0]
    assert '<progress max="1000" value="120">' in row and "resync: 120/1000 templates" in row
