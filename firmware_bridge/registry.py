"""Drivers chosen by name from the configuration, as python-can's ``BACKENDS``.

Modules are imported only when their driver is chosen, so a door with an LCUS relay never
imports the door-board driver, and nothing imports pyfingerprint until a
sensor is opened. There is no simulator here: the simulator lives below the serial port, so the
real drivers talk to it, and it is chosen by giving its port's path, never as a silent fallback.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from firmware_bridge.door import DoorBoard
from firmware_bridge.errors import BridgeInitError
from firmware_bridge.sensor import Sensor

SENSOR_DRIVERS: dict[str, str] = {
    "zfm": "firmware_bridge.zfm_sensor:ZfmSensor",
}
DOOR_DRIVERS: dict[str, str] = {
    "doorboard": "firmware_bridge.doorboard:SerialDoorBoard",
    "lcus": "firmware_bridge.lcus:LcusRelay",
}


def make_sensor(driver: str, port: str, **options: Any) -> Sensor:
    """Build (not open) the sensor driver named ``driver``."""
    sensor: Sensor = _load("sensor", SENSOR_DRIVERS, driver)(port, **options)
    return sensor


def make_door(driver: str, port: str, **options: Any) -> DoorBoard:
    """Build (not open) the door driver named ``driver``."""
    door: DoorBoard = _load("door", DOOR_DRIVERS, driver)(port, **options)
    return door


def _load(kind: str, table: dict[str, str], name: str) -> Any:
    if name not in table:
        close = difflib.get_close_matches(name, table, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise BridgeInitError(
            f"unknown {kind} driver {name!r}{hint} (known: {', '.join(sorted(table))})")
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)
