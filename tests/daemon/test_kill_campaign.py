"""Killing the daemon at any moment loses nothing it acknowledged (issue 11): SIGKILL at random
points while a finger is presented again and again, some of the time while another process
holds the database's write lock (so that the kill lands while events sit in the reserve journal
or are being moved), then start again, many times. Afterwards every relay pulse the simulated
board received (an opening, or one kept open longer: the relay's own history cannot tell a second
opening within the release time) has its granted event recorded before it, no event is there
twice, every chain verifies and SQLite's integrity check passes."""

from __future__ import annotations

import datetime as dt
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text

from accessd.cli.main import main as accessd_main
from accessd.db import create_db_engine
from accessd.door.journal import JOURNAL_FILE, ReserveJournal
from accessd.door.status import read_status_file, status_file_path
from accessd.models import AccessEvent
from hardware_sim.door import Command, SimulatedDoorBoard
from hardware_sim.rig import SimRig
from tests.bench_door import make_installation, seed_site
from tests.daemon.test_database_faults import write_lock
from tests.installation import provision_door, set_config

pytestmark = pytest.mark.slow

ROUNDS = 8
FINGER = "kill-finger"


def until(check: Callable[[], object], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Fingers:
    """A finger on the glass for 0.15 s every 0.3 s, until stopped."""

    def __init__(self, rig: SimRig) -> None:
        self.rig = rig
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.rig.sensor.place(FINGER)
            self.stop.wait(0.15)
            self.rig.sensor.lift()
            self.stop.wait(0.15)

    def end(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def test_killing_the_daemon_at_random_loses_no_acknowledged_event(tmp_path: Path) -> None:
    config, settings = make_installation(tmp_path, **{"sensor.poll_interval_seconds": 0.01,
                                                      "access.backoff_seconds": 0})
    seed_site(settings, customers=1, persons=1, events=0, enrol={FINGER: 0})
    database = settings.database.url.removeprefix("sqlite:///")
    status_file = status_file_path(settings.database.url, 1)
    assert status_file is not None
    rng = random.Random(11)
    # Event times are wall-clock UTC, the simulator's are monotonic: one offset maps them.
    wall_minus_mono = time.time() - time.monotonic()
    log = open(tmp_path / "daemon.log", "w")  # closed in the finally
    with SimRig(tmp_path / "sim") as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        provision_door(config)
        command = [sys.executable, "-m", "accessd.cli", "--config", str(config), "run",
                   "--log-level", "WARNING"]
        try:
            for round_ in range(ROUNDS + 1):
                started = dt.datetime.now(dt.UTC)
                daemon = subprocess.Popen(command, stderr=log)
                try:
                    until(lambda started=started: _running_since(status_file, started),
                          "the daemon to run")
                    if round_ == ROUNDS:  # the last start only moves what waits, then stops
                        until(lambda: _pending(settings.data_dir) == 0, "the journal to be moved")
                        daemon.send_signal(signal.SIGTERM)
                        assert daemon.wait(timeout=15) == 0
                        break
                    fingers = Fingers(rig)
                    if round_ % 2:  # kill while events wait in the journal, or move from it
                        with write_lock(database, rng.uniform(0.5, 1.5)):
                            time.sleep(rng.uniform(0.2, 1.0))
                        time.sleep(rng.uniform(0.0, 0.3))
                    else:
                        time.sleep(rng.uniform(0.3, 2.0))
                    daemon.send_signal(signal.SIGKILL)
                    daemon.wait(timeout=10)
                    fingers.end()
                finally:
                    if daemon.poll() is None:
                        daemon.kill()
                        daemon.wait(timeout=10)
        finally:
            log.close()
        door = rig.door
        assert isinstance(door, SimulatedDoorBoard)
        openings = _pulses(door.commands, wall_minus_mono)

    engine = create_db_engine(settings.database.url)
    try:
        with engine.connect() as conn:
            events = conn.execute(select(AccessEvent.kind, AccessEvent.at,
                                         AccessEvent.person_id)).all()
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    finally:
        engine.dispose()
    assert len(openings) >= 2 * ROUNDS, "too few openings: the campaign proved little"
    assert len(events) == len(set(events)), "an event was recorded twice"
    granted = sorted(at.timestamp() for kind, at, _ in events if kind == "granted")
    unmatched = _match(openings, granted)
    assert unmatched == [], (f"{len(unmatched)} of {len(openings)} openings have no granted "
                             f"event: {[dt.datetime.fromtimestamp(t) for t in unmatched]}")
    assert accessd_main(["--config", str(config), "verify-log"]) == 0


def _pulses(commands: list[Command], wall_minus_mono: float) -> list[float]:
    """When the board heard each relay pulse (wall-clock seconds); a retry, which repeats its
    command's sequence number, is the same pulse."""
    pulses: list[float] = []
    last: Command | None = None
    for command in commands:
        if command.name == "PULSE" and not (last is not None and last.name == "PULSE"
                                            and last.seq == command.seq):
            pulses.append(command.at + wall_minus_mono)
        last = command
    return pulses


def _running_since(path: Path, started: dt.datetime) -> bool:
    """The daemon reported, since ``started``, both devices connected (so it decides)."""
    report = read_status_file(path)
    return (report is not None and report.at > started and report.board_online
            and report.sensor_online)


def _pending(data_dir: Path) -> int:
    journal = ReserveJournal.open(data_dir / JOURNAL_FILE)
    try:
        return journal.pending
    finally:
        journal.close()


def _match(openings: list[float], granted: list[float]) -> list[float]:
    """The openings for which no granted event, recorded before it (within 3 s), is left."""
    unmatched, free = [], list(granted)
    for opened in sorted(openings):
        candidates = [t for t in free if opened - 3.0 <= t <= opened + 0.05]
        if not candidates:
            unmatched.append(opened)
            continue
        free.remove(candidates[-1])
    return unmatched
