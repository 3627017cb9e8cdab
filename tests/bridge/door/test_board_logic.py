"""The door board's firmware logic, driven by tick(now_ms) with a fake clock: no sleeping."""

from __future__ import annotations

import os

import pytest

from firmware_bridge.firmware import doorauth, doorlink
from firmware_bridge.firmware.board import (
    EVENT_QUEUE_MAX,
    EVENT_RETRY_MS,
    EVENT_TRIES,
    Board,
    MemoryStore,
    Pins,
)
from firmware_bridge.firmware.doorlink import Frame

DEBOUNCE = 20


class FakePins:
    """Inputs a test sets by hand, and the relay's last command."""

    def __init__(self) -> None:
        self.door_open = False
        self.exit_pressed = False
        self.tamper = False
        self.key = ""
        self.relay_unlocked: bool | None = None

    def pins(self) -> Pins:
        def set_relay(unlocked: bool) -> None:
            self.relay_unlocked = unlocked

        return Pins(lambda: self.door_open, lambda: self.exit_pressed, lambda: self.tamper,
                    lambda: self.key, set_relay)


KEY = bytes(range(1, 33))


class Rig:
    """A board, its pins, a clock, and the host's side of the wire (sealing what it sends and
    checking what it hears, as the host driver does)."""

    def __init__(self, heartbeat_ms: int = 3000, *, provisioned: bool = True,
                 store: MemoryStore | None = None) -> None:
        self.io = FakePins()
        self.io.relay_unlocked = True  # whatever the relay did before the reset
        self.now = 0
        self.key = KEY
        self.store = store or MemoryStore(KEY if provisioned else None)
        self.board = Board(self.io.pins(), now_ms=0, heartbeat_ms=heartbeat_ms,
                           debounce_ms=DEBOUNCE, store=self.store)
        self.seq = 0
        self.parser = doorlink.Parser()
        self.session: bytes | None = None
        self.nonce = b""
        self.tx = 0
        self.rx = 0
        if self.board.provisioned:
            reply = self.hello(heartbeat_ms)
            assert reply.type == doorlink.HELLO_REPLY, reply

    def hello(self, heartbeat_ms: int = 3000, nonce: bytes | None = None) -> Frame:
        """Start a session as the host does; returns the board's answer."""
        self.nonce = nonce or os.urandom(doorlink.NONCE_LEN)
        return only(self.send(doorlink.HELLO,
                              doorlink.pack_hello(doorlink.PROTOCOL_VERSION, heartbeat_ms,
                                                  self.nonce)))

    def sealed(self, ftype: int, body: bytes = b"", seq: int | None = None) -> bytes:
        """The bytes of a frame as the host would send it now."""
        if seq is None:
            self.seq = (self.seq + 1) & 0xFF
            seq = self.seq
        if ftype == doorlink.HELLO:
            payload = doorauth.seal(self.key, doorauth.TO_BOARD, ftype, seq, body, 0)
        elif ftype == doorlink.PROVISION:
            payload = body
        else:
            assert self.session is not None
            self.tx += 1
            payload = doorauth.seal(self.session, doorauth.TO_BOARD, ftype, seq, body, self.tx)
        return doorlink.encode(ftype, seq, payload)

    def send(self, ftype: int, payload: bytes = b"", seq: int | None = None) -> list[Frame]:
        """One frame from the host; returns the board's immediate answer frames."""
        return self.raw(self.sealed(ftype, payload, seq))

    def raw(self, data: bytes) -> list[Frame]:
        """Bytes on the board's line; returns its immediate answers."""
        self.board.receive(data)
        return self.opened(self.parser.feed(self.board.take_output()))

    def opened(self, frames: list[Frame]) -> list[Frame]:
        """The board's frames with their bodies; a refusal in clear stays as it is."""
        result = []
        for frame in frames:
            if frame.type == doorlink.HELLO_REPLY:
                nonce = doorlink.unpack_hello_reply(doorauth.body_of(frame.payload))[4]
                self.session = doorauth.session_key(self.key, self.nonce, nonce)
                self.rx = 0
            if len(frame.payload) < doorauth.AUTH_LEN:  # a NAK in clear (no key to seal under)
                result.append(frame)
                continue
            assert self.session is not None
            body, counter = doorauth.unseal(self.session, doorauth.TO_HOST, frame.type,
                                            frame.seq, frame.payload)
            assert counter > self.rx, "the board repeated a counter"
            self.rx = counter
            result.append(Frame(frame.type, frame.seq, body))
        return result

    def run(self, ms: int, step: int = 1) -> list[Frame]:
        """Advance the clock by ``ms``, ticking every ``step``; returns what the board sent."""
        frames: list[Frame] = []
        for _ in range(0, ms, step):
            self.now += step
            self.board.tick(self.now)
            frames += self.opened(self.parser.feed(self.board.take_output()))
        return frames

    def events(self, frames: list[Frame], ack: bool = True) -> list[tuple[str, int]]:
        """The events among ``frames`` as (name, value), acknowledging each like the host."""
        found = []
        for frame in frames:
            if frame.type == doorlink.EVENT:
                kind, value, _ = doorlink.unpack_event(frame.payload)
                found.append((doorlink.EVENT_NAMES[kind], value))
                if ack:
                    self.send(doorlink.ACK, doorlink.pack_status(0), seq=frame.seq)
        return found

    def run_events(self, ms: int) -> list[tuple[str, int]]:
        """Advance ``ms`` while acknowledging events as they come; returns them."""
        found = []
        for _ in range(ms):
            found += self.events(self.run(1))
        return found


