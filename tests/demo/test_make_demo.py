"""``make demo`` as a person runs it in a terminal (issue 12, finding 11): it prints only what
applies to the demo (no "edit the [sensor] and [door] ports"), the commands it prints work,
and Ctrl-C stops every part with one line, "demo stopped", and exit status 0: no "Error" from
make, nothing left running.

The terminal is a real pseudo-terminal and Ctrl-C is the byte the terminal turns into SIGINT
for its foreground process group, as a keyboard does. ``make`` runs the repository's Makefile
from a scratch folder (so ``demo-data/`` is the test's) with this interpreter and an
up-to-date stamp (so it installs nothing), and the panel on a free port.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs make"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_until(fd: int, seen: bytearray, *, ending: bytes | None, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal's last process has gone
            return ending is None
        if not chunk:
            return ending is None
        seen += chunk
        if ending is not None and ending in seen:
            return True
    return False


def test_make_demo_prints_what_applies_and_ctrl_c_stops_it_cleanly(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").touch()  # make's prerequisite of the stamp, here
    os.utime(tmp_path / "pyproject.toml", (0, 0))
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: make installs nothing
    env = {**os.environ, "ACCESSD_DEMO_PANEL": f"127.0.0.1:{_free_port()}",
           "PYTHONPATH": str(ROOT)}
    argv = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "demo",
            f"PY={sys.executable}", f"STAMP={stamp}"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: make in the terminal, in the scratch folder
        os.chdir(tmp_path)
        os.execvpe("make", argv, env)
    seen = bytearray()
    try:
        assert _read_until(fd, seen, ending=b"Initech's contract ended", within=180), \
            seen.decode(errors="replace")
        banner = seen.decode(errors="replace")
        assert "edit the [sensor] and [door] ports" not in banner
        assert "installation in demo-data/" in banner
        assert "accessd-sim-ctl place finger=alice" in banner

        ctl = [sys.executable, "-m", "hardware_sim.control", "--socket",
               str(tmp_path / "demo-data" / "sim" / "control.sock")]
        placed = subprocess.run([*ctl, "place", "finger=alice"], capture_output=True,
                                text=True, check=True, timeout=30)
        assert '"ok": true' in placed.stdout
        time.sleep(1.5)  # the daemon reads the finger and decides
        subprocess.run([*ctl, "lift"], check=True, capture_output=True, timeout=30)
        status = subprocess.run(
            [sys.executable, "-m", "accessd.cli", "--config",
             str(tmp_path / "demo-data" / "accessd.toml"), "events", "list", "--limit", "5"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert "Alice Jansen" in status.stdout, status.stdout + status.stderr

        os.write(fd, b"\x03")  # Ctrl-C, as the keyboard sends it
        assert _read_until(fd, seen, ending=None, within=60)
    finally:
        _, wait_status = os.waitpid(pid, 0)
        os.close(fd)
    output = seen.decode(errors="replace")
    tail = output[output.index("Initech's contract ended"):]
    assert os.waitstatus_to_exitcode(wait_status) == 0, tail
    assert "Error" not in tail and "Interrupt" not in tail and "Traceback" not in tail, tail
    assert re.search(r"^demo stopped\r?$", tail, re.M), tail
    assert "a demo process stopped" not in tail
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "demo-data")],
                               capture_output=True, text=True)
    assert leftovers.stdout == "", "every part of the demo stopped"
