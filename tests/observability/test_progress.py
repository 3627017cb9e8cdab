"""Long commands show how far they got: rich's bar on a terminal (a real pty), plain lines in a
pipe, with counts and the time left; the daemon's resync reports its counts on the command's
row, which the CLI follows."""

from __future__ import annotations

import datetime as dt
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from accessd.db import create_db_engine, make_sessionmaker
from accessd.models import SensorSlot
from accessd.progress import PlainProgress, describe
from hardware_sim.rig import RigOptions, SimRig
from tests.bench_door import make_installation, seed_site
from tests.installation import set_config

FINGERS = 25
ACCESSD = [sys.executable, "-m", "accessd.cli"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_pty(command: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run ``command`` with stdout and stderr on a pseudo-terminal, as a person would see it."""
    master, slave = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env,
                               close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the pty's other side has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=10)
    finally:
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def door_with_fingers(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A running ``accessd run`` whose database holds FINGERS real templates, the sensor filled,
    and then this door's record of its slots forgotten: the next resync uploads them all."""
    config, settings = make_installation(tmp_path, **{"metrics.enabled": False})
    seed_site(settings, customers=1, persons=FINGERS, events=0,
              enrol={f"finger-{i}": i for i in range(FINGERS)})
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    # Real timing: 57600 baud, and a flash write per stored template (about 0.1 s on an R307).
    with SimRig(tmp_path / "sim", RigOptions(baud=57600, store_time=0.1)) as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        daemon = subprocess.Popen([*ACCESSD, "--config", str(config), "run"],
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while rig.sensor.template_count < FINGERS:
                assert time.monotonic() < deadline, "the daemon did not fill the sensor"
                time.sleep(0.1)
            time.sleep(0.5)  # its own reconciliation finishes recording the last slot
            with sessions.begin() as session:
                session.execute(delete(SensorSlot))
            yield config
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
    engine.dispose()


@pytest.mark.slow
def test_resync_draws_a_bar_with_counts_and_time_left_on_a_terminal(door_with_fingers: Path
                                                                    ) -> None:
    code, screen = run_on_pty([*ACCESSD, "--config", str(door_with_fingers), "resync"])
    assert code == 0, screen
    text = ANSI.sub("", screen)
    assert "━" in text, "no bar drawn"
    assert f"{FINGERS}/{FINGERS} templates" in text
    assert "ETA" in text
    counts = {int(n) for n in re.findall(rf"\b(\d+)/{FINGERS} templates", text)}
    assert counts & set(range(1, FINGERS)), f"the bar never showed work under way: {text!r}"
    assert f"sensor in step: {FINGERS} uploaded" in text
    assert "\x1b[" in screen  # drawn for a terminal, not plain lines


@pytest.mark.slow
def test_resync_prints_plain_progress_lines_into_a_pipe(door_with_fingers: Path) -> None:
    done = subprocess.run([*ACCESSD, "--config", str(door_with_fingers), "resync"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "\x1b" not in done.stderr and "━" not in done.stderr
    progress = [line for line in lines if line.startswith("resync: ")]
    assert progress, done.stderr
    for line in progress:
        assert re.fullmatch(rf"resync: \d+/{FINGERS} templates(, (\d+h)?(\d+m)?\d+s left)?",
                            line), line
    assert progress[-1] == f"resync: {FINGERS}/{FINGERS} templates"
    assert any(re.search(r"\d+s left", line) for line in progress), progress
    assert done.stdout.strip().endswith(f"sensor in step: {FINGERS} uploaded, 0 wiped, 0 kept")


def test_a_backup_shows_its_sections_on_a_terminal_and_in_a_pipe(tmp_path: Path) -> None:
    config, settings = make_installation(tmp_path)
    seed_site(settings, customers=3, persons=3, events=50)
    code, screen = run_on_pty([*ACCESSD, "--config", str(config), "backup"])
    assert code == 0, screen
    text = ANSI.sub("", screen)
    assert "━" in text and "5/5 sections" in text and "backup written and verified" in text
    piped = subprocess.run([*ACCESSD, "--config", str(config), "backup"], capture_output=True,
                           text=True, timeout=60, check=False)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr.splitlines()[0] == "backup: 0/5 sections"
    assert piped.stderr.splitlines()[-1] == "backup: 5/5 sections"
    assert piped.stdout.startswith("backup written and verified")  # stdout keeps the result


@pytest.mark.parametrize(("done", "total", "elapsed", "line"), [
    (120, 1000, 20.0, "resync: 120/1000 templates, 2m27s left"),
    (0, 1000, 5.0, "resync: 0/1000 templates"),
    (1000, 1000, 120.0, "resync: 1000/1000 templates"),
    (7, None, 3.0, "resync: 7 templates"),
    (1, 2, 7200.0, "resync: 1/2 templates, 2h00m left"),
])
def test_plain_progress_says_count_and_time_left(done: int, total: int | None, elapsed: float,
                                                 line: str) -> None:
    assert describe("resync", "templates", done, total, elapsed) == line


def test_plain_progress_prints_a_line_per_tenth_not_per_call(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("w") as stream:
        progress = PlainProgress("export", "records", stream=stream, monotonic=lambda: 0.0)
        for n in range(1001):
            progress(n, 1000)
        progress.close()
    lines = out.read_text().splitlines()
    assert lines[0] == "export: 0/1000 records"
    assert lines[-1] == "export: 1000/1000 records"
    assert len(lines) == 11


@pytest.fixture
def logging_restored() -> Any:
    """Each in-process command sets the root logger up anew: put back what was there."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("accessd").setLevel(logging.NOTSET)


def test_export_rotation_restore_and_purge_each_report_their_counts_off_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], logging_restored: None) -> None:
    from sqlalchemy import select, update

    from accessd.cli.main import main as accessd_main
    from accessd.models import Customer

    config, settings = make_installation(tmp_path)
    seed_site(settings, customers=2, persons=4, events=3000)
    engine = create_db_engine(settings.database.url)
    with make_sessionmaker(engine)() as db:
        first = str(db.scalars(select(Customer.public_id).order_by(Customer.id)).first())
    engine.dispose()  # a restore needs every other connection closed

    printed = ""

    def progress_of(*argv: str) -> list[str]:
        nonlocal printed
        capsys.readouterr()
        assert accessd_main(["--config", str(config), *argv]) == 0, capsys.readouterr()
        printed, err = capsys.readouterr()
        return err.splitlines()

    export = progress_of("export", "customer", first, "--out", str(tmp_path / "c.zip"))
    assert export[0] == "export: 0/3000 records" and export[-1] == "export: 3000/3000 records"
    rotation = progress_of("keys", "rotate")
    assert rotation[-1] == "key rotation: 2/2 keys"
    assert progress_of("backup")[-1] == "backup: 4/4 sections"
    backup = Path(re.search(r"verified: (\S+) \(", printed).group(1))  # type: ignore[union-attr]
    size = backup.stat().st_size
    restore = progress_of("restore", str(backup), "--yes-i-stopped-the-daemon")
    assert restore[-1] == f"restore: {size}/{size} bytes"
    engine = create_db_engine(settings.database.url)
    with make_sessionmaker(engine).begin() as db:
        db.execute(update(Customer).where(Customer.public_id == uuid.UUID(first)).values(
            contract_end=dt.date.today() - dt.timedelta(days=3)))
    engine.dispose()
    purge = progress_of("purge", "--now")
    assert purge[-1] == "purge: 1500/1500 events"
