"""A simulated door board and LCUS relay, on pseudo-terminals, with the world around them.

``SimulatedDoorBoard`` runs the firmware's own logic (``firmware_bridge/firmware/board.py``):
one source of truth for how the board behaves. Around it sits a small physical world: a lock
driven by the relay, a door that can be pushed open only while unlocked (or forced), an exit
button, a tamper switch and a keypad. Like gpiozero's ``MockPin`` it keeps a timestamped
``history`` of every change, for tests to assert.

The board keeps its wire key and session high-water mark in a "flash" file beside its pty link,
as the Pico keeps them in its own flash: a simulated board restarted in the same directory is
still provisioned. An attacker on the cable is played by ``inject_to_board``, ``inject_to_host``
and ``intercept_to_host`` (a man in the middle rewriting what the board says).
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.firmware import doorlink
from firmware_bridge.firmware.board import DEFAULT_DEBOUNCE_MS, Board, FlashStore, Pins
from firmware_bridge.lcus import RELAY_OFF, RELAY_ON
from hardware_sim.errors import DoorLockedError
from hardware_sim.port import PtyPort

TICK = 0.001  # s between the board's ticks, as its main loop sleeps 1 ms


@dataclass(frozen=True, slots=True)
class Change:
    """One change in the simulated world: ``what`` became ``value`` at monotonic time ``at``.

    ``what`` is one of "relay_locked", "door_open", "exit_pressed", "tamper", "key" (the key held
    down, "" when released).
    """

    at: float
    what: str
    value: bool | str


@dataclass(frozen=True, slots=True)
class Command:
    """A command frame the board heard at monotonic time ``at``: its type ("PULSE", "LOCK",
    "HEARTBEAT"...) and sequence number (a retry repeats the number)."""

    at: float
    name: str
    seq: int


class _World:
    """The physical state around the board, shared by the test's thread and the tick thread."""

    def __init__(self, hold_ms: int) -> None:
        self.lock = threading.Lock()
        self.history: list[Change] = []
        self.state: dict[str, bool | str] = {"relay_locked": True, "door_open": False,
                                             "exit_pressed": False, "tamper": False, "key": "",
                                             "provision_jumper": False}
        for what, value in self.state.items():
            self._record(what, value)
        self._hold_ms = hold_ms
        self._presses: collections.deque[tuple[str, bool | str, bool | str]] = collections.deque()
        self._active: tuple[str, bool | str, bool | str] | None = None
        self._released = False
        self._phase_start: int | None = None

    def set(self, what: str, value: bool | str) -> None:
        with self.lock:
            self._set(what, value)

    def press(self, what: str, down: bool | str, up: bool | str) -> None:
        """Queue a momentary press: held, then released, each long enough to pass debouncing."""
        with self.lock:
            self._presses.append((what, down, up))

    def advance(self, now_ms: int) -> None:
        """Play queued presses. Called right after the board sampled the inputs at ``now_ms``.

        A phase is timed from the first tick that sampled it, so a stalled thread can shorten
        no press below what the board's debouncing needs to see it.
        """
        with self.lock:
            if self._active is None:
                if not self._presses:
                    return
                self._active = self._presses.popleft()
                self._released = False
                self._set(self._active[0], self._active[1])
                self._phase_start = None
            elif self._phase_start is None:
                self._phase_start = now_ms
            elif now_ms - self._phase_start >= self._hold_ms:
                if self._released:
                    self._active = None  # the gap after the release is over too
                else:
                    self._released = True
                    self._set(self._active[0], self._active[2])
                    self._phase_start = None

    def _set(self, what: str, value: bool | str) -> None:
        if self.state[what] != value:
            self.state[what] = value
            self._record(what, value)

    def _record(self, what: str, value: bool | str) -> None:
        self.history.append(Change(time.monotonic(), what, value))


