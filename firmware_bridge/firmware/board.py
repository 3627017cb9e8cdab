"""How the door board behaves, whatever it runs on.

The Pico's ``main.py`` wires this to machine.Pin and the UART; the simulator
(``hardware_sim/door.py``) wires it to a simulated world. One source of truth for the board's
behaviour, so it stays importable on CPython and MicroPython alike (no typing at runtime, no
dataclasses, no enum, no f-strings).

It is fail-secure: it powers up locked, relocks when a pulse ends and when the host's commands
stop for the heartbeat timeout, and refuses (NAK) anything it does not understand without moving
the relay. Time comes in only through ``tick(now_ms)``: a monotonic millisecond count that never
wraps (``main.py`` accumulates ``ticks_diff`` into one).

The wire is authenticated (``doorauth.py``). The board leaves the factory without a key and does
nothing but answer "not provisioned" until a host provisions it; afterwards it obeys only frames
sealed under the session key of the last HELLO, each with a counter above the last one, and
reports every other frame to the host as a ``wire_rejected`` event (without moving the relay).
The key and the session numbers' high-water mark live in flash (``FlashStore``).
"""

import os
import struct

try:
    from collections.abc import Callable  # noqa: F401 - for the type comments
except ImportError:  # MicroPython
    pass

try:
    from . import doorauth, doorlink
except ImportError:  # MicroPython: the firmware's files sit flat in the Pico's root
    import doorauth  # type: ignore[no-redef]
    import doorlink  # type: ignore[no-redef]

FIRMWARE_VERSION = "accessd-door 2.0"
DEFAULT_DEBOUNCE_MS = 20
EVENT_RETRY_MS = 100  # an unacknowledged event goes out again after this long...
EVENT_TRIES = 5  # ...at most this many times in all, then it is dropped
EVENT_QUEUE_MAX = 16  # events waiting for the host; when full the oldest goes
SESSION_RESERVE = 64  # session numbers reserved per flash write (wear: one write per 64 HELLOs)
_STORE_MAGIC = b"ADK2"


class MemoryStore:
    """A board's flash that forgets at power-off: for tests of the logic alone."""

    def __init__(self, key=None, session_high_water=0):
        # type: (bytes | None, int) -> None
        self._saved = (key, session_high_water)

    def load(self):
        # type: () -> tuple
        """(key or None, session high-water mark)."""
        return self._saved

    def save(self, key, session_high_water):
        # type: (bytes | None, int) -> None
        self._saved = (key, session_high_water)


class FlashStore:
    """The key and the session high-water mark in one small file, replaced atomically.

    Layout: magic ``ADK2``, session high-water u32, key length u8, key. A missing or damaged
    file reads as "unprovisioned" with the high-water mark 0; the key is never derivable from
    anything else, so a damaged file means re-provisioning (with the jumper), never a default.
    """

    def __init__(self, path):
        # type: (str) -> None
        self.path = path

    def load(self):
        # type: () -> tuple
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return None, 0
        if len(data) < 9 or data[:4] != _STORE_MAGIC:
            return None, 0
        high_water = struct.unpack(">I", data[4:8])[0]
        key = bytes(data[9:9 + data[8]])
        return (key if doorauth.acceptable_key(key) else None), high_water

    def save(self, key, session_high_water):
        # type: (bytes | None, int) -> None
        key = key or b""
        tmp = self.path + ".new"
        with open(tmp, "wb") as f:
            f.write(_STORE_MAGIC + struct.pack(">IB", session_high_water, len(key)) + key)
        os.rename(tmp, self.path)


def _expect_empty(frame):
    # type: (doorlink.Frame) -> None
    if frame.payload:
        raise doorlink.PayloadError("this message carries no payload")


class Pins:
    """The board's wiring: four sample functions and one output.

    ``door_open``, ``exit_pressed`` and ``tamper`` return the raw, undebounced input (True: door
    open, button pressed, case open); ``key`` returns the keypad key held down ("0".."9", "*",
    "#") or "" for none; ``set_relay(unlocked)`` drives the lock relay; ``provision_jumper``
    returns True while the jumper inside the case is closed (a board without one passes None).
    """

    def __init__(self, door_open, exit_pressed, tamper, key, set_relay, provision_jumper=None):
        self.door_open = door_open
        self.exit_pressed = exit_pressed
        self.tamper = tamper
        self.key = key
        self.set_relay = set_relay
        self.provision_jumper = provision_jumper or (lambda: False)


