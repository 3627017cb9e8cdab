"""``accessd-sim`` as a person, a test or a demo script uses it: a process, JSON, a socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_bridge.doorboard import SerialDoorBoard, provision_board
from firmware_bridge.firmware import doorlink
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.control import SimControl


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    with subprocess.Popen(
        [sys.executable, "-m", "hardware_sim.cli", "--dir", str(tmp_path / "sim"),
         "--capacity", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            yield proc, json.loads(line)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)


def test_prints_one_json_line_naming_the_ports_and_the_control_socket(sim_process) -> None:
    _, paths = sim_process
    assert set(paths) == {"sensor", "door", "control"}
    for path in paths.values():
        assert os.path.exists(path)


def test_state_reports_relay_door_finger_and_templates(sim_process) -> None:
    _, paths = sim_process
    with SimControl(paths["control"]) as control:
        assert control.send("state") == {
            "ok": True, "relay": "locked", "door": "closed", "finger": None, "templates": 0,
            "tamper": False, "sensor_plugged": True, "door_plugged": True,
            "door_provisioned": False}
        assert control.send("place", finger="alice-1")["finger"] == "alice-1"
        assert control.send("lift")["finger"] is None


def test_a_locked_door_cannot_be_pushed_open_but_can_be_forced(sim_process) -> None:
    _, paths = sim_process
    with SimControl(paths["control"]) as control:
        refused = control.send("open_door")
        assert refused["ok"] is False and "locked" in refused["error"]
        assert control.send("force_door")["door"] == "open"
        assert control.send("close_door")["door"] == "closed"


def test_the_real_drivers_work_through_the_printed_paths(sim_process) -> None:
    _, paths = sim_process
    sensor = ZfmSensor(paths["sensor"], timeout=1)
    sensor.open()
    assert sensor.capacity() == 50
    sensor.close()
    key = os.urandom(32)
    with SimControl(paths["control"]) as control:
        assert control.send("state")["door_provisioned"] is False
    provision_board(paths["door"], key)
    door = SerialDoorBoard(paths["door"], link_key=key)
    door.open()
    try:
        door.pulse(3)
        with SimControl(paths["control"]) as control:
            assert control.send("state")["relay"] == "unlocked"
            assert control.send("open_door")["door"] == "open"
    finally:
        door.close()


def test_an_attacker_on_the_cable_is_played_through_the_control_socket(sim_process) -> None:
    """What a demo shows an auditor: a replayed and a forged PULSE, the relay unmoved."""
    _, paths = sim_process
    key = os.urandom(32)
    provision_board(paths["door"], key)
    door = SerialDoorBoard(paths["door"], link_key=key)
    door.open()
    try:
        door.pulse(0.2)
        deadline = time.monotonic() + 5
        with SimControl(paths["control"]) as control:
            while control.send("state")["relay"] != "locked":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert control.send("replay", command="PULSE")["ok"]
            forged = doorlink.encode(doorlink.PULSE, 9, doorlink.pack_pulse(30_000) + bytes(20))
            assert control.send("inject", to="board", hex=forged.hex())["ok"]
            reasons = []
            while len(reasons) < 2:
                event = door.next_event(5)
                assert event is not None
                if event.kind.value == "wire_rejected":
                    reasons.append(event.reason)
            assert sorted(reasons) == ["bad MAC", "replayed frame"]
            assert control.send("state")["relay"] == "locked"
            assert control.send("inject", to="moon", hex="00")["ok"] is False
    finally:
        door.close()


def test_sensor_fault_ops_unplug_and_replug_the_port(sim_process) -> None:
    _, paths = sim_process
    with SimControl(paths["control"]) as control:
        assert control.send("fault", device="sensor", kind="unplug")["sensor_plugged"] is False
        assert not os.path.exists(paths["sensor"])
        assert control.send("fault", device="sensor", kind="replug")["sensor_plugged"] is True
    sensor = ZfmSensor(paths["sensor"], timeout=1)
    sensor.open()
    assert sensor.template_count() == 0
    sensor.close()


@pytest.mark.parametrize("request_line, error", [
    (b"not json\n", "not JSON"),
    (b"[1, 2]\n", "one JSON object"),
    (b'{"op": "fly"}\n', "unknown op"),
    (b'{"op": "place"}\n', "finger name"),
    (b'{"op": "keys", "digits": "12a"}\n', "digits"),
    (b'{"op": "fault", "device": "toaster", "kind": "unplug"}\n', "device"),
])
def test_bad_control_requests_get_a_clear_error_and_the_socket_stays_usable(
        sim_process, request_line: bytes, error: str) -> None:

    _, paths = sim_process
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(paths["control"])
        stream = sock.makefile("rwb")
        stream.write(request_line)
        stream.flush()
        answer = json.loads(stream.readline())
        assert answer["ok"] is False and error in answer["error"]
        stream.write(b'{"op": "state"}\n')
        stream.flush()
        assert json.loads(stream.readline())["ok"] is True


def test_sigterm_stops_it_and_removes_the_socket(sim_process) -> None:
    proc, paths = sim_process
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not os.path.exists(paths["control"])
