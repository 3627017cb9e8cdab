"""The service manager watching the daemon: systemd's notify protocol and its watchdog.

systemd starts ``accessd run`` as a ``Type=notify`` service with ``WatchdogSec=``; it passes a
datagram socket in ``$NOTIFY_SOCKET`` and the watchdog's interval in ``$WATCHDOG_USEC``. The
daemon says ``READY=1`` once every loop turned once (it is deciding), ``STATUS=...`` as its
state changes, ``STOPPING=1`` when it stops, and ``WATCHDOG=1`` regularly, but only while
every loop is alive: each loop beats ``Heartbeats`` as it turns, and the watchdog thread pings
only when no loop is late. A hung sensor, door or command loop so stops the pings, and systemd
kills and restarts the daemon one interval later (the board relocks on its own meanwhile).

Why not libsystemd or the ``sdnotify`` package: the protocol is one datagram on a Unix socket
(``@`` names the abstract namespace), twenty lines here; ``sdnotify`` swallows every error, and
``systemd-python`` needs libsystemd's headers to build. Nothing here is imported by more than
``socket``, ``os`` and ``threading``, so the door's memory stays lean.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("accessd.door.supervision")

PINGS_PER_INTERVAL = 3  # systemd's advice is at least two per interval; a third absorbs a hiccup


class Notifier:
    """Sends notify messages to ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract
    namespace). A message that cannot be sent is logged once and dropped: the daemon's work
    never depends on its supervisor hearing it."""

    def __init__(self, address: str) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._lock = threading.Lock()
        self._failed = False

    def send(self, *fields: str) -> bool:
        """One datagram of ``KEY=value`` lines; True when the socket took it."""
        try:
            with self._lock:
                self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot tell systemd %s (%s): %s", fields[0], self.address.lstrip("\0"),
                            exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def close(self) -> None:
        self._socket.close()


class Heartbeats:
    """When each of the daemon's loops last turned. Each loop beats from its own thread (one
    dict assignment); the watchdog reads.

    A loop about to do something long on purpose (an enrolment waiting for a finger, a resync
    uploading templates) says how long its next beat may take with ``within``.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._beats: dict[str, tuple[float, float]] = {}

    def beat(self, loop: str, within: float = 0.0) -> None:
        """``loop`` is alive; its next beat comes within ``within`` seconds, or within the
        watchdog's own limit if that is longer."""
        self._beats[loop] = (self._monotonic(), within)

    def loops(self) -> list[str]:
        return list(self._beats)

    def late(self, limit: float) -> dict[str, float]:
        """The loops silent for longer than ``limit`` (and than their own ``within``), with
        the seconds since each last beat."""
        now = self._monotonic()
        return {loop: now - at for loop, (at, within) in list(self._beats.items())
                if now - at > max(limit, within)}


class Supervisor:
    """The daemon's side of systemd's notify protocol and watchdog.

    :param watchdog_seconds: ``$WATCHDOG_USEC`` in seconds, or None when systemd set no
        watchdog (the notifications are still sent).
    :param describe: the daemon's state in a few words, sent as ``STATUS=`` when it changes.
    """

    def __init__(self, notifier: Notifier, heartbeats: Heartbeats, *,
                 watchdog_seconds: float | None, describe: Callable[[], str] = lambda: "") -> None:
        self.notifier = notifier
        self.heartbeats = heartbeats
        self.watchdog_seconds = watchdog_seconds
        self.describe = describe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status = ""

    @classmethod
    def from_environ(cls, heartbeats: Heartbeats,
                     environ: Mapping[str, str] | None = None) -> Supervisor | None:
        """The supervisor systemd's environment describes; None when not run by systemd (no
        ``$NOTIFY_SOCKET``). A ``$WATCHDOG_PID`` naming another process means the watchdog
        is not ours (as ``sd_watchdog_enabled``)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if not address.startswith(("/", "@")):
            return None
        seconds: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            seconds = int(usec) / 1_000_000
        return cls(Notifier(address), heartbeats, watchdog_seconds=seconds)

    def status(self, text: str) -> None:
        self._last_status = text
        self.notifier.send(f"STATUS={text}")

    def ready(self) -> None:
        """The daemon decides: ``READY=1``, then the watchdog's pings begin."""
        text = self.describe() or "deciding"
        self._last_status = text
        self.notifier.send("READY=1", f"STATUS={text}", f"MAINPID={os.getpid()}")
        if self.watchdog_seconds is not None and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
            self._thread.start()

    def stopping(self) -> None:
        self._stop.set()
        self.notifier.send("STOPPING=1", "STATUS=stopping: locking the door")
        if self._thread is not None:
            self._thread.join(timeout=2)

    def close(self) -> None:
        self._stop.set()
        self.notifier.close()

    def check(self) -> dict[str, float]:
        """One turn of the watchdog: ping if every loop is alive, else say which is not.
        Returns the late loops."""
        assert self.watchdog_seconds is not None
        late = self.heartbeats.late(self.watchdog_seconds)
        if late:
            text = "not responding: " + ", ".join(f"{loop} loop" for loop in sorted(late))
            if text != self._last_status:
                log.error("%s (silent for %s); systemd restarts the daemon unless it recovers",
                          text, ", ".join(f"{s:.0f} s" for _, s in sorted(late.items())))
        else:
            text = self.describe() or "deciding"
            self.notifier.send("WATCHDOG=1")
        if text != self._last_status:
            self.status(text)
        return late

    def _watch(self) -> None:
        assert self.watchdog_seconds is not None
        every = self.watchdog_seconds / PINGS_PER_INTERVAL
        while not self._stop.wait(every):
            try:
                self.check()
            except Exception:  # the pings stop, which is what a broken watchdog should do
                log.exception("the watchdog failed")
                return
