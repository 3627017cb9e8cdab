"""A device's health, and the one way the daemon keeps a device connected.

python-can keeps the bus apart from the thread that reads it; here the daemon's two loops say
only what they want of their device, and ``DeviceHealth`` does the rest the same way for the
sensor and the door board: open the device when a try is due, run the loop's work, and on a
fault close it, report the fault once, back off (0.5 s doubling to 10 s) and open it again,
reporting the recovery. The board relocks on its own meanwhile: the door stays fail-secure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from accessd.errors import AccessdError
from accessd.models.enums import EventKind

log = logging.getLogger("accessd.door.daemon")

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
RETRY_POLL = 0.1  # seconds: how often a loop waiting to retry looks at its stop event
FAULT_TEXT_MAX = 200  # AccessEvent.reason; the log keeps the whole message

Report = Callable[[EventKind, str], object]
"""Records a ``fault`` or ``recovered`` event with its reason."""


class DeviceHealth:
    """One device's connection: connected or not, its fault, and when to try again.

    :param name: as people say it ("sensor", "door board"): starts the fault events' reasons.
    :param open: opens the device (raises one of ``faults`` when it cannot).
    :param close: closes it; must not raise.
    :param faults: the device's own errors; anything else escaping the work is a bug.
    :param monotonic: seconds, for the backoff.
    :param report: records the fault and recovery events.
    :param recovered: the recovery event's reason.
    """

    def __init__(self, name: str, *, open: Callable[[], None], close: Callable[[], None],
                 faults: type[Exception], monotonic: Callable[[], float], report: Report,
                 recovered: str) -> None:
        self.name = name
        self._open, self._close, self._faults = open, close, faults
        self._monotonic, self._report, self._recovered = monotonic, report, recovered
        self.connected = False
        self.fault: str | None = None
        self.retry_at = 0.0
        self.backoff = BACKOFF_FIRST

    def connect(self, wait: Callable[[float], object]) -> bool:
        """True when the device is connected, opening it now if a try is due. While it backs
        off: waits with ``wait`` (at most ``RETRY_POLL``) and returns False.

        :raises: ``open``'s errors (run it inside ``guard``, which handles them).
        """
        if self.connected:
            return True
        left = self.retry_at - self._monotonic()
        if left > 0:
            wait(min(RETRY_POLL, left))
            return False
        self._open()
        had_fault = self.fault is not None
        self.connected, self.fault, self.backoff = True, None, BACKOFF_FIRST
        if had_fault:
            self._report(EventKind.RECOVERED, self._recovered)
        return True

    def guard(self, work: Callable[[], None]) -> None:
        """Run one step of a loop; a device fault closes the device and backs off, and nothing
        escapes (a bug must not end the device's only thread)."""
        try:
            work()
        except self._faults as exc:
            self._close()
            self.failed(exc)
        except AccessdError as exc:
            log.error("%s: %s", self.name, exc)
        except Exception:
            log.exception("unexpected error with the %s", self.name)
            self._close()
            self._mark("internal error (see the log)")

    def failed(self, exc: Exception) -> None:
        """Note a device fault; a new one is logged and recorded as a ``fault`` event."""
        if self._mark(str(exc)):
            log.warning("%s fault: %s", self.name, exc)
            self._report(EventKind.FAULT, f"{self.name}: {exc}"[:FAULT_TEXT_MAX])

    def _mark(self, message: str) -> bool:
        new = self.fault is None
        self.connected = False
        self.fault = message
        self.retry_at = self._monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        return new
