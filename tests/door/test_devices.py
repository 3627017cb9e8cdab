"""Each device of a door said plainly (issue 12, finding 1): the kind of a driver's fault,
the words the dashboard and ``accessd status`` show for a door whose board is unplugged, whose
daemon went quiet or never reported, and a report that reads back whole from the status file
with every device's own time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from accessd.door.devices import DeviceProblem, Health, devices, problem_of
from accessd.door.status import DoorState, Report, StatusFile, read_status_file
from firmware_bridge.errors import (
    DoorDisconnectedError,
    DoorInitError,
    DoorProtocolError,
    DoorTimeoutError,
    SensorBadPasswordError,
    SensorOperationError,
)

AT = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)


def _caused(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "problem"), [
    (DoorDisconnectedError("door board on /dev/x: open failed ([Errno 2] ...)"),
     DeviceProblem.UNPLUGGED),
    (_caused(DoorInitError("could not be greeted"), DoorDisconnectedError("gone")),
     DeviceProblem.UNPLUGGED),
    (_caused(DoorInitError("did not answer HELLO"), DoorTimeoutError("late")),
     DeviceProblem.SILENT),
    (DoorProtocolError("bad checksum"), DeviceProblem.GARBLED),
    (SensorBadPasswordError("refused the password"), DeviceProblem.REFUSED),
    (SensorOperationError("code 0x01"), DeviceProblem.FAILED),
])
def test_a_drivers_error_is_sorted_into_what_people_can_act_on(
        error: Exception, problem: DeviceProblem) -> None:
    assert problem_of(error) is problem


def door(report: Report | None, *, reporting: bool = True,
         judged_at: dt.datetime = AT) -> DoorState:
    return DoorState(1, "Hall A", None, report, reporting, (), judged_at)


def test_an_unplugged_board_leaves_the_daemon_and_the_sensor_online() -> None:
    report = Report(AT, board_online=False, sensor_online=True, locked=True, door_open=None,
                    fault="door board on /dev/ttyACM0: open failed ([Errno 2] No such file)",
                    board_problem="unplugged", board_seen_at=AT - dt.timedelta(minutes=2),
                    sensor_seen_at=AT, database_seen_at=AT)
    daemon, sensor, board, database = devices(door(report))
    assert (daemon.state, sensor.state, board.state, database.state) == (
        "running", "online", "offline", "online")
    assert board.health is Health.DOWN and board.last_contact == AT - dt.timedelta(minutes=2)
    assert board.problem is not None and board.problem.startswith(
        "The door board is not connected")
    assert board.action is not None and "cable" in board.action
    words = " ".join(filter(None, [board.problem, board.action]))
    assert "Errno" not in words and "/dev/" not in words and "`" not in words


def test_a_quiet_daemon_makes_its_devices_unknown_and_says_since_when() -> None:
    report = Report(AT, board_online=True, sensor_online=True, locked=True, door_open=False)
    daemon, *others = devices(door(report, reporting=False,
                                   judged_at=AT + dt.timedelta(hours=2, minutes=5)))
    assert daemon.state == "not running" and daemon.last_contact == AT
    assert daemon.problem == "The door's daemon has not reported for 2 hours."
    assert [(d.state, d.last_contact) for d in others] == [("unknown", AT)] * 3


def test_a_door_that_never_reported_says_so() -> None:
    daemon, *others = devices(door(None, reporting=False))
    assert daemon.state == "never started" and daemon.last_contact is None
    assert {d.state for d in others} == {"unknown"}


def test_a_failing_database_counts_the_events_kept_in_reserve() -> None:
    report = Report(AT, board_online=True, sensor_online=True, locked=True, door_open=False,
                    database_problem="db_failing", database_seen_at=AT, journal_pending=3)
    database = devices(door(report))[3]
    assert database.state == "failing" and database.health is Health.DOWN
    assert database.problem is not None and "3 events kept in its reserve journal" in (
        database.problem)


def test_a_report_with_every_device_reads_back_from_the_status_file(tmp_path: Path) -> None:
    report = Report(AT, board_online=False, sensor_online=True, locked=True, door_open=None,
                    board_problem="unplugged", board_seen_at=AT - dt.timedelta(seconds=5),
                    sensor_seen_at=AT, database_problem="db_catching_up",
                    database_seen_at=AT, journal_pending=7)
    file = StatusFile.create(tmp_path / "door.status")
    file.write(report)
    file.close()
    assert read_status_file(tmp_path / "door.status") == report
