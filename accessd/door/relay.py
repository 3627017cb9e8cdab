"""Releasing the lock, and knowing what that did.

The board acknowledges a pulse, refuses it, or says nothing. Silence is not failure: the
command may have reached the board and only its answer been lost (line noise), and then the
door is open. So after a silence the board is asked for the lock's state, and only what it
answers, or that it does not, is said: in the log, and in the history (``pulse_failed``,
``pulse_unknown``, naming the opening they follow).
"""

from __future__ import annotations

import enum
import logging
import threading

from accessd.models import EventKind
from firmware_bridge.door import DoorBoard
from firmware_bridge.errors import DoorError, DoorOperationError, DoorProtocolError

log = logging.getLogger("accessd.door.daemon")


class PulseOutcome(enum.Enum):
    """What a relay pulse did, as far as the daemon can know; ``event`` records it."""

    DONE = None  # acknowledged, or the board reports the lock open
    FAILED = EventKind.PULSE_FAILED  # refused, never sent, or the board reports it closed
    UNKNOWN = EventKind.PULSE_UNKNOWN  # the board confirmed nothing: the door may have opened

    @property
    def event(self) -> EventKind | None:
        return self.value


def pulse(door: DoorBoard, lock: threading.Lock, seconds: float, *,
          connected: bool) -> tuple[PulseOutcome, str, DoorError | None]:
    """Release ``door``'s lock for ``seconds``: the outcome, why (an event reason, "" when it
    worked) and the driver's error, if any.

    :param lock: held around each command (the board has one owner at a time).
    :param connected: whether the board's own thread has it open (tells "refused" from
        "unreachable").
    """
    try:
        with lock:
            door.pulse(seconds)
    except DoorError as exc:
        failure = exc
    else:
        return PulseOutcome.DONE, "", None
    if isinstance(failure, DoorOperationError) and not isinstance(failure, DoorProtocolError):
        # Refused by the board, or never sent: nothing reached the relay.
        log.error("relay pulse failed, the door stays locked: %s", failure)
        return (PulseOutcome.FAILED, "board_refused" if connected else "board_unreachable",
                failure)
    try:
        with lock:
            locked = door.inputs().locked
    except DoorError as exc:
        log.error("the door board did not confirm the pulse (%s) nor answer after it (%s): "
                  "the door MAY BE UNLOCKED for up to %g s (the board relocks by itself)",
                  failure, exc, seconds)
        return PulseOutcome.UNKNOWN, "no_answer", failure
    if locked:
        log.error("relay pulse failed, the door stays locked (the board reports the lock "
                  "closed): %s", failure)
        return PulseOutcome.FAILED, "board_reports_locked", failure
    log.warning("the door board's acknowledgement of the pulse was lost (%s), but it reports "
                "the lock open: the door is unlocked for %g s", failure, seconds)
    return PulseOutcome.DONE, "", failure
