"""A door's worth of simulated hardware: one sensor and one door board (or LCUS relay).

``SimRig`` is what ``accessd-sim`` runs and what tests start in-process; ``handle`` is the one
place where control requests (JSON objects from the control socket) become actions.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_bridge.firmware import doorlink
from hardware_sim.door import SimulatedDoorBoard, SimulatedLcusRelay
from hardware_sim.errors import ControlError
from hardware_sim.port import PtyPort
from hardware_sim.sensor import SimulatedSensor


@dataclass(frozen=True)
class RigOptions:
    """How to build the rig. Times are seconds; ``baud=None`` turns timing emulation off."""

    capacity: int = 1000
    password: int = 0
    baud: int | None = None
    door_baud: int | None = None
    image_time: float = 0.0
    search_time: float = 0.0
    store_time: float = 0.0
    empty_image_time: float | None = None
    false_reject_rate: float = 0.0
    false_accept_rate: float = 0.0
    door_kind: str = "doorboard"
    heartbeat_timeout_ms: int = 3000
    seed: int = 0


class SimRig:
    """Both simulated devices, their pty links and their control verbs."""

    def __init__(self, directory: Path | None = None, options: RigOptions | None = None) -> None:
        self.options = options or RigOptions()
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="accessd-sim-")
        self.directory = Path(directory or self._tmp.name)  # type: ignore[union-attr]
        self.directory.mkdir(parents=True, exist_ok=True)
        o = self.options
        self.sensor = SimulatedSensor(
            link=self.directory / "sensor", capacity=o.capacity, password=o.password,
            baud=o.baud, image_time=o.image_time, search_time=o.search_time,
            store_time=o.store_time, empty_image_time=o.empty_image_time,
            false_reject_rate=o.false_reject_rate,
            false_accept_rate=o.false_accept_rate, seed=o.seed)
        self.door: SimulatedDoorBoard | SimulatedLcusRelay
        if o.door_kind == "lcus":
            self.door = SimulatedLcusRelay(link=self.directory / "door")
        elif o.door_kind == "doorboard":
            self.door = SimulatedDoorBoard(link=self.directory / "door", baud=o.door_baud,
                                           heartbeat_timeout_ms=o.heartbeat_timeout_ms)
        else:
            raise ValueError(f"unknown door kind {o.door_kind!r}: use 'doorboard' or 'lcus'")

    @property
    def control_path(self) -> Path:
        return self.directory / "control.sock"

    def start(self) -> None:
        self.sensor.start()
        self.door.start()

    def stop(self) -> None:
        self.door.stop()
        self.sensor.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> SimRig:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths(self) -> dict[str, str]:
        return {"sensor": self.sensor.path, "door": self.door.path,
                "control": str(self.control_path)}

    # --- control verbs ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        door = self.door
        return {
            "relay": "locked" if door.relay_locked else "unlocked",
            "door": "open" if getattr(door, "door_open", False) else "closed",
            "finger": self.sensor.finger,
            "templates": self.sensor.template_count,
            "tamper": bool(getattr(door, "tamper_on", False)),
            "sensor_plugged": self.sensor.port.plugged,
            "door_plugged": door.port.plugged,
            "door_provisioned": bool(getattr(door, "provisioned", False)),
        }

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one control request; the answer always has ``ok``."""
        op = request.get("op")
        try:
            if op == "state":
                return {"ok": True, **self.state()}
            if op == "place":
                finger = request.get("finger")
                if not isinstance(finger, str) or not finger:
                    raise ControlError("'place' needs a finger name, e.g. \"alice-1\"")
                self.sensor.place(finger, str(request.get("quality", "good")))
            elif op == "lift":
                self.sensor.lift()
            elif op in ("open_door", "close_door", "force_door", "press_exit", "tamper", "keys",
                        "provision_jumper", "inject", "replay"):
                self._door_op(op, request)
            elif op == "fault":
                self._fault(request)
            else:
                raise ControlError(
                    f"unknown op {op!r}; use place, lift, open_door, close_door, force_door, "
                    "press_exit, keys, tamper, provision_jumper, inject, replay, fault or state")
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except (ValueError, RuntimeError) as exc:  # the simulated world refused (door locked...)
            return {"ok": False, "error": str(exc)}
        return {"ok": True, **self.state()}

    def _door_op(self, op: str, request: dict[str, Any]) -> None:
        door = self.door
        if not isinstance(door, SimulatedDoorBoard):
            raise ControlError(f"{op!r} needs the door board; an LCUS relay has no inputs")
        if op == "open_door":
            door.open_door()
        elif op == "close_door":
            door.close_door()
        elif op == "force_door":
            door.force_door()
        elif op == "press_exit":
            door.press_exit()
        elif op == "tamper":
            door.tamper(bool(request.get("on", True)))
        elif op == "provision_jumper":
            door.provision_jumper(bool(request.get("closed", True)))
        elif op == "inject":  # an attacker on the cable: raw bytes toward the board or the host
            to, data = request.get("to", "board"), request.get("hex")
            try:
                raw = bytes.fromhex(data) if isinstance(data, str) else None
            except ValueError:
                raw = None
            if raw is None or to not in ("board", "host"):
                raise ControlError("'inject' needs \"to\": \"board\" or \"host\" and \"hex\": "
                                   "the bytes, e.g. \"acce0401...\"")
            (door.inject_to_board if to == "board" else door.inject_to_host)(raw)
        elif op == "replay":  # an attacker replays the last frame of a kind the board heard
            name = str(request.get("command", "PULSE"))
            code = next((c for c, n in doorlink.TYPE_NAMES.items() if n == name), None)
            heard = [f for f in door.heard_frames if code is not None and f[4] == code]
            if not heard:
                raise ControlError(f"the board heard no {name} frame to replay")
            door.inject_to_board(heard[-1])
        else:
            digits = request.get("digits")
            if not isinstance(digits, str) or not digits or any(
                    c not in "0123456789*#" for c in digits):
                raise ControlError("'keys' needs digits from 0-9, * and #, e.g. \"1234#\"")
            door.keys(digits)

    def _fault(self, request: dict[str, Any]) -> None:
        device, kind = request.get("device"), request.get("kind")
        ports: dict[str, PtyPort] = {"sensor": self.sensor.port, "door": self.door.port}
        if device not in ports:
            raise ControlError("'fault' needs \"device\": \"sensor\" or \"door\"")
        port = ports[str(device)]
        if kind == "unplug":
            port.unplug()
        elif kind == "replug":
            port.faults.silent = port.faults.mute = False
            port.faults.slow = 0.0
            port.faults.corrupt_next = 0
            port.replug()
        elif kind == "garbage":
            port.inject_garbage(int(request.get("bytes", 16)))
        elif kind == "silence":
            port.faults.silent = True
        elif kind == "mute":
            port.faults.mute = True
        elif kind == "lose_answers":
            door = self.door
            if device != "door" or not isinstance(door, SimulatedDoorBoard):
                raise ControlError("'lose_answers' needs the door board")
            door.lose_answers(str(request.get("command", "PULSE")), int(request.get("count", 1)))
        elif kind == "badsum":
            port.faults.corrupt_next = int(request.get("count", 1))
        elif kind == "slow":
            port.faults.slow = float(request.get("seconds", 0.5))
        elif kind == "clear":
            port.faults.silent = port.faults.mute = False
            port.faults.slow = 0.0
            port.faults.corrupt_next = 0
        else:
            raise ControlError(
                "'fault' kind must be unplug, replug, garbage, silence, mute, lose_answers, "
                "badsum, slow or clear")
