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
from firmware_bridge.firmware import doorlink
from hardware_sim.door import SimulatedDoorBoard
from hardware_sim.port import PtyPort

HANG_GUARD = 5.0  # s; only ever an upper bound against hangs, never a timing assertion


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatedDoorBoard]:
    board = SimulatedDoorBoard(tmp_path / "door")
    board.start()
    try:
        yield board
    finally:
        board.stop()


@pytest.fixture
def door(sim: SimulatedDoorBoard) -> Iterator[SerialDoorBoard]:
    driver = SerialDoorBoard(sim.path)
    driver.open()
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(params=["sim", "hardware"])
def any_door(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SerialDoorBoard]:
    """The driver on the simulated board, and on a real one when one is named."""
    sim_board = None
    if request.param == "hardware":
        port = os.environ.get("ACCESSD_TEST_DOOR_PORT")
        if not port:
            pytest.skip("no real door board: set ACCESSD_TEST_DOOR_PORT=/dev/ttyACM0 to run")
    else:
        sim_board = SimulatedDoorBoard(tmp_path / "door")
        sim_board.start()
        port = sim_board.path
    driver = SerialDoorBoard(port)
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
    """

    def __init__(self, link: Path, answer: Callable[[doorlink.Frame], list[bytes]]) -> None:
        self.received: list[doorlink.Frame] = []
        self._answer = answer
        self._parser = doorlink.Parser()
        self.port = PtyPort(link, self._on_bytes)

    def _on_bytes(self, data: bytes) -> None:
        for frame in self._parser.feed(data):
            self.received.append(frame)
            for reply in self._answer(frame):
                self.port.write(reply)


def hello_reply(frame: doorlink.Frame, version: int = doorlink.PROTOCOL_VERSION) -> bytes:
    return doorlink.encode(doorlink.HELLO_REPLY, frame.seq, doorlink.pack_hello_reply(
        version, 3000, 20, doorlink.MAX_PULSE_MS, "scripted"))


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Callable[..., ScriptedBoard]]:
    boards: list[ScriptedBoard] = []

    def make(answer: Callable[[doorlink.Frame], list[bytes]]) -> ScriptedBoard:
        board = ScriptedBoard(tmp_path / f"scripted{len(boards)}", answer)
        board.port.start()
        boards.append(board)
        return board

    yield make
    for board in boards:
        board.port.stop()
