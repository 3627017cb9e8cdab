"""A door that runs for months: 100,000 identifications through ``accessd run`` (its own
process, the production allocator), and its resident memory and open descriptors stay flat.

Marked ``slow`` (that marker does not keep it out of ``make test``), and run only with
ACCESSD_SOAK=1 (``make soak``): it takes about half an hour on the development machine. Set
ACCESSD_SOAK_IDENTIFICATIONS to run another number.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardware_sim.rig import SimRig
from tests.bench_door import make_installation, seed_site
from tests.installation import provision_door, set_config

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("ACCESSD_SOAK") != "1", reason="the soak runs with ACCESSD_SOAK=1 (make soak)")]

IDENTIFICATIONS = int(os.environ.get("ACCESSD_SOAK_IDENTIFICATIONS", "100000"))
WARM = IDENTIFICATIONS // 10  # caches and pools filled by then; from here on nothing may grow
RSS_SLACK_MB = 2.0  # allocator noise, not growth: 100,000 leaked bytes per decision would be GBs
WAIT = 10.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_memory_and_descriptors_stay_flat_over_100000_identifications(tmp_path: Path) -> None:
    config, settings = make_installation(tmp_path, **{"sensor.poll_interval_seconds": 0.001,
                                                      "access.backoff_seconds": 0})
    seed_site(settings, customers=1, persons=1, events=0, enrol={"soak-finger": 0})
    samples: list[tuple[int, float, int]] = []
    with SimRig(tmp_path / "sim") as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        provision_door(config)
        daemon = subprocess.Popen([sys.executable, "-m", "accessd.cli", "--config", str(config),
                                   "run", "--log-level", "WARNING"], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while rig.sensor.template_count < 1:
                assert time.monotonic() < deadline, "the daemon did not fill the sensor"
                time.sleep(0.1)
            for i in range(1, IDENTIFICATIONS + 1):
                # Known and unknown fingers in turn: grants and refusals, both recorded.
                rig.sensor.place("soak-finger" if i % 2 else f"stranger-{i % 50}")
                wait_for(rig, "Search")
                rig.sensor.forget_history()  # what follows is after the search
                rig.sensor.lift()
                wait_for(rig, "GenImg", 0x02)
                rig.sensor.forget_history()
                if i % WARM == 0:
                    samples.append((i, rss_mb(daemon.pid), descriptors(daemon.pid)))
            assert daemon.poll() is None, "the daemon died"
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
    warm, last = samples[0], samples[-1]
    assert last[1] - warm[1] < RSS_SLACK_MB, samples
    assert last[2] <= warm[2], samples  # not one descriptor more


def wait_for(rig: SimRig, instruction: str, code: int | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not any(h.instruction == instruction and (code is None or h.code == code)
                  for h in rig.sensor.history_since(0)):
        assert time.monotonic() < deadline, f"the daemon sent no {instruction}"
        time.sleep(0.0005)
