"""Fixtures for the simulated sensor's suite: simulators on ptys, the real pyfingerprint on
them, and a raw line for the bytes pyfingerprint never sends."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial
from pyfingerprint.pyfingerprint import PyFingerprint

from firmware_bridge.zfm import DEFAULT_ADDRESS, Packet, PacketParser, Pid, encode_packet
from hardware_sim.sensor import SimulatedSensor

MakeSim = Callable[..., SimulatedSensor]
Connect = Callable[..., PyFingerprint]


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[MakeSim]:
    """Start simulators with any settings; every one is stopped at teardown."""
    started: list[SimulatedSensor] = []

    def make(**settings: Any) -> SimulatedSensor:
        sim = SimulatedSensor(link=tmp_path / f"sensor{len(started)}", **settings)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: MakeSim) -> SimulatedSensor:
    return make_sim(capacity=200)


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open the real pyfingerprint on a simulator; every port is closed at teardown.

    Closed here rather than in pyfingerprint's ``__del__``, which would run at an arbitrary
    garbage collection after the simulator is gone.
    """
    opened: list[PyFingerprint] = []

    def open_(sim: SimulatedSensor, **kwargs: Any) -> PyFingerprint:
        fp = PyFingerprint(sim.path, **kwargs)
        opened.append(fp)
        return fp

    yield open_
    for fp in opened:
        fp._PyFingerprint__serial.close()


@pytest.fixture
def fp(sim: SimulatedSensor, connect: Connect) -> PyFingerprint:
    """pyfingerprint on ``sim`` with the password verified, as every program starts."""
    f = connect(sim)
    assert f.verifyPassword()
    return f


class RawLine:
    """A host that writes and reads packets itself, for what pyfingerprint cannot send."""

    def __init__(self, path: str) -> None:
        self.serial = serial.Serial(path, 57600, timeout=0.05)
        self.parser = PacketParser()
        self.pending: deque[Packet] = deque()  # parsed, not yet asked for

    def discard_input(self) -> None:
        """Forget whatever arrived so far (answers to garbage, partial packets)."""
        self.serial.reset_input_buffer()
        self.parser.reset()
        self.pending.clear()

    def send(self, data: bytes) -> None:
        self.serial.write(data)

    def command(self, payload: bytes, address: int = DEFAULT_ADDRESS) -> Packet:
        """Send one command and return the acknowledgement."""
        self.send(encode_packet(address, Pid.COMMAND, payload))
        return self.receive()

    def receive(self, timeout: float = 2.0) -> Packet:
        deadline = time.monotonic() + timeout
        while not self.pending and time.monotonic() < deadline:
            items = self.parser.feed(self.serial.read(512))
            self.pending.extend(item for item in items if isinstance(item, Packet))
        if self.pending:
            return self.pending.popleft()
        raise AssertionError(f"no packet within {timeout} s")

    def transfer(self) -> list[Packet]:
        """The data packets that follow an acknowledgement, up to the end packet."""
        packets = [self.receive()]
        while packets[-1].pid != Pid.END_DATA:
            packets.append(self.receive())
        return packets


@pytest.fixture
def raw(sim: SimulatedSensor) -> Iterator[RawLine]:
    line = RawLine(sim.path)
    yield line
    line.serial.close()


def capture(sim: SimulatedSensor, fp: PyFingerprint, finger: str, buffer: int = 1) -> None:
    """Place ``finger``, image it into ``buffer`` and lift it, as a person and a host do."""
    sim.place(finger)
    assert fp.readImage()
    assert fp.convertImage(buffer)
    sim.lift()


def enrol(sim: SimulatedSensor, fp: PyFingerprint, finger: str) -> int:
    """Two captures, one template, stored at the first free slot; returns the slot."""
    capture(sim, fp, finger, 1)
    capture(sim, fp, finger, 2)
    assert fp.createTemplate()
    slot: int = fp.storeTemplate()
    return slot
