"""The ZFM framing module: byte-exact packets, and a parser that survives any byte stream."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import SensorProtocolError
from firmware_bridge.zfm import (
    CONFIRMATION_DESCRIPTIONS,
    DEFAULT_ADDRESS,
    MAX_PACKET_SIZE,
    MAX_PAYLOAD,
    Confirmation,
    FrameError,
    FrameFault,
    Instruction,
    Packet,
    PacketParser,
    Pid,
    describe_confirmation,
    encode_packet,
    instruction_name,
)

Item = Packet | FrameError

# --- known packets, byte for byte -----------------------------------------------------------


@pytest.mark.parametrize(("address", "pid", "payload", "wire"), [
    (DEFAULT_ADDRESS, Pid.COMMAND, bytes([0x13, 0, 0, 0, 0]),  # VfyPwd, password 0
     "EF 01 FF FF FF FF 01 00 07 13 00 00 00 00 00 1B"),
    (DEFAULT_ADDRESS, Pid.COMMAND, bytes([0x01]),  # GenImg
     "EF 01 FF FF FF FF 01 00 03 01 00 05"),
    (DEFAULT_ADDRESS, Pid.COMMAND, bytes([0x02, 0x01]),  # Img2Tz into buffer 1
     "EF 01 FF FF FF FF 01 00 04 02 01 00 08"),
    (DEFAULT_ADDRESS, Pid.COMMAND, bytes([0x04, 0x01, 0x00, 0x00, 0x00, 0xA3]),  # Search 0..162
     "EF 01 FF FF FF FF 01 00 08 04 01 00 00 00 A3 00 B1"),
    (DEFAULT_ADDRESS, Pid.ACK, bytes([0x00]),  # OK
     "EF 01 FF FF FF FF 07 00 03 00 00 0A"),
    (DEFAULT_ADDRESS, Pid.ACK, bytes([0x02]),  # no finger
     "EF 01 FF FF FF FF 07 00 03 02 00 0C"),
    (0x12345678, Pid.COMMAND, bytes([0x1D]),  # TemplateNum to another address
     "EF 01 12 34 56 78 01 00 03 1D 00 21"),
])
def test_encode_packet_matches_the_protocol_byte_for_byte(address: int, pid: Pid, payload: bytes,
                                                          wire: str) -> None:
    assert encode_packet(address, pid, payload) == bytes.fromhex(wire)
    assert PacketParser().feed(bytes.fromhex(wire)) == [Packet(address, pid, payload)]


def test_largest_data_packet_checksum_keeps_the_low_16_bits() -> None:
    packet = encode_packet(DEFAULT_ADDRESS, Pid.END_DATA, b"\xff" * MAX_PAYLOAD)
    assert len(packet) == MAX_PACKET_SIZE
    assert packet[-2:] == ((8 + 0x01 + 0x02 + 255 * 256) & 0xFFFF).to_bytes(2, "big")


@pytest.mark.parametrize(("address", "pid", "payload"), [
    (-1, Pid.COMMAND, b"\x01"),
    (1 << 32, Pid.COMMAND, b"\x01"),
    (DEFAULT_ADDRESS, 0x03, b"\x01"),
    (DEFAULT_ADDRESS, Pid.DATA, bytes(MAX_PAYLOAD + 1)),
])
def test_encode_packet_refuses_what_no_wire_can_carry(address: int, pid: int,
                                                      payload: bytes) -> None:
    with pytest.raises(ValueError):
        encode_packet(address, pid, payload)


def test_every_confirmation_code_has_a_description() -> None:
    assert set(CONFIRMATION_DESCRIPTIONS) == set(Confirmation)
    assert describe_confirmation(0x21) == "the password must be verified first"
    assert "0x77" in describe_confirmation(0x77)


def test_instructions_carry_their_datasheet_names() -> None:
    assert Instruction.GEN_IMG.datasheet_name == "GenImg"
    assert instruction_name(0x1F) == "ReadConList"
    assert instruction_name(0x42) == "Unknown(0x42)"


def test_frame_errors_belong_to_the_documented_hierarchy() -> None:
    error = PacketParser().feed(b"\x00\x01\x02")[0]
    assert isinstance(error, FrameError)
    assert isinstance(error, SensorProtocolError)
    assert error.fault is FrameFault.GARBAGE and error.discarded == 3


def test_framing_module_imports_without_pyserial() -> None:
    code = ("import sys; sys.modules['serial'] = None; import firmware_bridge.zfm; "
            "assert 'serial' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- any byte stream ------------------------------------------------------------------------

packets = st.builds(
    Packet, st.integers(0, 0xFFFFFFFF), st.sampled_from(list(Pid)), st.binary(max_size=300)
    .map(lambda b: b[:MAX_PAYLOAD]))


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << bit % 8
    return bytes(out)


@st.composite
def fragments(draw: st.DrawFn) -> bytes:
    """A piece of a hostile stream: noise, false start codes, whole, cut or damaged packets."""
    kind = draw(st.sampled_from(["noise", "start", "packet", "cut", "flipped", "inserted"]))
    if kind == "noise":
        return draw(st.binary(max_size=40))
    if kind == "start":
        return b"\xef\x01" + draw(st.binary(max_size=9))
    wire = draw(packets).encode()
    if kind == "cut":
        return wire[:draw(st.integers(0, len(wire) - 1))]
    if kind == "flipped":
        return flip(wire, draw(st.integers(0, 8 * len(wire) - 1)))
    if kind == "inserted":
        at = draw(st.integers(0, len(wire)))
        return wire[:at] + draw(st.binary(min_size=1, max_size=8)) + wire[at:]
    return wire


hostile = st.lists(fragments(), max_size=12).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def parse(chunks: list[bytes]) -> list[Item]:
    """Feed chunks, checking the buffer bound after each, then flush."""
    parser = PacketParser()
    items: list[Item] = []
    for chunk in chunks:
        items += parser.feed(chunk)
        assert parser.buffered < MAX_PACKET_SIZE
    items += parser.flush()
    assert parser.buffered == 0
    return items


def size(item: Item) -> int:
    """Stream bytes an item accounts for."""
    return len(item.encode()) if isinstance(item, Packet) else item.discarded


def placed(items: list[Item]) -> list[tuple[int, Item]]:
    """Each item with the stream offset it starts at."""
    offset, out = 0, []
    for item in items:
        out.append((offset, item))
        offset += size(item)
    return out


@settings(deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=20))
def test_random_bytes_give_only_packets_and_frame_errors(data: bytes, cuts: list[int]) -> None:
    items = parse(chunked(data, cuts))
    assert all(type(item) in (Packet, FrameError) for item in items)
    assert sum(size(item) for item in items) == len(data)


@settings(deadline=None)
@given(hostile, st.lists(st.integers(0, 3000), max_size=20))
def test_hostile_streams_account_for_every_byte_and_stay_bounded(data: bytes,
                                                                  cuts: list[int]) -> None:
    items = parse(chunked(data, cuts))
    assert all(type(item) in (Packet, FrameError) for item in items)
    assert sum(size(item) for item in items) == len(data)  # each byte once, none invented


@settings(deadline=None)
@given(st.lists(packets, min_size=1, max_size=8), st.lists(st.integers(0, 3000), max_size=30))
def test_valid_packets_are_found_however_the_stream_is_cut(sent: list[Packet],
                                                           cuts: list[int]) -> None:
    data = b"".join(p.encode() for p in sent)
    assert parse(chunked(data, cuts)) == sent


@settings(deadline=None)
@given(hostile, packets, hostile, st.lists(st.integers(0, 3000), max_size=20))
def test_valid_packet_in_garbage_is_found(before: bytes, packet: Packet, after: bytes,
                                          cuts: list[int]) -> None:
    data = before + packet.encode() + after
    items = placed(parse(chunked(data, cuts)))
    at = len(before)
    # Only a packet that the garbage itself forms, and that runs over ours, may hide it: the
    # checksum does not cover the address, so such look-alikes cannot be told apart.
    hidden = any(isinstance(item, Packet) and offset < at < offset + len(item.encode())
                 for offset, item in items)
    assert hidden or (at, packet) in items


@settings(deadline=None)
@given(packets, st.data())
def test_a_flipped_bit_outside_the_address_is_never_taken_for_the_packet(packet: Packet,
                                                                          data: st.DataObject
                                                                          ) -> None:
    wire = packet.encode()
    address_bits = range(16, 48)
    bit = data.draw(st.integers(0, 8 * len(wire) - 1).filter(lambda b: b not in address_bits))
    items = parse([flip(wire, bit)])
    assert packet not in items
    assert any(isinstance(item, FrameError) for item in items)


@settings(deadline=None)
@given(packets, st.data())
def test_a_truncated_packet_is_reported_and_never_returned(packet: Packet,
                                                           data: st.DataObject) -> None:
    wire = packet.encode()
    cut = data.draw(st.integers(1, len(wire) - 1))
    parser = PacketParser()
    assert not [i for i in parser.feed(wire[:cut]) if isinstance(i, Packet)]
    rest = parser.flush()
    assert rest and all(isinstance(item, FrameError) for item in rest)
