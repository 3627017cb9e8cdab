"""A client for ``accessd-sim``'s control socket, for tests and demo scripts."""

from __future__ import annotations

import json
import socket
from typing import Any


class SimControl:
    """Sends control requests over the Unix socket and returns the answers."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(path)
        self._file = self._sock.makefile("rwb")

    def send(self, op: str, **fields: Any) -> dict[str, Any]:
        self._file.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        self._file.flush()
        answer: dict[str, Any] = json.loads(self._file.readline())
        return answer

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``accessd-sim-ctl OP [key=value ...]``: one control request from a shell.

    ``accessd-sim-ctl place finger=alice``, ``accessd-sim-ctl keys digits='4711*123456#'``,
    ``accessd-sim-ctl fault device=sensor kind=unplug``. The socket is ``--socket PATH``,
    else ``$ACCESSD_SIM_CONTROL``, else the demo's ``demo-data/sim/control.sock``.
    """
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(prog="accessd-sim-ctl", description=main.__doc__)
    parser.add_argument("--socket", default=os.environ.get("ACCESSD_SIM_CONTROL",
                                                           "demo-data/sim/control.sock"))
    parser.add_argument("op")
    parser.add_argument("fields", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    fields: dict[str, Any] = {}
    for item in args.fields:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"{item!r} is not key=value")
        fields[key] = json.loads(value) if value in ("true", "false") else value
    try:
        with SimControl(args.socket) as control:
            answer = control.send(args.op, **fields)
    except OSError as exc:
        print(f"accessd-sim-ctl: cannot reach {args.socket}: {exc.strerror}; is the simulator "
              "running (make demo)?", file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
