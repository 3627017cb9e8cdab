"""The door daemon's /metrics, scraped from a real ``accessd run`` against the simulator: the
counters a site's Prometheus alerts on move when the door decides."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from accessd.db import create_db_engine, make_sessionmaker
from accessd.models import Person
from hardware_sim.rig import SimRig
from tests.bench_door import make_installation, seed_site
from tests.installation import set_config

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at http://127.0.0.1:port/metrics, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def up(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def test_a_running_door_counts_its_decisions_on_its_metrics_endpoint(tmp_path: Path) -> None:
    port = free_port()
    config, settings = make_installation(tmp_path, **{
        "sensor.poll_interval_seconds": 0.01, "metrics.daemon_bind": f"127.0.0.1:{port}"})
    seed_site(settings, customers=1, persons=1, events=0, enrol={"known-finger": 0})
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    with SimRig(tmp_path / "sim") as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        daemon = subprocess.Popen([sys.executable, "-m", "accessd.cli", "--config", str(config),
                                   "run"], stderr=subprocess.DEVNULL)
        try:
            until(lambda: rig.sensor.template_count == 1, "the daemon to fill the sensor")
            until(lambda: up(port), "the metrics endpoint")
            before = scrape(port)
            assert value(before, "accessd_device_connected", device="sensor") == 1
            assert value(before, "accessd_spool_depth") == 0
            assert value(before, "accessd_commands_pending") == 0
            assert value(before, "accessd_alarms_open", kind="tamper") == 0
            assert ("accessd_decision_seconds_count", (("method", "finger"),)) not in before

            rig.sensor.place("known-finger")
            until(lambda: value(scrape(port), "accessd_decisions_total", result="granted",
                                rule="allowed", method="finger") == 1, "a granted decision")
            rig.sensor.lift()
            time.sleep(0.3)
            with sessions.begin() as session:
                session.execute(update(Person).values(restricted=True))
            rig.sensor.place("known-finger")
            until(lambda: value(scrape(port), "accessd_decisions_total", result="denied",
                                rule="person_restricted", method="finger") == 1,
                  "a refusal of a restricted person")
            rig.sensor.lift()
            time.sleep(0.3)
            rig.sensor.place("a-stranger")
            until(lambda: value(scrape(port), "accessd_decisions_total",
                                result="unknown_finger", rule="no_match", method="finger") >= 1,
                  "an unknown finger refused")
            rig.sensor.lift()
            after = scrape(port)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
    engine.dispose()
    assert value(after, "accessd_decision_seconds_count", method="finger") >= 3
    # Finger to relay within the sensor's own time: the histogram has real observations.
    assert value(after, "accessd_decision_seconds_bucket", method="finger", le="5.0") >= 3
    assert value(after, "accessd_device_faults_total", device="sensor") == 0
    assert value(after, "accessd_scheduler_job_runs_total", job="privacy-reconcile",
                 outcome="success") >= 1
    assert value(after, "accessd_scheduler_job_last_success_timestamp_seconds",
                 job="privacy-reconcile") > 0
    assert value(after, "process_resident_memory_bytes") > 0


def test_a_metrics_address_that_is_not_host_and_port_stops_the_daemon_with_what_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from accessd.cli.main import main as accessd_main

    config, _settings = make_installation(tmp_path, **{"metrics.daemon_bind": "localhost"})
    with SimRig(tmp_path / "sim") as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        assert accessd_main(["--config", str(config), "run"]) == 1
    err = capsys.readouterr().err
    assert "accessd: [metrics]: 'localhost' is not host:port (e.g. 127.0.0.1:9108)" in err
    assert "enabled = false" in err and "Traceback" not in err
