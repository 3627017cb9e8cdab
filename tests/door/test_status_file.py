"""The status file beside the database: the daemon's report when the status row cannot be
written, read whole even when a write was cut short, and found from the database URL alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from accessd.door.status import (
    Report,
    StatusFile,
    read_status_file,
    status_file_path,
)

AT = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)


def report(seconds: int, fault: str | None = None) -> Report:
    return Report(AT + dt.timedelta(seconds=seconds), board_online=True, sensor_online=True,
                  locked=True, door_open=False, fault=fault)


def test_the_newest_report_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "door.status"
    status = StatusFile.create(path)
    assert read_status_file(path) is None  # created, never written
    for n in range(3):
        status.write(report(n, fault=f"database failing {n}"))
    assert read_status_file(path) == report(2, fault="database failing 2")
    assert path.stat().st_size == 4096  # rewritten in place, never grown
    status.close()


def test_a_write_cut_short_leaves_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "door.status"
    status = StatusFile.create(path)
    status.write(report(1))
    status.write(report(2))
    with open(path, "r+b") as handle:  # the second write's slot, half written
        handle.seek(20)
        handle.write(b"\xff" * 10)
    assert read_status_file(path) == report(1)


def test_a_fault_too_long_for_the_slot_is_shortened_not_the_report(tmp_path: Path) -> None:
    path = tmp_path / "door.status"
    StatusFile.create(path).write(report(1, fault="é" * 2000))
    read = read_status_file(path)
    assert read is not None and read.at == report(1).at and 0 < len(read.fault or "") < 2000


def test_the_file_lives_beside_a_sqlite_database_and_nowhere_for_postgresql(
        tmp_path: Path) -> None:
    assert status_file_path(f"sqlite:///{tmp_path}/db/accessd.sqlite3", 3) == (
        tmp_path / "db" / "accessd-door-3.status")
    assert status_file_path("postgresql+psycopg://u:p@host/accessd", 3) is None
    assert status_file_path("sqlite://", 3) is None