def relocked(reason: int) -> tuple[str, int]:
    return ("relocked", reason)


def only(frames: list[Frame]) -> Frame:
    assert len(frames) == 1, frames
    return frames[0]


# --- lock --------------------------------------------------------------------------------------


def test_board_powers_up_locked_whatever_the_relay_did_before() -> None:
    rig = Rig()
    assert rig.io.relay_unlocked is False
    assert rig.board.locked


def test_pulse_unlocks_and_relocks_by_itself_when_it_ends() -> None:
    rig = Rig()
    ack = only(rig.send(doorlink.PULSE, doorlink.pack_pulse(500)))
    assert (ack.type, ack.seq, ack.payload) == (doorlink.ACK, rig.seq, b"\x00")
    assert rig.io.relay_unlocked is True
    assert rig.run_events(499) == [("unlocked", 0)]
    assert rig.io.relay_unlocked is True
    assert rig.run_events(10) == [relocked(doorlink.RELOCK_PULSE_END)]
    assert rig.io.relay_unlocked is False


def test_pulse_longer_than_the_cap_is_shortened_and_says_so() -> None:
    rig = Rig(heartbeat_ms=doorlink.MAX_HEARTBEAT_MS)
    ack = only(rig.send(doorlink.PULSE, doorlink.pack_pulse(3_600_000)))
    assert doorlink.unpack_status(ack.payload) == doorlink.ACK_CAPPED
    rig.run(doorlink.MAX_PULSE_MS - 100, step=100)
    assert not rig.board.locked
    rig.run(200, step=100)
    assert rig.board.locked


def test_heartbeat_loss_relocks_with_its_reason() -> None:
    rig = Rig(heartbeat_ms=300)
    rig.send(doorlink.PULSE, doorlink.pack_pulse(10_000))
    events = rig.run_events(299)
    assert not rig.board.locked
    events += rig.run_events(5)
    assert events == [("unlocked", 0), relocked(doorlink.RELOCK_HEARTBEAT_LOST)]
    assert rig.io.relay_unlocked is False


def test_heartbeats_keep_a_long_pulse_open() -> None:
    rig = Rig(heartbeat_ms=300)
    rig.send(doorlink.PULSE, doorlink.pack_pulse(2000))
    for _ in range(8):
        rig.run_events(200)
        assert only(rig.send(doorlink.HEARTBEAT)).type == doorlink.ACK
    assert not rig.board.locked


def test_event_acks_alone_do_not_count_as_heartbeats() -> None:
    rig = Rig(heartbeat_ms=300)
    rig.send(doorlink.PULSE, doorlink.pack_pulse(10_000))
    for _ in range(10):  # the host's reader thread acks events even when its daemon hangs
        rig.io.exit_pressed = not rig.io.exit_pressed
        rig.run_events(40)
    assert rig.board.locked


def test_lock_command_relocks_at_once() -> None:
    rig = Rig()
    rig.send(doorlink.PULSE, doorlink.pack_pulse(5000))
    assert only(rig.send(doorlink.LOCK)).type == doorlink.ACK
    assert rig.io.relay_unlocked is False
    assert rig.run_events(10) == [("unlocked", 0), relocked(doorlink.RELOCK_COMMAND)]


