"""Someone on the door board's cable: forged, replayed, truncated and downgraded frames never move
the relay, and both ends say so (the board with a ``wire_rejected`` event, the host driver with a
``DoorWireError``). The real driver against the simulated board, the attacker played by the
simulator's injection and man-in-the-middle hooks."""

from __future__ import annotations

import hmac
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.door import DoorEventKind
from firmware_bridge.doorboard import SerialDoorBoard, provision_board
from firmware_bridge.errors import DoorNotProvisionedError, DoorWireError
from firmware_bridge.firmware import doorauth, doorlink
from firmware_bridge.firmware.board import Board, MemoryStore
from hardware_sim.door import SimulatedDoorBoard

from .conftest import HANG_GUARD, wait_for_event, wait_until
from .test_board_logic import KEY, FakePins, Rig

K = DoorEventKind


def relay_moved(sim: SimulatedDoorBoard, since: float) -> bool:
    return any(c.what == "relay_locked" and not c.value and c.at >= since for c in sim.history)


def rejected(door: SerialDoorBoard) -> str | None:
    event, _ = wait_for_event(door, K.WIRE_REJECTED)
    return event.reason


def forged_pulse(seq: int = 200) -> bytes:
    """A well-formed PULSE of 30 s with a counter far ahead and a tag of random bytes."""
    payload = doorlink.pack_pulse(30_000) + struct.pack(">I", 1 << 30) + os.urandom(16)
    return doorlink.encode(doorlink.PULSE, seq, payload)


# --- toward the board -------------------------------------------------------------------------


