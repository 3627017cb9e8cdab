"""The door keeps working while its database does not (issue 11): another process holding the
write lock, or a full disk, ends no thread, keeps the door deciding and recording (through the
reserve journal), shows in the status as what it is, raises an alarm, and heals by itself."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from accessd.cli.main import main as accessd_main
from accessd.db import checkpoint_wal, read_only_engine
from accessd.door.recorder import ALARM_AFTER
from accessd.door.status import door_states
from accessd.models import AccessEvent, Alarm, AlarmKind, CommandState
from tests.daemon.conftest import Door, add_people, eventually, installed, unlocked_since

LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@contextlib.contextmanager
def write_lock(database: str, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process takes the database's write lock (``BEGIN IMMEDIATE``) and holds it."""
    with subprocess.Popen([sys.executable, "-c", LOCKER, database, str(seconds)],
                          stdout=subprocess.PIPE, text=True) as locker:
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == "locked"
        try:
            yield locker
        finally:
            locker.wait(timeout=seconds + 10)


def present_and_wait(door: Door, finger: str) -> float:
    """Present ``finger``; returns how long the relay took to open. Then the finger is lifted
    and the lock closed again (as the door would after its release time), so that the next
    opening shows."""
    placed = time.monotonic()
    door.present(finger)
    opened = eventually(lambda: unlocked_since(door, placed), timeout=5,
                        what="the door to open")
    door.lift()
    assert door.daemon is not None
    with door.daemon._door_lock:
        door.daemon.door.lock()
    return opened[0] - placed  # type: ignore[index,no-any-return]


def read(door: Door) -> Session:
    """A session that only reads (deferred): it works while another process holds the lock."""
    return Session(read_only_engine(door.engine))


def database_alarm(door: Door) -> Alarm | None:
    """The database alarm, read in a transaction of its own: one reading transaction keeps
    the snapshot of its first query, and would never see an alarm written after it (the
    daemon moves the journal first, then writes the alarm)."""
    with read(door) as session:
        return session.scalars(select(Alarm).where(Alarm.kind == AlarmKind.DATABASE)).first()


def granted_count(door: Door) -> int:
    with read(door) as session:
        return session.scalar(select(func.count()).select_from(AccessEvent)
                              .where(AccessEvent.kind == "granted")) or 0


def test_a_10_s_write_lock_held_by_another_process_ends_nothing_and_loses_nothing(
        door: Door, capsys: pytest.CaptureFixture[str]) -> None:
    people = add_people(door)
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    daemon = door.daemon
    assert daemon is not None and daemon.recorder is not None
    journal = daemon.recorder.journal
    assert journal is not None
    threads = [*daemon._threads, door.thread]
    before = granted_count(door)
    database = door.settings.database.url.removeprefix("sqlite:///")
    with write_lock(database, 10) as locker:
        waits = [present_and_wait(door, "alice-right-index") for _ in range(3)]
        assert journal.pending >= 3  # recorded in the reserve journal, synced
        time.sleep(6.5)  # past the alarm's threshold, and past the old 5 s busy timeout
        capsys.readouterr()
        assert accessd_main(["--config", str(door.config), "status"]) == 0
        shown = capsys.readouterr().out
        assert locker.poll() is None, "the lock ended before the checks"
    assert max(waits) < 1.0, waits
    assert "online, daemon running" in shown and "database failing since" in shown, shown
    assert "database is locked" in shown and "kept in the reserve journal" in shown
    assert all(t is not None and t.is_alive() for t in threads)
    eventually(lambda: journal.pending == 0, what="the journal to be moved")
    assert granted_count(door) == before + 3
    alarm = eventually(lambda: database_alarm(door), what="the database alarm")
    assert "database is locked" in (alarm.detail or "")  # type: ignore[union-attr]
    with read(door) as session:
        state = door_states(session, daemon.clock.now())[0]
        assert state.online
    assert accessd_main(["--config", str(door.config), "verify-log"]) == 0
    kinds = [e.kind for e in door.events()]
    assert kinds.count("fault") == kinds.count("recovered") == 1
    present_and_wait(door, "alice-right-index")
    assert granted_count(door) == before + 4 and journal.pending == 0


# --- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB file system of the test's own (tmpfs), to fill up; skipped where the test may
    not mount one (not root, no tmpfs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("filling a disk needs a file system of the test's own: run as root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system refuses another byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, bytes(chunk))
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        (directory / "one-more").write_bytes(b"x")
    return filler


def test_a_full_disk_keeps_the_door_recording_into_the_reserve_and_moves_it_once(
        tmp_path: Path, small_disk: Path) -> None:
    with installed(tmp_path, small_disk / "data") as door:
        people = add_people(door)
        door.start()
        assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
        daemon = door.daemon
        assert daemon is not None and daemon.recorder is not None
        journal = daemon.recorder.journal
        assert journal is not None
        before = granted_count(door)
        checkpoint_wal(door.engine)  # an empty WAL: an event's pages need new space
        filler = fill(small_disk)
        for _ in range(3):
            present_and_wait(door, "alice-right-index")
        assert journal.pending >= 3  # the database refused them, the reserve took them
        eventually(lambda: "database or disk is full" in _status_fault(door), timeout=5,
                   what="the status to tell")
        time.sleep(ALARM_AFTER)  # a trouble that lasts: an alarm, once it can be written
        assert granted_count(door) == before
        filler.unlink()
        eventually(lambda: journal.pending == 0, what="the journal to be moved")
        assert granted_count(door) == before + 3
        alarm = eventually(lambda: database_alarm(door), what="the database alarm")
        assert "full" in (alarm.detail or "")  # type: ignore[union-attr]
        assert accessd_main(["--config", str(door.config), "verify-log"]) == 0
        with door.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def _status_fault(door: Door) -> str:
    assert door.daemon is not None
    with read(door) as session:
        return door_states(session, door.daemon.clock.now())[0].fault or ""


def test_a_granted_pin_whose_attempt_cannot_be_counted_stays_shut_and_says_so(
        door: Door, monkeypatch: pytest.MonkeyPatch) -> None:
    people = add_people(door)
    door.start()
    assert door.daemon is not None and door.daemon._pin_attempts is not None

    def refused(*_args: object) -> None:
        raise OperationalError("UPDATE persons", {}, Exception("database or disk is full"))

    monkeypatch.setattr(door.daemon._pin_attempts, "count", refused)
    before = door.last_event_id()
    door.rig.door.keys(f"{people.alice_code}*{people.alice_pin}#")
    failed = door.wait_event("pulse_failed", after=before)
    granted = door.wait_event("granted", after=before)
    assert (failed.refers_to, failed.reason, failed.method) == (granted.id, "not_recorded", "pin")
    assert not unlocked_since(door, 0)
