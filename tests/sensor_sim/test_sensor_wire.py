"""The simulator's answers to bytes pyfingerprint never sends: bad checksums, other addresses,
unknown instructions, out-of-range arguments, garbage."""

from __future__ import annotations

import random
import time

import pytest

from firmware_bridge.zfm import (
    DEFAULT_ADDRESS,
    Confirmation,
    Instruction,
    Pid,
    encode_packet,
)
from hardware_sim.sensor import BAD_CHECKSUM, RX_IDLE_RESET, SimulatedSensor
from tests.sensor_sim.conftest import MakeSim, RawLine

C = Confirmation
I = Instruction  # noqa: E741


def test_bad_checksum_is_answered_with_receive_error(sim: SimulatedSensor, raw: RawLine) -> None:
    packet = bytearray(encode_packet(DEFAULT_ADDRESS, Pid.COMMAND, bytes([I.TEMPLATE_NUM])))
    packet[-1] ^= 0x01
    raw.send(bytes(packet))
    answer = raw.receive()
    assert (answer.pid, answer.payload) == (Pid.ACK, bytes([C.RECEIVE_ERROR]))
    assert sim.history[-1][1:] == (BAD_CHECKSUM, C.RECEIVE_ERROR)


def test_command_for_another_address_is_answered_with_wrong_address(
        sim: SimulatedSensor, raw: RawLine) -> None:
    answer = raw.command(bytes([I.TEMPLATE_NUM]), address=0x01020304)
    assert answer.payload == bytes([C.WRONG_ADDRESS])
    assert answer.address == DEFAULT_ADDRESS  # the sensor answers from its own address


def test_unknown_instruction_gets_an_error_code(sim: SimulatedSensor, raw: RawLine) -> None:
    assert raw.command(bytes([0x42, 1, 2])).payload == bytes([C.UNSUPPORTED_COMMAND])
    assert sim.history[-1][1:] == ("Unknown(0x42)", C.UNSUPPORTED_COMMAND)
    assert raw.command(bytes([I.TEMPLATE_NUM])).payload == bytes([C.OK, 0, 0])


@pytest.mark.parametrize(("payload", "code"), [
    (bytes([I.STORE, 1, 0x00, 200]), C.BAD_SLOT),
    (bytes([I.STORE, 3, 0x00, 0]), C.RECEIVE_ERROR),  # no character buffer 3
    (bytes([I.LOAD_CHAR, 1, 0x01, 0x00]), C.BAD_SLOT),
    (bytes([I.SEARCH, 1, 0x00, 200, 0x00, 1]), C.BAD_SLOT),
    (bytes([I.DELET_CHAR, 0x00, 199, 0x00, 2]), C.DELETE_FAILED),
    (bytes([I.SET_SYS_PARA, 7, 1]), C.INVALID_REGISTER),
    (bytes([I.SET_SYS_PARA, 4, 13]), C.INVALID_REGISTER),
    (bytes([I.IMG2TZ, 1]), C.INVALID_IMAGE),  # nothing imaged yet
    (bytes([I.UP_IMAGE]), C.UPLOAD_IMAGE_FAILED),
    (bytes([I.VFY_PWD, 0, 0]), C.RECEIVE_ERROR),  # too short
])
def test_out_of_range_arguments_get_the_sensors_error_code(raw: RawLine, payload: bytes,
                                                           code: int) -> None:
    assert raw.command(payload).payload[0] == code


def test_password_must_be_verified_before_any_other_instruction(make_sim: MakeSim) -> None:
    sim = make_sim(password=0xCAFE)
    raw = RawLine(sim.path)
    try:
        assert raw.command(bytes([I.TEMPLATE_NUM])).payload == bytes([C.PASSWORD_NOT_VERIFIED])
        assert raw.command(bytes([I.VFY_PWD, 0, 0, 0, 1])).payload == bytes([C.WRONG_PASSWORD])
        assert raw.command(bytes([I.VFY_PWD, 0, 0, 0xCA, 0xFE])).payload == bytes([C.OK])
        assert raw.command(bytes([I.TEMPLATE_NUM])).payload == bytes([C.OK, 0, 0])
        sim.power_cycle()
        assert raw.command(bytes([I.TEMPLATE_NUM])).payload == bytes([C.PASSWORD_NOT_VERIFIED])
    finally:
        raw.serial.close()


def test_characteristics_come_in_packets_of_the_packet_size(make_sim: MakeSim) -> None:
    sim = make_sim(packet_size=64)
    raw = RawLine(sim.path)
    try:
        assert raw.command(bytes([I.UP_CHAR, 1])).payload == bytes([C.OK])
        packets = raw.transfer()
        assert [len(p.payload) for p in packets] == [64] * 8
        assert [p.pid for p in packets] == [Pid.DATA] * 7 + [Pid.END_DATA]
    finally:
        raw.serial.close()


def test_garbage_on_the_line_does_not_stop_the_sensor(sim: SimulatedSensor, raw: RawLine) -> None:
    rng = random.Random(1)
    valid = encode_packet(DEFAULT_ADDRESS, Pid.COMMAND, bytes([I.TEMPLATE_NUM]))
    for _ in range(20):
        junk = bytearray(rng.randbytes(rng.randrange(1, 300)))
        junk[rng.randrange(len(junk)):][:2] = b"\xef\x01"  # some false start codes too
        raw.send(bytes(junk) + valid[:rng.randrange(len(valid))])
    time.sleep(RX_IDLE_RESET + 0.2)  # the sensor's receive timeout drops any partial packet
    raw.discard_input()
    assert raw.command(bytes([I.TEMPLATE_NUM])).payload == bytes([C.OK, 0, 0])


def test_history_records_each_answer_with_its_time(sim: SimulatedSensor, raw: RawLine) -> None:
    before = time.monotonic()
    raw.command(bytes([I.GEN_IMG]))
    sim.place("alice-index")
    raw.command(bytes([I.GEN_IMG]))
    after = time.monotonic()
    history = sim.history
    assert [(name, code) for _, name, code in history] == [
        ("GenImg", C.NO_FINGER), ("GenImg", C.OK)]
    assert before <= history[0].at <= history[1].at <= after


def test_enrolled_template_is_in_the_read_only_library(sim: SimulatedSensor,
                                                       raw: RawLine) -> None:
    sim.enrol("alice-index", 4)
    library = sim.library
    assert list(library) == [4]
    assert len(library[4]) == 512
    with pytest.raises(TypeError):
        library[5] = b""  # type: ignore[index]
    sim.place("alice-index")
    raw.command(bytes([I.GEN_IMG]))
    raw.command(bytes([I.IMG2TZ, 1]))
    found = raw.command(bytes([I.SEARCH, 1, 0, 0, 0, 200]))
    assert found.payload[:3] == bytes([C.OK, 0, 4])