def test_lock_while_locked_is_acknowledged_without_an_event() -> None:
    rig = Rig()
    assert only(rig.send(doorlink.LOCK)).type == doorlink.ACK
    assert rig.run_events(50) == []


# --- HELLO, STATE, NAKs ------------------------------------------------------------------------


def test_hello_sets_the_heartbeat_timeout_and_reports_the_settings() -> None:
    rig = Rig()
    reply = rig.hello(500)
    assert reply.type == doorlink.HELLO_REPLY
    version, heartbeat, debounce, max_pulse, _nonce, firmware = doorlink.unpack_hello_reply(
        reply.payload)
    assert (version, heartbeat, debounce, max_pulse, firmware) == (
        doorlink.PROTOCOL_VERSION, 500, DEBOUNCE, doorlink.MAX_PULSE_MS, rig.board.firmware)
    assert rig.board.heartbeat_ms == 500


def test_hello_in_another_version_is_refused_naming_the_boards_version() -> None:
    rig = Rig()
    nak = only(rig.raw(doorlink.encode(doorlink.HELLO, 7, b"\x09anything")))
    assert nak.type == doorlink.NAK
    assert doorlink.unpack_nak(nak.payload) == (doorlink.NAK_UNSUPPORTED_VERSION,
                                                doorlink.PROTOCOL_VERSION)


@pytest.mark.parametrize(("ftype", "payload", "code"), [
    (doorlink.HELLO, doorlink.pack_hello(doorlink.PROTOCOL_VERSION, 99, bytes(16)),
     doorlink.NAK_BAD_PAYLOAD),
    (doorlink.HELLO, doorlink.pack_hello(doorlink.PROTOCOL_VERSION, 60001, bytes(16)),
     doorlink.NAK_BAD_PAYLOAD),
    (doorlink.HELLO, b"", doorlink.NAK_UNSUPPORTED_VERSION),
    (doorlink.PULSE, b"\x01", doorlink.NAK_BAD_PAYLOAD),
    (doorlink.PULSE, doorlink.pack_pulse(0), doorlink.NAK_BAD_PAYLOAD),
    (doorlink.LOCK, b"\x00", doorlink.NAK_BAD_PAYLOAD),
    (doorlink.STATE, b"\x00", doorlink.NAK_BAD_PAYLOAD),
    (0x42, b"", doorlink.NAK_UNKNOWN_TYPE),
    (doorlink.EVENT, doorlink.pack_event(1, 0, 0), doorlink.NAK_UNKNOWN_TYPE),
])
def test_commands_it_cannot_carry_out_are_refused_and_leave_it_locked(
        ftype: int, payload: bytes, code: int) -> None:
    rig = Rig()
    nak = only(rig.send(ftype, payload))
    assert (nak.type, nak.seq) == (doorlink.NAK, rig.seq)
    assert doorlink.unpack_nak(nak.payload)[0] == code
    assert rig.board.locked and rig.io.relay_unlocked is False
    assert rig.board.heartbeat_ms == 3000


def test_state_reports_lock_and_debounced_inputs() -> None:
    rig = Rig()
    rig.io.tamper = True
    rig.run(DEBOUNCE + 5)
    flags, board_ms = doorlink.unpack_state(only(rig.send(doorlink.STATE)).payload)
    assert flags == doorlink.FLAG_LOCKED | doorlink.FLAG_TAMPER
    assert board_ms == rig.now


def test_noise_before_a_command_is_skipped_and_a_false_start_released_when_idle() -> None:
    rig = Rig()
    rig.board.receive(b"\x00\xff\xac\xce\x40" + rig.sealed(doorlink.HEARTBEAT, seq=5))
    assert rig.parser.feed(rig.board.take_output()) == []  # held behind the false start
    answer = rig.run(doorlink.IDLE_RESYNC_MS + 2)
    assert [(f.type, f.seq) for f in answer] == [(doorlink.ACK, 5)]


# --- inputs ------------------------------------------------------------------------------------


def test_a_bounce_shorter_than_the_debounce_time_is_not_reported() -> None:
    rig = Rig()
    rig.io.exit_pressed = True
    rig.run(DEBOUNCE - 5)
    rig.io.exit_pressed = False
    assert rig.run_events(100) == []


def test_a_change_is_reported_once_it_held_for_the_debounce_time() -> None:
    rig = Rig()
    rig.send(doorlink.PULSE, doorlink.pack_pulse(5000))
    rig.run_events(5)
    rig.io.door_open = True
    assert rig.run_events(DEBOUNCE - 1) == []
    assert rig.run_events(2) == [("door_opened", 0)]
    rig.io.door_open = False
    assert rig.run_events(DEBOUNCE + 1) == [("door_closed", 0)]


