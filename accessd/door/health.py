"""A device's health, and the one way the daemon keeps a device connected.

python-can keeps the bus apart from the thread that reads it; here the daemon's two loops say
only what they want of their device, and ``DeviceHealth`` does the rest the same way for the
sensor and the door board: open the device when a try is due, run the loop's work, and on a
fault close it, report the fault once, and try again every ``RETRY_INTERVAL`` until it opens,
reporting the recovery. The board relocks on its own meanwhile: the door stays fail-secure.

Each device's health belongs to the one thread that owns the device. Another thread that sees
the device fail (the sensor thread's relay pulse) says so with ``suspect``: the owner then
checks the device at once, and nothing else changes. It never closes the device or pushes its
next try back: a reconnect is timed by the owner alone, whatever the traffic.

Why a short fixed interval and not an exponential backoff: backoff protects a shared, remote
server from a crowd of clients retrying together. Opening a local serial device protects
nothing of the kind: trying a path that is not there costs a failed ``open(2)``, microseconds,
and trying a device that is there but silent costs the driver's own deadline, which already
spaces the tries. What matters is how soon the door works again once someone plugs the cable
back in: within ``RETRY_INTERVAL`` plus one open, well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from accessd.door.devices import DeviceProblem, fault_reason, problem_of
from accessd.errors import AccessdError
from accessd.models.enums import EventKind

log = logging.getLogger("accessd.door.daemon")

RETRY_INTERVAL = 0.25  # seconds between two tries to open a device that is down
RETRY_POLL = 0.1  # seconds: how often a loop waiting to retry looks at its stop event
STORAGE_PAUSE = 0.5  # seconds a loop rests after its work failed on the database
FAULT_TEXT_MAX = 200  # AccessEvent.reason; the log keeps the whole message

Report = Callable[[EventKind, str], object]
"""Records a ``fault`` or ``recovered`` event with its reason."""


class DeviceHealth:
    """One device's connection: connected or not, its fault, and when to try again.

    :param name: as people say it ("sensor", "door board"): starts the fault events' reasons.
    :param open: opens the device (raises one of ``faults`` when it cannot).
    :param close: closes it; must not raise.
    :param faults: the device's own errors; anything else escaping the work is a bug, except
        a database error, which is not the device's (see ``storage_failed``).
    :param monotonic: seconds, for the retries.
    :param report: records the fault and recovery events.
    :param recovered: the recovery event's reason.
    :param storage_failed: told of a database error that escaped the work; the device stays
        open (the daemon's storage health deals with the database).
    :param on_fault: told of each new fault after it was recorded (the door's raises an alarm
        for a wire that does not authenticate).
    :param counted: told ``(name, "fault")`` of each new fault and ``(name, "reconnect")``
        of each recovery (the daemon's metrics).
    """

    def __init__(self, name: str, *, open: Callable[[], None], close: Callable[[], None],
                 faults: type[Exception], monotonic: Callable[[], float], report: Report,
                 recovered: str,
                 storage_failed: Callable[[Exception], None] | None = None,
                 on_fault: Callable[[Exception], None] | None = None,
                 counted: Callable[[str, str], None] = lambda name, what: None) -> None:
        self.name = name
        self._counted = counted
        self._open, self._close, self._faults = open, close, faults
        self._monotonic, self._report, self._recovered = monotonic, report, recovered
        self._storage_failed = storage_failed
        self._on_fault = on_fault
        self._fault_type: type[Exception] | None = None
        self.connected = False
        self.fault: str | None = None
        self.problem: DeviceProblem | None = None  # the fault's kind, for the status
        self.retry_at = 0.0
        self._suspected: Exception | None = None  # set by any thread, taken by the owner

    def connect(self, wait: Callable[[float], object]) -> bool:
        """True when the device is connected, opening it now if a try is due. While it waits
        for the next try: waits with ``wait`` (at most ``RETRY_POLL``) and returns False.

        :raises: ``open``'s errors (run it inside ``guard``, which handles them).
        """
        if self.connected:
            return True
        left = self.retry_at - self._monotonic()
        if left > 0:
            wait(min(RETRY_POLL, left))
            return False
        self._suspected = None  # whatever was seen before this open is history
        self._open()
        had_fault = self.fault is not None
        self.connected, self.fault, self.problem, self._fault_type = True, None, None, None
        if had_fault:
            self._counted(self.name, "reconnect")
            self._report(EventKind.RECOVERED, self._recovered)
        return True

    def guard(self, work: Callable[[], None], *, wait: Callable[[float], object]) -> None:
        """Run one step of a loop; a device fault closes the device and marks the next try,
        and nothing escapes (a bug must not end the device's only thread).

        :param wait: how the loop rests after its work failed on the database.
        """
        try:
            work()
        except self._faults as exc:
            self._close()
            self.failed(exc)
        except SQLAlchemyError as exc:
            log.warning("%s: the database failed: %s", self.name, exc)
            if self._storage_failed is not None:
                self._storage_failed(exc)
            wait(STORAGE_PAUSE)
        except AccessdError as exc:
            log.error("%s: %s", self.name, exc)
        except Exception:
            log.exception("unexpected error with the %s", self.name)
            self._close()
            self.problem = DeviceProblem.FAILED
            self._mark("internal error (see the log)")

    def failed(self, exc: Exception) -> None:
        """Note a device fault (the owning thread only); a new one, or one of another kind than
        the fault before (a sensor unplugged, then another plugged in), is logged and recorded
        as a ``fault`` event."""
        changed = type(exc) is not self._fault_type
        self._fault_type = type(exc)
        problem = self.problem = problem_of(exc)
        if self._mark(str(exc)) or changed:
            self._counted(self.name, "fault")
            log.warning("%s fault: %s", self.name, exc)
            self._report(EventKind.FAULT, fault_reason(self.name, problem)[:FAULT_TEXT_MAX])
            if self._on_fault is not None:
                self._on_fault(exc)

    def suspect(self, exc: Exception) -> None:
        """Another thread saw the device fail: its owner checks it at its next step. Safe from
        any thread; changes nothing else (see the module's docstring)."""
        self._suspected = exc

    def take_suspicion(self) -> Exception | None:
        """What another thread saw since the last call (the owning thread only)."""
        suspected, self._suspected = self._suspected, None
        return suspected

    def _mark(self, message: str) -> bool:
        new = self.fault is None
        self.connected = False
        self.fault = message
        self.retry_at = self._monotonic() + RETRY_INTERVAL
        return new
