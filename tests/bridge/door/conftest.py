"""Fixtures for the door suites: the real drivers against the simulated devices through a pty.

One contract suite, several implementations: where ACCESSD_TEST_DOOR_PORT names a real door board,
the cases that need no simulated world (``any_door``) run against it too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from firmware_bridge.door import DoorEvent, DoorEventKind
from firmware_bridge.doorboard import SerialDoorBoard
from firmware_bridge.firmware import doorauth, doorlink
from hardware_sim.door import SimulatedDoorBoard
from hardware_sim.port import PtyPort

HANG_GUARD = 5.0  # s; only ever an upper bound against hangs, never a timing assertion


@pytest.fixture
def link_key() -> bytes:
    """The wire's key, provisioned into the simulated board on its bench."""
    return os.urandom(32)


@pytest.fixture
def sim(tmp_path: Path, link_key: bytes) -> Iterator[SimulatedDoorBoard]:
    board = SimulatedDoorBoard(tmp_path / "door", link_key=link_key)
    board.start()
    try:
        yield board
    finally:
        board.stop()


@pytest.fixture
def door(sim: SimulatedDoorBoard, link_key: bytes) -> Iterator[SerialDoorBoard]:
    driver = SerialDoorBoard(sim.path, link_key=link_key)
    driver.open()
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(params=["sim", "hardware"])
def any_door(request: pytest.FixtureRequest, tmp_path: Path,
             link_key: bytes) -> Iterator[SerialDoorBoard]:
    """The driver on the simulated board, and on a real one when one is named (its key in
    ACCESSD_TEST_DOOR_KEY, hex)."""
    sim_board = None
    if request.param == "hardware":
        port = os.environ.get("ACCESSD_TEST_DOOR_PORT")
        if not port:
            pytest.skip("no real door board: set ACCESSD_TEST_DOOR_PORT=/dev/ttyACM0 to run")
        link_key = bytes.fromhex(os.environ.get("ACCESSD_TEST_DOOR_KEY", ""))
    else:
        sim_board = SimulatedDoorBoard(tmp_path / "door", link_key=link_key)
        sim_board.start()
        port = sim_board.path
    driver = SerialDoorBoard(port, link_key=link_key)
    try:
        driver.open()
        yield driver
    finally:
        driver.close()
        if sim_board is not None:
            sim_board.stop()


def wait_for_event(door: SerialDoorBoard, kind: DoorEventKind,
                   timeout: float = HANG_GUARD) -> tuple[DoorEvent, list[DoorEvent]]:
    """The first event of ``kind``, and every event seen before it."""
    seen: list[DoorEvent] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = door.next_event(left)
        if event is None:
            break
        if event.kind is kind:
            return event, seen
        seen.append(event)
    raise AssertionError(f"no {kind} within {timeout} s; saw {seen}")


def collect_events(door: SerialDoorBoard, quiet: float = 0.4) -> list[DoorEvent]:
    """Every event until none came for ``quiet`` seconds."""
    events = []
    while (event := door.next_event(quiet)) is not None:
        events.append(event)
    return events


@contextmanager
def within_hang_guard() -> Iterator[None]:
    start = time.monotonic()
    yield
    assert time.monotonic() - start < HANG_GUARD, "the driver hung past its timeouts"


def wait_until(predicate: Callable[[], bool], timeout: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


class ScriptedBoard:
    """A stand-in board on a pty that answers each frame as a test scripts it.

    For what the real board logic never does on purpose: speak another version, repeat an event.
    It holds the wire's key: ``hello_reply`` starts a session as a real board does and
    ``sealed`` builds a frame of it; ``answer(board, frame)`` sees bodies, unsealed.
    """

    def __init__(self, link: Path, answer: Callable[[ScriptedBoard, doorlink.Frame], list[bytes]],
                 key: bytes) -> None:
        self.received: list[doorlink.Frame] = []
        self.key = key
        self.session: bytes | None = None
        self._counter = 0
        self._answer = answer
        self._parser = doorlink.Parser()
        self.port = PtyPort(link, self._on_bytes)

    def hello_reply(self, frame: doorlink.Frame,
                    version: int = doorlink.PROTOCOL_VERSION) -> bytes:
        """A HELLO_REPLY; sealed (a session begins) in this protocol's version, in clear in
        any other, as an older board would answer."""
        nonce = os.urandom(doorlink.NONCE_LEN)
        body = doorlink.pack_hello_reply(version, 3000, 20, doorlink.MAX_PULSE_MS, nonce,
                                         "scripted")
        if version != doorlink.PROTOCOL_VERSION:
            return doorlink.encode(doorlink.HELLO_REPLY, frame.seq, body)
        host_nonce = doorlink.unpack_hello(frame.payload)[2]
        self.session = doorauth.session_key(self.key, host_nonce, nonce)
        self._counter = 0
        return self.sealed(doorlink.HELLO_REPLY, frame.seq, body)

    def sealed(self, ftype: int, seq: int, body: bytes) -> bytes:
        assert self.session is not None, "no session: answer HELLO with hello_reply first"
        self._counter += 1
        return doorlink.encode(ftype, seq, doorauth.seal(
            self.session, doorauth.TO_HOST, ftype, seq, body, self._counter))

    def _on_bytes(self, data: bytes) -> None:
        for frame in self._parser.feed(data):
            key = self.key if frame.type == doorlink.HELLO else self.session
            if key is not None:
                body, _ = doorauth.unseal(key, doorauth.TO_BOARD, frame.type, frame.seq,
                                          frame.payload)
                frame = doorlink.Frame(frame.type, frame.seq, body)
            self.received.append(frame)
            for reply in self._answer(self, frame):
                self.port.write(reply)


@pytest.fixture
def scripted(tmp_path: Path, link_key: bytes) -> Iterator[Callable[..., ScriptedBoard]]:
    boards: list[ScriptedBoard] = []

    def make(answer: Callable[[ScriptedBoard, doorlink.Frame], list[bytes]]) -> ScriptedBoard:
        board = ScriptedBoard(tmp_path / f"scripted{len(boards)}", answer, link_key)
        board.port.start()
        boards.append(board)
        return board

    yield make
    for board in boards:
        board.port.stop()