def test_a_forged_pulse_never_moves_the_relay_and_the_board_reports_it(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    start = time.monotonic()
    sim.inject_to_board(forged_pulse())
    assert rejected(door) == "bad MAC"
    assert door.inputs().locked
    assert not relay_moved(sim, start)


def test_a_replayed_pulse_never_moves_the_relay_again(sim: SimulatedDoorBoard,
                                                      door: SerialDoorBoard) -> None:
    door.pulse(0.2)
    wait_for_event(door, K.RELOCKED)
    recorded = [f for f in sim.heard_frames if f[4] == doorlink.PULSE][-1]
    start = time.monotonic()
    sim.inject_to_board(recorded)
    assert rejected(door) == "replayed frame"
    assert not relay_moved(sim, start)


@pytest.mark.parametrize(("frame", "why"), [
    # the tag cut off (and the CRC made right again): too short to carry a counter and a MAC
    (doorlink.encode(doorlink.PULSE, 9, doorlink.pack_pulse(30_000) + struct.pack(">I", 99)),
     "truncated"),
    # what a version-1 host sent: a PULSE in clear
    (doorlink.encode(doorlink.PULSE, 9, doorlink.pack_pulse(30_000)), "in clear"),
])
def test_a_truncated_or_clear_pulse_never_moves_the_relay(
        sim: SimulatedDoorBoard, door: SerialDoorBoard, frame: bytes, why: str) -> None:
    start = time.monotonic()
    sim.inject_to_board(frame)
    assert rejected(door) == "unauthenticated or truncated frame", why
    assert not relay_moved(sim, start)


def test_a_pulse_sealed_for_the_host_cannot_be_reflected_back_to_the_board(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    """Directions are part of the MAC: the board's own frames mean nothing to it."""
    door.inputs()
    said = [f for f in sim.heard_frames][-1]  # any frame the host sent, re-typed as a PULSE
    start = time.monotonic()
    sim.inject_to_board(doorlink.encode(doorlink.PULSE, said[3], said[5:-2]))
    assert rejected(door) in ("bad MAC", "unauthenticated or truncated frame")
    assert not relay_moved(sim, start)


def test_a_flood_of_forgeries_neither_opens_the_door_nor_drowns_its_own_events(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    start = time.monotonic()
    for seq in range(200):
        sim.inject_to_board(forged_pulse(seq))
    sim.force_door()
    event, seen = wait_for_event(door, K.DOOR_FORCED)
    assert event.kind is K.DOOR_FORCED
    assert sum(e.kind is K.WIRE_REJECTED for e in seen) <= 2  # reported, not repeated 200 times
    assert not relay_moved(sim, start)


# --- toward the host --------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [
    doorlink.encode(doorlink.EVENT, 77, doorlink.pack_event(doorlink.EV_DOOR_CLOSED, 0, 1)),
    doorlink.encode(doorlink.EVENT, 77, doorlink.pack_event(doorlink.EV_DOOR_CLOSED, 0, 1)
                    + struct.pack(">I", 1 << 30) + bytes(16)),
])
def test_a_forged_frame_to_the_host_ends_the_session_with_a_wire_error(
        sim: SimulatedDoorBoard, door: SerialDoorBoard, frame: bytes) -> None:
    sim.inject_to_host(frame)
    with pytest.raises(DoorWireError, match="Someone may be on the cable"):
        door.next_event(HANG_GUARD)
    with pytest.raises(DoorWireError):
        door.pulse(1)
    assert sim.relay_locked


def test_a_replayed_answer_to_the_host_ends_the_session(sim: SimulatedDoorBoard,
                                                        door: SerialDoorBoard) -> None:
    said: list[bytes] = []

    def wiretap(frame: doorlink.Frame) -> bytes:
        said.append(frame.encode())
        return frame.encode()

    sim.intercept_to_host(wiretap)
    door.inputs()
    wait_until(lambda: bool(said))
    sim.inject_to_host(said[-1])
    with pytest.raises(DoorWireError, match="replayed frame"):
        door.next_event(HANG_GUARD)


# --- downgrade, keys, provisioning --------------------------------------------------------------


@pytest.mark.parametrize("answer", ["version 1 reply in clear", "NAK unsupported version"])
def test_a_downgraded_hello_reply_is_refused_never_spoken_to_in_clear(
        sim: SimulatedDoorBoard, link_key: bytes, answer: str) -> None:
    def downgrade(frame: doorlink.Frame) -> bytes:
        if frame.type != doorlink.HELLO_REPLY:
            return frame.encode()
        if answer.startswith("NAK"):
            return doorlink.encode(doorlink.NAK, frame.seq, doorlink.pack_nak(
                doorlink.NAK_UNSUPPORTED_VERSION, 1))
        return doorlink.encode(doorlink.HELLO_REPLY, frame.seq, doorlink.pack_hello_reply(
            1, 3000, 20, doorlink.MAX_PULSE_MS, bytes(16), "legacy")[:9] + b"legacy")

    sim.intercept_to_host(downgrade)
    driver = SerialDoorBoard(sim.path, link_key=link_key)
    with pytest.raises(DoorWireError, match=r"version 1.*never falls back"):
        driver.open()
    driver.close()
    assert {c.name for c in sim.commands} == {"HELLO"}  # nothing else was ever sent
    assert sim.relay_locked


def test_a_board_holding_another_key_is_refused_at_open(sim: SimulatedDoorBoard) -> None:
    driver = SerialDoorBoard(sim.path, link_key=os.urandom(32))
    with pytest.raises(DoorWireError, match=r"holds another key.*accessd door provision"):
        driver.open()
    driver.close()


def test_a_new_board_is_not_provisioned_and_obeys_nothing(tmp_path: Path) -> None:
    sim = SimulatedDoorBoard(tmp_path / "door")
    sim.start()
    try:
        driver = SerialDoorBoard(sim.path, link_key=os.urandom(32))
        with pytest.raises(DoorNotProvisionedError, match="accessd door provision"):
            driver.open()
        driver.close()
        sim.inject_to_board(doorlink.encode(doorlink.PULSE, 1, doorlink.pack_pulse(30_000)))
        time.sleep(0.1)  # give the board time to (not) act
        assert sim.relay_locked and not sim.provisioned
    finally:
        sim.stop()


def test_a_driver_without_a_key_refuses_to_open_saying_what_to_run(
        sim: SimulatedDoorBoard) -> None:
    with pytest.raises(DoorNotProvisionedError, match="accessd door provision"):
        SerialDoorBoard(sim.path, link_key=None).open()


@pytest.fixture
def blank(tmp_path: Path) -> Iterator[SimulatedDoorBoard]:
    sim = SimulatedDoorBoard(tmp_path / "door")
    sim.start()
    yield sim
    sim.stop()


def test_provisioning_happens_once_and_a_second_key_needs_the_jumper(
        blank: SimulatedDoorBoard) -> None:
    first, second = os.urandom(32), os.urandom(32)
    provision_board(blank.path, first)
    assert blank.provisioned
    with pytest.raises(DoorWireError, match="provisioning jumper"):
        provision_board(blank.path, second)
    with_first = SerialDoorBoard(blank.path, link_key=first)
    with_first.open()  # the refused attempt changed nothing
    with_first.close()

    blank.provision_jumper(True)
    provision_board(blank.path, second)
    blank.provision_jumper(False)
    with pytest.raises(DoorWireError):
        SerialDoorBoard(blank.path, link_key=first).open()
    with_second = SerialDoorBoard(blank.path, link_key=second)
    with_second.open()
    with_second.pulse(0.1)
    with_second.close()


def test_an_attempt_to_reprovision_is_refused_and_the_host_hears_of_it(
        sim: SimulatedDoorBoard, door: SerialDoorBoard) -> None:
    sim.inject_to_board(doorlink.encode(doorlink.PROVISION, 1, os.urandom(32)))
    # The refusal goes out in clear (the tool provisioning needs no seal to read it), which the
    # host, in its session, takes for what it is: a frame it did not expect, a wire fault.
    with pytest.raises(DoorWireError):
        while True:
            door.next_event(HANG_GUARD)
    door.open()  # the board kept its key: the session starts again
    assert rejected(door) == "provisioning refused"  # and the board says why, sealed


@pytest.mark.parametrize("key", [bytes(32), b"\xff" * 32, bytes(16)])
def test_a_default_or_short_key_is_refused_by_the_board(blank: SimulatedDoorBoard,
                                                        key: bytes) -> None:
    blank.inject_to_board(doorlink.encode(doorlink.PROVISION, 1, key))
    time.sleep(0.1)
    assert not blank.provisioned
    with pytest.raises(ValueError):
        provision_board(blank.path, key)


def test_the_key_survives_a_reboot_of_the_board(tmp_path: Path, link_key: bytes) -> None:
    for _ in range(2):
        sim = SimulatedDoorBoard(tmp_path / "door", link_key=None if _ else link_key)
        sim.start()
        try:
            driver = SerialDoorBoard(sim.path, link_key=link_key)
            driver.open()
            driver.close()
        finally:
            sim.stop()


# --- the board's logic alone -----------------------------------------------------------------


def test_session_numbers_never_repeat_across_reboots_whatever_the_random_source() -> None:
    """A board whose random source is broken still never repeats a session: the first four
    bytes of its nonce come from a counter kept in flash."""
    store = MemoryStore(KEY)
    numbers = []
    for _boot in range(3):
        board = Board(FakePins().pins(), store=store, random=lambda n: bytes(n))
        for _hello in range(3):
            nonce = os.urandom(16)
            board.receive(doorlink.encode(doorlink.HELLO, 1, doorauth.seal(
                KEY, doorauth.TO_BOARD, doorlink.HELLO, 1,
                doorlink.pack_hello(doorlink.PROTOCOL_VERSION, 3000, nonce), 0)))
            frame = doorlink.Parser().feed(board.take_output())[0]
            board_nonce = doorlink.unpack_hello_reply(doorauth.body_of(frame.payload))[4]
            numbers.append(struct.unpack(">I", board_nonce[:4])[0])
    assert numbers == sorted(set(numbers))


def test_a_hello_retried_with_the_same_nonce_keeps_the_session_and_its_counters() -> None:
    rig = Rig()
    rig.send(doorlink.PULSE, doorlink.pack_pulse(100))
    pulse = rig.sealed(doorlink.PULSE, doorlink.pack_pulse(100))
    rig.raw(pulse)
    rig.hello(nonce=rig.nonce)  # the host's retry of the same HELLO, arriving late
    rig.run(200)
    assert rig.board.locked
    rig.raw(pulse)  # a replay after the repeated HELLO is still a replay
    assert rig.board.locked and rig.board.frames_rejected == 1


def test_the_board_never_sends_its_key() -> None:
    rig = Rig(provisioned=False)
    rig.board.receive(doorlink.encode(doorlink.PROVISION, 1, KEY))
    said = rig.board.take_output()
    rig.hello()
    said += b"".join(f.encode() for f in rig.run(500))
    assert KEY not in said and rig.board.provisioned


@settings(max_examples=300, deadline=None, derandomize=True)
@given(ftype=st.integers(0, 255), seq=st.integers(0, 255),
       payload=st.binary(max_size=doorlink.MAX_PAYLOAD))
def test_no_frame_without_the_key_unlocks_the_board(ftype: int, seq: int,
                                                     payload: bytes) -> None:
    rig = Rig()
    rig.raw(doorlink.encode(ftype, seq, payload))
    assert rig.board.locked and rig.io.relay_unlocked is False


def test_the_firmware_hmac_is_rfc_2104_hmac_sha256() -> None:
    """MicroPython has no hmac module: the board computes it itself."""
    for key, msg in [(KEY, b""), (b"k", b"message"), (os.urandom(80), os.urandom(300))]:
        assert doorauth._hmac_pure(key, msg) == hmac.digest(key, msg, "sha256")