def test_contact_opening_while_locked_is_reported_as_forced() -> None:
    rig = Rig()
    rig.io.door_open = True
    assert rig.run_events(50) == [("door_forced", 0)]


def test_door_opened_just_before_the_relock_is_not_called_forced() -> None:
    rig = Rig()
    rig.send(doorlink.PULSE, doorlink.pack_pulse(100))
    rig.run_events(95)
    rig.io.door_open = True  # pushed open 5 ms before the pulse ends, confirmed after it
    events = rig.run_events(50)
    assert ("door_opened", 0) in events and ("door_forced", 0) not in events


def test_exit_button_and_tamper_are_reported() -> None:
    rig = Rig()
    rig.io.exit_pressed = True
    rig.io.tamper = True
    events = rig.run_events(50)
    rig.io.exit_pressed = False
    rig.io.tamper = False
    events += rig.run_events(50)
    assert sorted(events) == [("exit_pressed", 0), ("tamper_off", 0), ("tamper_on", 0)]


def test_a_held_key_is_reported_once_and_again_only_after_release() -> None:
    rig = Rig()
    rig.io.key = "7"
    events = rig.run_events(200)
    rig.io.key = ""
    events += rig.run_events(50)
    rig.io.key = "7"
    events += rig.run_events(50)
    assert events == [("key", ord("7")), ("key", ord("7"))]


def test_a_value_that_is_no_key_is_ignored() -> None:
    rig = Rig()
    rig.io.key = "x"
    assert rig.run_events(50) == []


def test_inputs_present_at_power_up_are_state_not_events() -> None:
    io = FakePins()
    io.door_open = io.tamper = True
    board = Board(io.pins(), now_ms=0)
    for now in range(1, 100):
        board.tick(now)
    assert board.pending_events == 0
    assert board.state_flags() == (doorlink.FLAG_LOCKED | doorlink.FLAG_DOOR_OPEN
                                   | doorlink.FLAG_TAMPER)


# --- events: retransmission and the bounded queue ----------------------------------------------


def test_an_unacknowledged_event_is_retransmitted_at_intervals_then_dropped() -> None:
    rig = Rig()
    rig.io.exit_pressed = True
    sent = rig.run(DEBOUNCE + EVENT_RETRY_MS * (EVENT_TRIES + 2))
    assert [f.type for f in sent] == [doorlink.EVENT] * EVENT_TRIES
    assert len({f.seq for f in sent}) == 1  # the same event, the same seq: the host dedups it
    assert rig.board.pending_events == 0
    assert rig.board.events_dropped == 1


def test_an_event_lost_once_arrives_on_the_retry() -> None:
    rig = Rig()
    rig.io.exit_pressed = True
    first = rig.run(DEBOUNCE + 1)
    assert rig.events(first, ack=False) == [("exit_pressed", 0)]  # as if this frame was lost
    assert rig.run_events(EVENT_RETRY_MS + 1) == [("exit_pressed", 0)]
    assert rig.run(EVENT_RETRY_MS * 3) == []


def test_events_go_out_one_at_a_time_in_order() -> None:
    rig = Rig()
    rig.io.tamper = True
    rig.io.exit_pressed = True
    rig.io.door_open = True
    burst = rig.run(DEBOUNCE + 1)
    assert len(burst) == 1  # the rest wait for its ACK
    events = rig.events(burst) + rig.run_events(5)
    assert events == [("door_forced", 0), ("exit_pressed", 0), ("tamper_on", 0)]


def test_an_ack_for_another_seq_does_not_release_the_event() -> None:
    rig = Rig()
    rig.io.exit_pressed = True
    event = only(rig.run(DEBOUNCE + 1))
    rig.send(doorlink.ACK, doorlink.pack_status(0), seq=(event.seq + 1) & 0xFF)
    assert rig.board.pending_events == 1


def test_the_event_queue_is_bounded_and_drops_the_oldest() -> None:
    rig = Rig()
    for _ in range(EVENT_QUEUE_MAX + 5):  # nobody acknowledges: the host is gone
        rig.io.tamper = not rig.io.tamper
        rig.run(DEBOUNCE + 1)
    assert rig.board.pending_events == EVENT_QUEUE_MAX
    assert rig.board.events_dropped == 5
