"""A serial port with a per-command deadline, for libraries that read one byte at a time.

pyfingerprint opens ``serial.Serial(timeout=2)`` and reads byte by byte, so a silent sensor only
fails after 12 reads x 2 s, and a late reply desynchronises every later command. ``DeadlineSerial``
stands in for its port: every read gives up at the deadline the driver set for the current
command, writes are coalesced into one system call per packet burst, reads are served from a
read-ahead buffer, and every pyserial or OS failure becomes ``SensorDisconnectedError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import serial

from firmware_bridge.errors import BridgeError


class DeadlineSerial:
    """The subset of ``serial.Serial`` that pyfingerprint uses, with deadlines.

    :param make_timeout_error: builds the error raised when a read passes the deadline.
    :param make_disconnect_error: builds the error raised when the port fails.
    """

    _POLL = 0.05  # seconds one blocking read waits before the deadline is checked again

    def __init__(
        self,
        port: str,
        baud: int,
        make_timeout_error: Callable[[], BridgeError],
        make_disconnect_error: Callable[[BaseException], BridgeError],
    ) -> None:
        self.port = port
        self._make_timeout_error = make_timeout_error
        self._make_disconnect_error = make_disconnect_error
        self._deadline = float("inf")
        self._out = bytearray()
        self._in = bytearray()
        self.bytes_sent = 0
        self.bytes_received = 0
        try:
            self._serial = serial.Serial(port=port, baudrate=baud, timeout=self._POLL)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise self._make_disconnect_error(exc) from exc

    def set_deadline(self, seconds: float) -> None:
        """Give the next reads ``seconds`` from now in total."""
        self._deadline = time.monotonic() + seconds

    # --- what pyfingerprint calls ---------------------------------------------------------

    def write(self, data: bytes) -> int:
        self._out += data
        return len(data)

    def read(self, size: int = 1) -> bytes:
        """``size`` bytes, or the timeout error once the deadline has passed with the answer
        still incomplete.

        The deadline is judged on what has arrived, never on the clock alone: a process that
        was not scheduled for a while (a loaded Pi, a long garbage collection) finds the
        sensor's answer waiting in the kernel's buffer, and takes it. A starved daemon is slow,
        not cut off from its sensor.
        """
        self.flush()
        while len(self._in) < size:
            late = time.monotonic() >= self._deadline
            try:
                waiting = self._serial.in_waiting
                if not late:
                    chunk = self._serial.read(max(waiting, size - len(self._in)))
                else:  # only what already arrived, without waiting for more
                    chunk = self._serial.read(waiting) if waiting else b""
            except (serial.SerialException, OSError, TypeError) as exc:
                # pyserial raises TypeError when the port was closed under it
                raise self._make_disconnect_error(exc) from exc
            if late and not chunk:
                raise self._make_timeout_error()
            self.bytes_received += len(chunk)
            self._in += chunk
        out = bytes(self._in[:size])
        del self._in[:size]
        return out

    def flush(self) -> None:
        """Send what ``write`` collected, in one system call."""
        if not self._out:
            return
        data, self._out = bytes(self._out), bytearray()
        try:
            self._serial.write(data)
        except (serial.SerialException, OSError, TypeError) as exc:
            raise self._make_disconnect_error(exc) from exc
        self.bytes_sent += len(data)

    def reset_input_buffer(self) -> None:
        """Drop stray bytes (a late reply, line noise) so the next reply starts clean."""
        self._out.clear()
        self._in.clear()
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError, TypeError) as exc:
            raise self._make_disconnect_error(exc) from exc

    def drain(self, quiet: float) -> int:
        """Discard bytes until the line has been quiet for ``quiet`` seconds; return how many.

        After a timeout the sensor's late answer may still be on its way; reading it as the
        answer to the next command would be wrong, so the driver waits it out here. Bounded at
        four quiet periods, in case a faulty device babbles forever.
        """
        self._out.clear()
        self._in.clear()
        dropped = 0
        start = last = time.monotonic()
        while time.monotonic() - last < quiet and time.monotonic() - start < 4 * quiet:
            try:
                chunk = self._serial.read(max(self._serial.in_waiting, 1))
            except (serial.SerialException, OSError, TypeError) as exc:
                raise self._make_disconnect_error(exc) from exc
            if chunk:
                dropped += len(chunk)
                last = time.monotonic()
        return dropped

    def isOpen(self) -> bool:  # pyfingerprint's spelling
        return bool(self._serial.is_open)

    def open(self) -> None:
        try:
            self._serial.open()
        except (serial.SerialException, OSError) as exc:
            raise self._make_disconnect_error(exc) from exc

    def close(self) -> None:
        try:
            self._serial.close()
        except (serial.SerialException, OSError):
            pass  # closing a port that already failed: nothing left to release
