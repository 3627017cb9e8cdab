"""After a purge, the running daemon holds nothing of the purged customer: its memory, read
whole from /proc as an auditor with a debugger would, has no name, no e-mail and no template
ciphertext of theirs, while it did hold them before."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from accessd.db import create_db_engine, make_sessionmaker
from accessd.models import Customer, Finger, Person
from hardware_sim.rig import SimRig
from tests.bench_door import make_installation, seed_site
from tests.installation import provision_door, set_config

pytestmark = pytest.mark.slow

NAME, EMAIL, COMPANY = "Zqxvcanary Person", "zqxvmail@example.com", "Zqxvcanary Hosting BV"


def memory_hits(pid: int, canaries: list[bytes]) -> dict[bytes, int]:
    """How often each canary occurs in the readable memory of process ``pid``."""
    hits = dict.fromkeys(canaries, 0)
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            found = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if found is None or "r" not in found.group(3):
                continue
            start, end = int(found.group(1), 16), int(found.group(2), 16)
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except OSError:
                continue  # [vvar] and friends
            for canary in canaries:
                hits[canary] += chunk.count(canary)
    return hits


def until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_the_daemon_forgets_a_purged_customer(tmp_path: Path) -> None:
    config, settings = make_installation(tmp_path, **{"sensor.poll_interval_seconds": 0.01})
    seed_site(settings, customers=1, persons=1, events=0, enrol={"canary-finger": 0})
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.execute(update(Person).values(name=NAME, email=EMAIL))
        session.execute(update(Customer).values(name=COMPANY))
        ciphertext = session.scalars(select(Finger.template_ciphertext)).one()
    canaries = [NAME.encode(), EMAIL.encode(), COMPANY.encode(), NAME.encode("utf-16-le"),
                *(ciphertext[i:i + 16] for i in range(0, len(ciphertext) - 15, 64)),
                ciphertext[-16:]]
    with SimRig(tmp_path / "sim") as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        provision_door(config)
        daemon = subprocess.Popen([sys.executable, "-m", "accessd.cli", "--config", str(config),
                                   "run", "--log-level", "WARNING"], stderr=subprocess.DEVNULL)
        try:
            until(lambda: rig.sensor.template_count == 1, "the daemon to fill the sensor")
            rig.sensor.place("canary-finger")
            until(lambda: any(c.what == "relay_locked" and not c.value for c in rig.door.history),
                  "the door to open")
            rig.sensor.lift()
            before = memory_hits(daemon.pid, canaries)
            assert before[COMPANY.encode()] + before[NAME.encode()] > 0, (
                "the daemon never read the canary: this test would prove nothing")

            with sessions.begin() as session:
                session.execute(update(Customer).values(
                    contract_end=dt.date.today() - dt.timedelta(days=5)))
            purge = subprocess.run([sys.executable, "-m", "accessd.cli", "--config", str(config),
                                    "purge", "--now"], capture_output=True, text=True, check=False)
            assert purge.returncode == 0, purge.stderr
            until(lambda: rig.sensor.template_count == 0, "the sensor to forget the finger")
            time.sleep(1)  # the resync's command is finished just before the daemon lets go
            after = memory_hits(daemon.pid, canaries)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
    engine.dispose()
    assert after == dict.fromkeys(canaries, 0)