class SimulatedDoorBoard:
    """The door board's firmware logic on a pty, and a door to play with.

    :param link: where the port's stable path is created.
    :param baud: when given, bytes take their wire time at this rate.
    :param link_key: provision the board with this key now (as if done on the bench); without
        it the board keeps what its flash file holds (nothing, for a new board).
    """

    def __init__(self, link: Path, *, baud: int | None = None, heartbeat_timeout_ms: int = 3000,
                 debounce_ms: int = DEFAULT_DEBOUNCE_MS, link_key: bytes | None = None) -> None:
        self._heartbeat_ms = heartbeat_timeout_ms
        self._debounce_ms = debounce_ms
        self._world = _World(hold_ms=debounce_ms + 10)
        self._rx: collections.deque[bytes] = collections.deque()
        self._tx: queue.Queue[bytes | None] = queue.Queue()
        self._port = PtyPort(Path(link), self._rx.append, baud=baud)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lose: dict[int, int] = {}  # command type -> how many of its answers to lose
        self._losing: set[int] = set()  # seqs of commands whose answer is to be lost
        self._heard = doorlink.Parser()  # a copy of what the board hears, to see command types
        self._commands: list[Command] = []
        self._heard_frames: collections.deque[bytes] = collections.deque(maxlen=1000)
        self._said = doorlink.Parser()
        self._intercept: Callable[[doorlink.Frame], bytes] | None = None
        self._store = FlashStore(str(Path(link)) + ".flash")
        if link_key is not None:
            self._store.save(link_key, self._store.load()[1])
        self.board: Board | None = None  # the firmware's state, while it runs

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._port.start()
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run_board, name=f"door-board:{self.path}", daemon=True),
            # Answers go out on their own thread, so a "slow" fault delays the bytes, not the
            # board's clock: it still relocks on time, as real firmware would.
            threading.Thread(target=self._run_writer, name=f"door-tx:{self.path}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._tx.put(None)
        for thread in self._threads:
            thread.join(timeout=2)
        self._port.stop()

    # --- what tests and the control socket see -----------------------------------------------

    @property
    def port(self) -> PtyPort:
        """The simulated cable: unplug, replug and faults."""
        return self._port

    @property
    def path(self) -> str:
        return self._port.path

    @property
    def history(self) -> list[Change]:
        with self._world.lock:
            return list(self._world.history)

    @property
    def commands(self) -> list[Command]:
        """Every command frame the board heard, retries included, oldest first."""
        with self._world.lock:
            return list(self._commands)

    @property
    def relay_locked(self) -> bool:
        return bool(self._world.state["relay_locked"])

    @property
    def door_open(self) -> bool:
        return bool(self._world.state["door_open"])

    @property
    def tamper_on(self) -> bool:
        return bool(self._world.state["tamper"])

    # --- playing the world -------------------------------------------------------------------

    def open_door(self) -> None:
        """Push the door open, as a person would.

        :raises DoorLockedError: the lock is locked; pulse it first, or use ``force_door()``.
        """
        with self._world.lock:
            if self._world.state["relay_locked"]:
                raise DoorLockedError(
                    "the door is locked and cannot be pushed open; pulse the lock first, or "
                    "use force_door() to play a forced entry")
            self._world._set("door_open", True)

    def force_door(self) -> None:
        """Open the door whatever the lock says: a forced entry."""
        self._world.set("door_open", True)

    def close_door(self) -> None:
        self._world.set("door_open", False)

    def press_exit(self) -> None:
        """Press and release the exit button (returns at once; the press plays out in time)."""
        self._world.press("exit_pressed", True, False)

    def keys(self, digits: str) -> None:
        """Type ``digits`` on the keypad, one press and release each, e.g. "1234#".

        :raises ValueError: a character that is not on a 3x4 keypad.
        """
        wrong = sorted(set(digits) - set(doorlink.KEYS))
        if wrong:
            raise ValueError(f"keys {wrong} are not on the keypad; use 0-9, * and #")
        for key in digits:
            self._world.press("key", key, "")

    def tamper(self, on: bool = True) -> None:
        """Open (``True``) or close the board's case."""
        self._world.set("tamper", bool(on))

    def provision_jumper(self, closed: bool = True) -> None:
        """Close (``True``) or open the provisioning jumper inside the board's case."""
        self._world.set("provision_jumper", bool(closed))

    @property
    def provisioned(self) -> bool:
        """Whether the board's flash holds a key for its wire."""
        return self._store.load()[0] is not None

    # --- an attacker on the cable ------------------------------------------------------------

    @property
    def heard_frames(self) -> list[bytes]:
        """The bytes of the last 1,000 frames the board heard, oldest first (a wiretap)."""
        with self._world.lock:
            return list(self._heard_frames)

    def inject_to_board(self, data: bytes) -> None:
        """Bytes on the board's receive line that the host never sent."""
        self._rx.append(bytes(data))

    def inject_to_host(self, data: bytes) -> None:
        """Bytes on the host's receive line that the board never sent."""
        self._tx.put(bytes(data))

    def intercept_to_host(self, rewrite: Callable[[doorlink.Frame], bytes] | None) -> None:
        """Put a man in the middle: each frame the board sends reaches the host as
        ``rewrite(frame)`` (the bytes to send instead; b"" drops it). ``None`` removes him."""
        with self._world.lock:
            self._intercept = rewrite

    def lose_answers(self, command: str, count: int) -> None:
        """Lose the answers to the next ``count`` commands of type ``command`` ("PULSE",
        "STATE", ...) on their way back: the board carries each command out, the host never
        hears that it did (an acknowledgement lost to line noise).

        :raises ValueError: not a command of the protocol.
        """
        types = {name: code for code, name in doorlink.TYPE_NAMES.items()}
        if command not in types:
            raise ValueError(f"{command!r} is not a door board command; use one of "
                             f"{sorted(types)}")
        with self._world.lock:
            self._lose[types[command]] = count

    # --- the board's loop --------------------------------------------------------------------

    def _run_board(self) -> None:
        state = self._world.state
        pins = Pins(
            door_open=lambda: state["door_open"],
            exit_pressed=lambda: state["exit_pressed"],
            tamper=lambda: state["tamper"],
            key=lambda: state["key"],
            set_relay=lambda unlocked: self._world.set("relay_locked", not unlocked),
            provision_jumper=lambda: bool(state["provision_jumper"]),
        )
        start = time.monotonic()
        board = Board(pins, now_ms=0, heartbeat_ms=self._heartbeat_ms,
                      debounce_ms=self._debounce_ms, store=self._store)
        self.board = board
        while not self._stop.is_set():
            now_ms = int((time.monotonic() - start) * 1000)
            board.tick(now_ms)
            while self._rx:
                data = self._rx.popleft()
                self._note(data)
                board.receive(data)
            self._world.advance(now_ms)
            out = board.take_output()
            if out and self._losing:
                out = self._without_lost(out)
            if out and self._intercept is not None:
                out = self._intercepted(out)
            if out:
                self._tx.put(out)
            time.sleep(TICK)

    def _note(self, data: bytes) -> None:
        """Keep what the board hears in ``commands``; mark answers to lose."""
        now = time.monotonic()
        with self._world.lock:
            for frame in self._heard.feed(data):
                self._heard_frames.append(frame.encode())
                if frame.type in doorlink.TYPE_NAMES and frame.type not in (
                        doorlink.ACK, doorlink.NAK):
                    self._commands.append(Command(now, doorlink.TYPE_NAMES[frame.type],
                                                  frame.seq))
                left = self._lose.get(frame.type, 0)
                if left > 0:
                    self._losing.add(frame.seq)
                    self._lose[frame.type] = left - 1
                    if left == 1:
                        del self._lose[frame.type]

    def _without_lost(self, out: bytes) -> bytes:
        kept = bytearray()
        with self._world.lock:
            for frame in self._said.feed(out):
                if frame.type != doorlink.EVENT and frame.seq in self._losing:
                    self._losing.discard(frame.seq)
                    continue
                kept += doorlink.encode(frame.type, frame.seq, frame.payload)
        return bytes(kept)

    def _intercepted(self, out: bytes) -> bytes:
        with self._world.lock:
            rewrite = self._intercept
        if rewrite is None:
            return out
        return b"".join(rewrite(frame) for frame in doorlink.Parser().feed(out))

    def _run_writer(self) -> None:
        while True:
            data = self._tx.get()
            if data is None:
                return
            self._port.write(data)


class SimulatedLcusRelay:
    """An LCUS-1 relay on a pty: interprets its 4-byte commands, ignores anything else."""

    def __init__(self, link: Path) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._relay_locked = True
        self.history: list[Change] = [Change(time.monotonic(), "relay_locked", True)]
        self._port = PtyPort(Path(link), self._on_bytes)

    @property
    def port(self) -> PtyPort:
        return self._port

    @property
    def path(self) -> str:
        return self._port.path

    @property
    def relay_locked(self) -> bool:
        return self._relay_locked

    def start(self) -> None:
        self._port.start()

    def stop(self) -> None:
        self._port.stop()

    def _on_bytes(self, data: bytes) -> None:
        with self._lock:
            buf = self._buf + data
            while len(buf) >= 4:
                command = buf[:4]
                if command in (RELAY_ON, RELAY_OFF):
                    self._apply(command == RELAY_OFF)
                    buf = buf[4:]
                else:
                    buf = buf[1:]  # not a command here: look one byte further
            self._buf = buf  # at most 3 bytes wait for the rest of a command

    def _apply(self, locked: bool) -> None:
        if locked != self._relay_locked:
            self._relay_locked = locked
            self.history.append(Change(time.monotonic(), "relay_locked", locked))
