"""The door board as ``accessd`` sees it: a lock, a few inputs, a keypad, no serial port."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class DoorEventKind(enum.Enum):
    """What a door board reports on its own."""

    DOOR_OPENED = "door_opened"
    DOOR_CLOSED = "door_closed"
    DOOR_FORCED = "door_forced"  # the contact opened while the lock was locked
    EXIT_PRESSED = "exit_pressed"  # request-to-exit button
    TAMPER_ON = "tamper_on"
    TAMPER_OFF = "tamper_off"
    KEY = "key"  # one keypad key; ``DoorEvent.key`` holds it ("0".."9", "*", "#")
    UNLOCKED = "unlocked"
    RELOCKED = "relocked"  # ``DoorEvent.reason``: "pulse_end", "heartbeat_lost", "command"
    # The board ignored a frame that did not authenticate; ``DoorEvent.reason`` says why
    # ("bad MAC", "replayed frame", ...). Someone may be on the wire.
    WIRE_REJECTED = "wire_rejected"


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """One change seen by the door board, stamped with the host's monotonic clock."""

    kind: DoorEventKind
    at: float
    key: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DoorInputs:
    """The inputs' current, debounced state."""

    door_open: bool
    exit_pressed: bool
    tamper: bool
    locked: bool


@runtime_checkable
class DoorBoard(Protocol):
    """What every door driver must offer.

    The lock is fail-secure: any error leaves it locked, and a board with ``autorelock`` in its
    ``capabilities`` relocks by itself when a pulse ends or the host stops sending heartbeats.
    Implementations raise only ``firmware_bridge.errors.DoorError`` subclasses.
    """

    port: str
    # any of "inputs", "keypad", "autorelock", "authenticated" (every frame carries a MAC)
    capabilities: frozenset[str]

    def open(self) -> None:
        """Open the port and greet the board (version check where the board has one)."""

    def close(self) -> None:
        """Lock, then release the port. Safe to call twice and after a failure."""

    def pulse(self, seconds: float) -> None:
        """Unlock for ``seconds``, then relock (the board relocks by itself where it can)."""

    def lock(self) -> None:
        """Lock now."""

    def heartbeat(self) -> None:
        """Tell the board the host is alive; without it an autorelock board relocks."""

    def inputs(self) -> DoorInputs:
        """The current state of the lock and inputs."""

    def next_event(self, timeout: float) -> DoorEvent | None:
        """The next event, waiting up to ``timeout`` seconds; ``None`` when none came."""
