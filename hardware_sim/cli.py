"""``accessd-sim``: the simulated sensor and door board, and a control socket to play the world.

It prints one JSON line with the pty paths and the control socket, then runs until SIGINT or
SIGTERM. The control socket takes one JSON object per line and answers one per line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
from pathlib import Path
from types import FrameType

from hardware_sim.rig import RigOptions, SimRig

MAX_REQUEST = 4096  # bytes in one control line; longer lines are refused, not buffered


class _ControlHandler(socketserver.StreamRequestHandler):
    server: _ControlServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_REQUEST + 1)
            if not line:
                return
            if len(line) > MAX_REQUEST:
                self._answer({"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"})
                return
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError as exc:
                self._answer({"ok": False, "error": f"not JSON: {exc}"})
                continue
            if not isinstance(request, dict):
                self._answer({"ok": False, "error": "send one JSON object per line"})
                continue
            self._answer(self.server.rig.handle(request))

    def _answer(self, answer: dict[str, object]) -> None:
        self.wfile.write(json.dumps(answer).encode() + b"\n")
        self.wfile.flush()


class _ControlServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, rig: SimRig) -> None:
        self.rig = rig
        if path.exists():
            path.unlink()
        super().__init__(str(path), _ControlHandler)
        os.chmod(path, 0o600)  # playing the world at the door is for the owner only


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="accessd-sim", description=__doc__)
    p.add_argument("--dir", type=Path, help="where to create the port links and control socket")
    p.add_argument("--capacity", type=int, default=1000, help="sensor library slots")
    p.add_argument("--password", type=lambda s: int(s, 0), default=0,
                   help="sensor password at power-up (factory default 0)")
    p.add_argument("--baud", type=int, default=None,
                   help="emulate wire time at this baud rate (default: no timing emulation)")
    p.add_argument("--image-time", type=float, default=0.0, help="seconds per image capture")
    p.add_argument("--search-time", type=float, default=0.0, help="seconds per library search")
    p.add_argument("--empty-image-time", type=float, default=None,
                   help="seconds a look for a finger takes when there is none (default: image)")
    p.add_argument("--frr", type=float, default=0.0, help="false-reject rate, 0..1")
    p.add_argument("--far", type=float, default=0.0, help="false-accept rate, 0..1")
    p.add_argument("--door", choices=("doorboard", "lcus"), default="doorboard")
    p.add_argument("--heartbeat-timeout-ms", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = RigOptions(
        capacity=args.capacity, password=args.password, baud=args.baud,
        image_time=args.image_time, search_time=args.search_time,
        empty_image_time=args.empty_image_time,
        false_reject_rate=args.frr, false_accept_rate=args.far, door_kind=args.door,
        heartbeat_timeout_ms=args.heartbeat_timeout_ms, seed=args.seed)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        rig = SimRig(args.dir, options)
    except ValueError as exc:
        print(f"accessd-sim: {exc}", file=sys.stderr)
        return 2
    with rig:
        server = _ControlServer(rig.control_path, rig)
        thread = threading.Thread(target=server.serve_forever, name="control", daemon=True)
        thread.start()
        print(json.dumps(rig.paths()), flush=True)
        try:
            stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            rig.control_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
