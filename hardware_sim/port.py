"""The far end of a serial cable: a pseudo-terminal with a stable path, wire timing and faults.

The device under simulation reads and writes the pty's master side; drivers open the slave side
through a symlink (``path``), as they would open ``/dev/serial/by-id/...`` on a Pi. Unplugging
closes the pty and removes the link, so a driver sees the same failures as with a pulled USB
cable: reads and writes fail, and reopening finds no such file until the device is replugged.

Two facts about pyfingerprint shape this module (see ``shared/notes/pyfingerprint.md``): the
slave side is kept open here, or a read on the master returns EIO whenever the driver closes and
reopens its port; and it is put in raw mode up front, or byte 0x03 becomes ^C.
"""

from __future__ import annotations

import os
import pty
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BITS_PER_BYTE = 10  # start bit, 8 data bits, stop bit


def wire_time(n_bytes: int, baud: int) -> float:
    """Seconds that ``n_bytes`` take on a UART at ``baud``."""
    return n_bytes * BITS_PER_BYTE / baud


@dataclass
class Faults:
    """Faults a test can switch on for one port. All off by default."""

    silent: bool = False  # swallow every byte; answer nothing
    mute: bool = False  # hear everything, answer nothing (the answers are lost on the way)
    slow: float = 0.0  # extra seconds before every answer
    corrupt_next: int = 0  # flip the last byte of the next N answers (breaks their checksum)


class PtyPort:
    """One simulated serial line.

    :param link: where the stable path to the slave side is created (replaced if present).
    :param on_bytes: called on the reader thread with every chunk the driver sent.
    :param baud: when given, bytes take their wire time in both directions; otherwise none.
    :param on_replug: called after a replug, as power returning to the device would be.
    """

    def __init__(
        self,
        link: Path,
        on_bytes: Callable[[bytes], None],
        baud: int | None = None,
        on_replug: Callable[[], None] | None = None,
    ) -> None:
        self.link = Path(link)
        self.baud = baud
        self.faults = Faults()
        self._on_bytes = on_bytes
        self._on_replug = on_replug
        self._lock = threading.Lock()
        self._plugged = threading.Event()
        self._stop = threading.Event()
        self._master: int | None = None
        self._slave: int | None = None
        self._rx_free_at = 0.0  # when the last received byte finished arriving on the wire
        self._rng = random.Random(0x5EED)
        self._thread = threading.Thread(target=self._read_loop, name=f"pty:{self.link.name}",
                                        daemon=True)

    @property
    def path(self) -> str:
        return str(self.link)

    @property
    def plugged(self) -> bool:
        return self._plugged.is_set()

    def start(self) -> None:
        self._plug()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._unplug()
        self._plugged.set()  # wake the reader so it sees the stop
        self._thread.join(timeout=2)

    # --- the cable ------------------------------------------------------------------------

    def unplug(self) -> None:
        """Pull the cable: the path disappears and the open port fails."""
        self._unplug()

    def replug(self) -> None:
        """Plug the cable back in: the path exists again, on a fresh pty."""
        if not self.plugged:
            self._plug()
            if self._on_replug is not None:
                self._on_replug()

    def _plug(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        tmp = self.link.with_name(self.link.name + ".new")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link)
        with self._lock:
            self._master, self._slave = master, slave
            self._rx_free_at = 0.0
        self._plugged.set()

    def _unplug(self) -> None:
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = None
            self._plugged.clear()
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)

    # --- bytes ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send ``data`` to the driver, after its wire time and any injected delay."""
        if self.faults.silent or self.faults.mute or not data:
            return
        if self.faults.corrupt_next > 0:
            self.faults.corrupt_next -= 1
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        delay = self.faults.slow
        if self.baud:
            delay += wire_time(len(data), self.baud)
        if delay > 0:
            sleep_until(time.perf_counter() + delay)
        self._raw_write(data)

    def inject_garbage(self, n: int = 16) -> bytes:
        """Send ``n`` random bytes at once, as line noise would; returns them."""
        junk = bytes(self._rng.randrange(256) for _ in range(n))
        self._raw_write(junk)
        return junk

    def wait_for_wire(self) -> None:
        """Block until every byte received so far would have arrived on a real wire."""
        if self.baud:
            sleep_until(self._rx_free_at)

    def _raw_write(self, data: bytes) -> None:
        with self._lock:
            fd = self._master
        if fd is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except OSError:
                return  # unplugged while writing: the bytes are lost, as on a real cable
            view = view[n:]

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            if not self._plugged.wait(timeout=0.2):
                continue
            with self._lock:
                fd = self._master
            if fd is None:
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
            except (OSError, ValueError):
                continue  # unplugged under our feet
            if not chunk or self.faults.silent:
                continue
            if self.baud:
                now = time.perf_counter()
                self._rx_free_at = max(self._rx_free_at, now) + wire_time(len(chunk), self.baud)
            self._on_bytes(chunk)


def sleep_until(deadline: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``deadline``, finer than one ``time.sleep``."""
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(left - 0.001)
        else:
            time.sleep(0)
