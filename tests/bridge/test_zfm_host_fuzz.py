"""Random and mutated answers on the sensor's line, as the host driver reads them.

Below the serial port a scripted responder answers the driver's open correctly, then answers
the next command with the bytes hypothesis chose. Whatever they are, the driver returns or
raises a documented ``SensorError`` within its deadline; it never hangs and never lets a raw
exception out, and its read-ahead buffer never holds more than was sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import SensorError
from firmware_bridge.zfm import DEFAULT_ADDRESS, Pid, encode_packet
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.port import PtyPort

DEADLINE = 0.15
HANG_GUARD = 3.0  # far above the deadline plus one drain: only there to catch a hang


def ack(*payload: int) -> bytes:
    return encode_packet(DEFAULT_ADDRESS, Pid.ACK, bytes(payload))


OPEN_ANSWERS = [
    ack(0x00),  # VfyPwd
    ack(0x00, 0, 0, 0, 9, 0, 200, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 0, 6),  # ReadSysPara
]
VALID_COUNT = ack(0x00, 0, 7)  # TemplateNum: 7


class ScriptedLine:
    """Answers each complete command with the next scripted bytes."""

    def __init__(self, link: Path) -> None:
        self.script: list[bytes] = []
        self.port = PtyPort(link, self._on_bytes)
        self._pending = bytearray()

    def _on_bytes(self, chunk: bytes) -> None:
        self._pending += chunk
        while len(self._pending) >= 9:
            length = int.from_bytes(self._pending[7:9], "big")
            if len(self._pending) < 9 + length:
                return
            del self._pending[:9 + length]
            if self.script:
                self.port.write(self.script.pop(0))


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedLine]:
    scripted = ScriptedLine(tmp_path_factory.mktemp("fuzz") / "sensor")
    scripted.port.start()
    yield scripted
    scripted.port.stop()


def mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for index, value in flips:
        out[index % len(out)] ^= value or 1
    return bytes(out[:cut] if cut is not None else out)


answers = st.one_of(
    st.binary(max_size=300),
    st.builds(mutate, st.just(VALID_COUNT),
              st.lists(st.tuples(st.integers(0, 50), st.integers(0, 255)), max_size=4),
              st.one_of(st.none(), st.integers(0, len(VALID_COUNT)))),
    st.builds(lambda junk, tail: junk + VALID_COUNT + tail, st.binary(max_size=40),
              st.binary(max_size=40)),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(answer=answers)
def test_any_answer_ends_in_a_result_or_a_documented_error(line: ScriptedLine,
                                                           answer: bytes) -> None:
    line.script = [*OPEN_ANSWERS, answer]
    sensor = ZfmSensor(line.port.path, timeout=DEADLINE)
    sensor.open()
    start = time.monotonic()
    try:
        count = sensor.template_count()
        assert 0 <= count <= 0xFFFF
    except SensorError:
        pass
    finally:
        assert time.monotonic() - start < HANG_GUARD
        link = sensor._link
        assert link is None or link.bytes_received <= len(b"".join(OPEN_ANSWERS)) + len(answer)
        sensor.close()
