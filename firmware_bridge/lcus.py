"""An LCUS-1 type USB relay as a door board: the cheapest install, with no inputs at all.

The relay takes 4-byte commands (``A0 01 01 A2`` on, ``A0 01 00 A1`` off) and never answers.
On means unlocked. It cannot relock by itself: a pulse ends only because a timer on the host
sends "off". If the host hangs or the cable is pulled during a pulse, the door stays unlocked
until power or the host comes back. That is why the door board (``doorboard.py``), which relocks
on its own, is the preferred choice; use this relay only where that risk is accepted.
"""

from __future__ import annotations

import logging
import threading
import time

import serial

from firmware_bridge.door import DoorEvent, DoorInputs
from firmware_bridge.doorboard import WRITE_TIMEOUT, wrap_serial_errors
from firmware_bridge.errors import DoorError, DoorInitError, DoorOperationError

log = logging.getLogger(__name__)

RELAY_ON = bytes.fromhex("A00101A2")  # unlocked
RELAY_OFF = bytes.fromhex("A00100A1")  # locked


class LcusRelay:
    """An LCUS-1 relay on ``port``; ``pulse()`` relocks with a host-side timer."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, port: str, *, baud: int = 9600) -> None:
        self.port = port
        self.baud = baud
        self._serial: serial.Serial | None = None
        self._lock = threading.Lock()  # the timer thread writes too
        self._timer: threading.Timer | None = None
        self._generation = 0
        self._locked = True

    def open(self) -> None:
        """Open the port and lock: the relay's state before is unknown.

        :raises DoorInitError: the port cannot be opened or written.
        """
        self._release()
        with wrap_serial_errors(self.port, "opening the port", DoorInitError):
            self._serial = serial.Serial(self.port, self.baud, timeout=0,
                                         write_timeout=WRITE_TIMEOUT)
        try:
            self.lock()
        except DoorError as exc:
            self._release()
            raise DoorInitError(f"LCUS relay on {self.port} could not be locked: {exc}") from exc

    def close(self) -> None:
        """Lock, then release the port. Safe to call twice and after a failure."""
        if self._serial is not None:
            try:
                self.lock()
            except DoorError as exc:
                log.warning("could not lock the LCUS relay on %s while closing: %s", self.port, exc)
        self._release()

    def pulse(self, seconds: float) -> None:
        """Switch on, and start a timer that switches off after ``seconds``."""
        if not seconds > 0:
            raise DoorOperationError(f"a pulse must last more than 0 s, got {seconds}")
        with self._lock:
            self._cancel_timer()
            self._send(RELAY_ON)
            self._locked = False
            # A timer already firing cannot be cancelled: it checks its generation instead.
            self._generation += 1
            self._timer = threading.Timer(seconds, self._relock_after, args=(self._generation,))
            self._timer.daemon = True
            self._timer.start()

    def lock(self) -> None:
        """Switch off now."""
        with self._lock:
            self._cancel_timer()
            self._send(RELAY_OFF)
            self._locked = True

    def heartbeat(self) -> None:
        """Nothing to tell: this relay has no watchdog (see the module's docstring)."""
        if self._serial is None:
            raise self._not_open()

    def inputs(self) -> DoorInputs:
        """Only the lock's state as last commanded; the relay has no inputs."""
        return DoorInputs(door_open=False, exit_pressed=False, tamper=False, locked=self._locked)

    def next_event(self, timeout: float) -> DoorEvent | None:
        """Waits ``timeout`` seconds and returns ``None``: this relay reports nothing."""
        if self._serial is None:
            raise self._not_open()
        time.sleep(max(0.0, timeout))
        return None

    # --- internals -----------------------------------------------------------------------------

    def _relock_after(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # a later pulse or lock() took over
            self._timer = None
            try:
                self._send(RELAY_OFF)
                self._locked = True
            except DoorError as exc:
                log.error("LCUS relay on %s could not be relocked after a pulse: %s; the door "
                          "may be UNLOCKED: check the USB cable at once", self.port, exc)

    def _send(self, command: bytes) -> None:
        port = self._serial
        if port is None:
            raise self._not_open()
        with wrap_serial_errors(self.port, "writing"):
            port.write(command)

    def _cancel_timer(self) -> None:
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release(self) -> None:
        with self._lock:
            self._cancel_timer()
            port, self._serial = self._serial, None
        if port is not None:
            try:
                with wrap_serial_errors(self.port, "closing"):
                    port.close()
            except DoorError as exc:
                log.debug("closing %s: %s", self.port, exc)

    def _not_open(self) -> DoorOperationError:
        return DoorOperationError(f"LCUS relay on {self.port} is not open; call open() first")