class Debounced:
    """One input whose changes count only after they held still for the debounce time."""

    def __init__(self, value, now_ms):
        self.value = value  # the stable, reported state
        self.since = now_ms  # when the raw input last changed
        self._raw = value

    def sample(self, raw, now_ms, debounce_ms):
        # type: (object, int, int) -> bool
        """Feed one raw sample; True when the stable value just changed."""
        if raw != self._raw:
            self._raw = raw
            self.since = now_ms
        if self._raw != self.value and now_ms - self.since >= debounce_ms:
            self.value = self._raw
            return True
        return False


class Board:
    """The door board: feed it ``tick(now_ms)`` and ``receive(bytes)``, send ``take_output()``.

    :param pins: the board's wiring (see ``Pins``).
    :param now_ms: the clock at power-up.
    :param heartbeat_ms: relock when no command came for this long; HELLO may change it.
    :param debounce_ms: an input change counts once it held this long.
    :param store: the flash holding the key and the session high-water mark (``FlashStore``).
    :param random: ``random(n)`` gives n unpredictable bytes (``os.urandom``).
    """

    def __init__(self, pins, now_ms=0, heartbeat_ms=doorlink.DEFAULT_HEARTBEAT_MS,
                 debounce_ms=DEFAULT_DEBOUNCE_MS, firmware=FIRMWARE_VERSION, store=None,
                 random=None):
        # type: (Pins, int, int, int, str, MemoryStore | FlashStore | None, Callable[[int], bytes] | None) -> None
        self.pins = pins
        self.store = store if store is not None else MemoryStore()
        self._random = random or os.urandom
        self._link_key, self._session_reserved = self.store.load()
        self._next_session = self._session_reserved  # never below what any earlier boot used
        self._session = None  # type: bytes | None
        self._host_nonce = b""
        self._hello_body = b""
        self._rx_counter = 0  # the host's last accepted counter in this session
        self._tx_counter = 0
        self.frames_rejected = 0
        self.frames_ignored = 0  # sealed frames heard with no session (after a reboot)
        self.heartbeat_ms = heartbeat_ms
        self.debounce_ms = debounce_ms
        self.firmware = firmware
        self.locked = True
        pins.set_relay(False)  # whatever the relay did before the reset, it is locked now
        self.events_dropped = 0
        self._now = now_ms
        self._locked_since = now_ms
        self._unlock_until = -1
        self._last_command_ms = now_ms
        self._last_rx_ms = now_ms
        self._parser = doorlink.Parser()
        self._out = bytearray()
        self._events = []  # type: list[list]  # [seq, body, tries, next send ms]
        self._event_seq = 0
        # Inputs present at power-up are state, not news: STATE reports them.
        self._door = Debounced(bool(pins.door_open()), now_ms)
        self._exit = Debounced(bool(pins.exit_pressed()), now_ms)
        self._tamper = Debounced(bool(pins.tamper()), now_ms)
        self._key = Debounced(pins.key() or "", now_ms)

    # --- the loop's three calls ---------------------------------------------------------------

    def tick(self, now_ms):
        # type: (int) -> None
        """Advance the clock: relock when due, sample the inputs, (re)send events."""
        self._now = now_ms
        if self._parser.buffered and now_ms - self._last_rx_ms >= doorlink.IDLE_RESYNC_MS:
            for frame in self._parser.idle():
                self._handle(frame)
        if not self.locked:
            if now_ms >= self._unlock_until:
                self._relock(doorlink.RELOCK_PULSE_END)
            elif now_ms - self._last_command_ms >= self.heartbeat_ms:
                self._relock(doorlink.RELOCK_HEARTBEAT_LOST)
        self._sample_inputs(now_ms)
        self._send_events(now_ms)

    def receive(self, data):
        # type: (bytes) -> None
        """Bytes from the host's UART, at the time of the last tick."""
        if data:
            self._last_rx_ms = self._now
        for frame in self._parser.feed(data):
            self._handle(frame)

    def take_output(self):
        # type: () -> bytes
        """The bytes to write to the UART now (empty when there is nothing to say)."""
        out = bytes(self._out)
        self._out = bytearray()
        return out

    # --- what the host can ask for ----------------------------------------------------------

    def state_flags(self):
        # type: () -> int
        flags = doorlink.FLAG_LOCKED if self.locked else 0
        if self._door.value:
            flags |= doorlink.FLAG_DOOR_OPEN
        if self._exit.value:
            flags |= doorlink.FLAG_EXIT_PRESSED
        if self._tamper.value:
            flags |= doorlink.FLAG_TAMPER
        return flags

    @property
    def pending_events(self):
        # type: () -> int
        return len(self._events)

    @property
    def provisioned(self):
        # type: () -> bool
        return self._link_key is not None

    def _handle(self, frame):
        # type: (doorlink.Frame) -> None
        ftype = frame.type
        if ftype == doorlink.PROVISION:
            self._provision(frame)
            return
        if ftype == doorlink.HELLO:
            self._hello(frame)
            return
        if self._session is None:
            # Nothing but HELLO can authenticate before a session: after a reboot, the host's
            # frames of the session before land here until it greets the board again.
            self.frames_ignored += 1
            return
        try:
            body, counter = doorauth.unseal(self._session, doorauth.TO_BOARD, ftype, frame.seq,
                                            frame.payload)
        except doorauth.AuthError as exc:
            self._rejected(exc.reason)
            return
        if counter <= self._rx_counter:
            self._rejected(doorauth.REPLAYED)
            return
        self._rx_counter = counter
        self._command(doorlink.Frame(ftype, frame.seq, body))

    def _command(self, frame):
        # type: (doorlink.Frame) -> None
        ftype = frame.type
        if ftype in (doorlink.ACK, doorlink.NAK):
            self._event_acknowledged(frame.seq)
            # Acknowledgements do not count as heartbeats: the host driver's reader thread sends
            # them, and it keeps running when the daemon's loop hangs.
            return
        self._last_command_ms = self._now
        try:
            if ftype == doorlink.PULSE:
                self._pulse(frame)
            elif ftype == doorlink.LOCK:
                _expect_empty(frame)
                if not self.locked:
                    self._relock(doorlink.RELOCK_COMMAND)
                self._reply(doorlink.ACK, frame.seq, doorlink.pack_status(doorlink.ACK_OK))
            elif ftype == doorlink.HEARTBEAT:
                _expect_empty(frame)
                self._reply(doorlink.ACK, frame.seq, doorlink.pack_status(doorlink.ACK_OK))
            elif ftype == doorlink.STATE:
                _expect_empty(frame)
                self._reply(doorlink.STATE_REPLY, frame.seq,
                            doorlink.pack_state(self.state_flags(), self._now))
            else:
                self._reply(doorlink.NAK, frame.seq,
                            doorlink.pack_nak(doorlink.NAK_UNKNOWN_TYPE, ftype))
        except doorlink.PayloadError:
            self._reply(doorlink.NAK, frame.seq, doorlink.pack_nak(doorlink.NAK_BAD_PAYLOAD, ftype))

    def _hello(self, frame):
        # type: (doorlink.Frame) -> None
        # The version is checked before the rest is read: another version may lay it out otherwise.
        if not frame.payload or frame.payload[0] != doorlink.PROTOCOL_VERSION:
            self._reply_clear(doorlink.NAK, frame.seq, doorlink.pack_nak(
                doorlink.NAK_UNSUPPORTED_VERSION, doorlink.PROTOCOL_VERSION))
            return
        if self._link_key is None:
            self._reply_clear(doorlink.NAK, frame.seq,
                              doorlink.pack_nak(doorlink.NAK_NOT_PROVISIONED, 0))
            return
        try:
            body, _counter = doorauth.unseal(self._link_key, doorauth.TO_BOARD, frame.type,
                                             frame.seq, frame.payload)
        except doorauth.AuthError as exc:
            # Said in clear (there is no shared key to seal under), so that the host can tell a
            # board holding another key from a silent one; it reveals nothing of the key.
            self._reply_clear(doorlink.NAK, frame.seq, doorlink.pack_nak(doorlink.NAK_BAD_KEY, 0))
            self._rejected(exc.reason)
            return
        try:
            _version, heartbeat_ms, host_nonce = doorlink.unpack_hello(body)
            if not doorlink.MIN_HEARTBEAT_MS <= heartbeat_ms <= doorlink.MAX_HEARTBEAT_MS:
                raise doorlink.PayloadError("heartbeat timeout out of bounds")
        except doorlink.PayloadError:
            self._reply_clear(doorlink.NAK, frame.seq,
                              doorlink.pack_nak(doorlink.NAK_BAD_PAYLOAD, frame.type))
            return
        self._last_command_ms = self._now
        if self._session is None or not doorauth.equal(host_nonce, self._host_nonce):
            # A new session; a HELLO repeated with the same nonce (the host's retry) keeps the
            # session and its counters, so a retry can neither split the two sides' keys nor
            # make a command of this session acceptable again.
            self.heartbeat_ms = heartbeat_ms
            self._new_session(host_nonce)
        self._reply(doorlink.HELLO_REPLY, frame.seq, self._hello_body)

    def _new_session(self, host_nonce):
        # type: (bytes) -> None
        number = self._next_session
        if number >= self._session_reserved:  # reserve the next block before using one of it
            self._session_reserved = number + SESSION_RESERVE
            self.store.save(self._link_key, self._session_reserved)
        self._next_session = number + 1
        board_nonce = struct.pack(">I", number) + bytes(self._random(doorlink.NONCE_LEN - 4))
        self._session = doorauth.session_key(self._link_key, host_nonce, board_nonce)
        self._host_nonce = bytes(host_nonce)
        self._rx_counter = 0
        self._tx_counter = 0
        self._hello_body = doorlink.pack_hello_reply(
            doorlink.PROTOCOL_VERSION, self.heartbeat_ms, self.debounce_ms,
            doorlink.MAX_PULSE_MS, board_nonce, self.firmware)

    def _provision(self, frame):
        # type: (doorlink.Frame) -> None
        key = bytes(frame.payload)
        if not doorauth.acceptable_key(key):
            self._reply_clear(doorlink.NAK, frame.seq,
                              doorlink.pack_nak(doorlink.NAK_BAD_PAYLOAD, frame.type))
            return
        same = self._link_key is not None and doorauth.equal(key, self._link_key)
        if self._link_key is not None and not same and not self.pins.provision_jumper():
            self._reply_clear(doorlink.NAK, frame.seq,
                              doorlink.pack_nak(doorlink.NAK_PROVISION_REFUSED, 0))
            self._rejected(doorauth.PROVISION_REFUSED)
            return
        if not same:
            self._link_key = key
            self.store.save(key, self._session_reserved)
            self._session = None  # nothing sealed under the old key counts any more
            if not self.locked:
                self._relock(doorlink.RELOCK_COMMAND)
        # The answer proves the board holds the key, and reveals nothing of it.
        self._out.extend(doorlink.encode(doorlink.ACK, frame.seq, doorauth.seal(
            key, doorauth.TO_HOST, doorlink.ACK, frame.seq, doorlink.pack_status(doorlink.ACK_OK),
            0)))

    def _rejected(self, reason):
        # type: (int) -> None
        """A frame that did not authenticate: ignored, and reported (once while one report of
        the same reason waits, so a flood cannot push the door's own events out)."""
        self.frames_rejected += 1
        for queued in self._events:
            if queued[1][0] == doorlink.EV_WIRE_REJECTED and queued[1][1] == reason:
                return
        self._queue_event(doorlink.EV_WIRE_REJECTED, reason)

    def _pulse(self, frame):
        # type: (doorlink.Frame) -> None
        ms = doorlink.unpack_pulse(frame.payload)
        if ms == 0:
            raise doorlink.PayloadError("a pulse of 0 ms")
        status = doorlink.ACK_OK
        if ms > doorlink.MAX_PULSE_MS:  # a door held unlocked for hours is a bug, not a request
            ms = doorlink.MAX_PULSE_MS
            status = doorlink.ACK_CAPPED
        if self.locked:
            self.pins.set_relay(True)
            self.locked = False
            self._queue_event(doorlink.EV_UNLOCKED)
        self._unlock_until = self._now + ms  # the latest pulse wins, longer or shorter
        self._reply(doorlink.ACK, frame.seq, doorlink.pack_status(status))

    def _relock(self, reason):
        # type: (int) -> None
        self.pins.set_relay(False)
        self.locked = True
        self._locked_since = self._now
        self._queue_event(doorlink.EV_RELOCKED, reason)

    def _reply(self, ftype, seq, body):
        # type: (int, int, bytes) -> None
        """Send ``body`` sealed under the session (with a fresh counter)."""
        if self._session is None:
            return  # unreachable: only sealed commands and HELLO get sealed replies
        self._tx_counter += 1
        self._out.extend(doorlink.encode(ftype, seq, doorauth.seal(
            self._session, doorauth.TO_HOST, ftype, seq, body, self._tx_counter)))

    def _reply_clear(self, ftype, seq, body):
        # type: (int, int, bytes) -> None
        """The only unsealed answers: refusals of a HELLO or PROVISION that has no key to seal
        under; the host treats each as a fault and never as a reason to speak in clear."""
        self._out.extend(doorlink.encode(ftype, seq, body))

    # --- inputs and events --------------------------------------------------------------------

    def _sample_inputs(self, now):
        # type: (int) -> None
        pins, debounce = self.pins, self.debounce_ms
        door = self._door
        if door.sample(bool(pins.door_open()), now, debounce):
            if not door.value:
                self._queue_event(doorlink.EV_DOOR_CLOSED)
            elif self.locked and self._locked_since <= door.since:
                # Locked since before the contact began to open: nobody let this door open.
                self._queue_event(doorlink.EV_DOOR_FORCED)
            else:
                self._queue_event(doorlink.EV_DOOR_OPENED)
        if self._exit.sample(bool(pins.exit_pressed()), now, debounce) and self._exit.value:
            self._queue_event(doorlink.EV_EXIT_PRESSED)
        if self._tamper.sample(bool(pins.tamper()), now, debounce):
            self._queue_event(doorlink.EV_TAMPER_ON if self._tamper.value
                              else doorlink.EV_TAMPER_OFF)
        key = pins.key() or ""
        if key and key not in doorlink.KEYS:
            key = ""  # a crossed matrix line, not a key
        # A held key is one stable value, so it is reported once until released.
        if self._key.sample(key, now, debounce) and self._key.value:
            self._queue_event(doorlink.EV_KEY, ord(self._key.value))

    def _queue_event(self, kind, value=0):
        # type: (int, int) -> None
        if len(self._events) >= EVENT_QUEUE_MAX:
            self._events.pop(0)  # the RAM is bounded; the newest news matters most
            self.events_dropped += 1
        self._event_seq = (self._event_seq + 1) & 0xFF
        self._events.append([self._event_seq, (kind, value, self._now), 0, self._now])

    def _send_events(self, now):
        # type: (int) -> None
        # One event in flight at a time: the host sees them in order (keypad digits!), and a
        # retransmission can only ever duplicate the latest one, which the host drops by seq.
        if not self._events:
            return
        head = self._events[0]
        if now < head[3]:
            return
        if head[2] >= EVENT_TRIES:
            self._events.pop(0)  # nobody is listening; do not block the events behind it
            self.events_dropped += 1
            return
        if self._session is not None:  # without a session nobody could check it: it counts as lost
            # Sealed at each try: a retransmission carries a new counter, never a repeated one.
            self._tx_counter += 1
            self._out.extend(doorlink.encode(doorlink.EVENT, head[0], doorauth.seal(
                self._session, doorauth.TO_HOST, doorlink.EVENT, head[0],
                doorlink.pack_event(*head[1]), self._tx_counter)))
        head[2] += 1
        head[3] = now + EVENT_RETRY_MS

    def _event_acknowledged(self, seq):
        # type: (int) -> None
        if self._events and self._events[0][0] == seq and self._events[0][2] > 0:
            self._events.pop(0)
            if self._events:
                self._events[0][3] = self._now  # the next one may go at once
