"""How the door board behaves, whatever it runs on.

The Pico's ``main.py`` wires this to machine.Pin and the UART; the simulator
(``hardware_sim/door.py``) wires it to a simulated world. One source of truth for the board's
behaviour, so it stays importable on CPython and MicroPython alike (no typing at runtime, no
dataclasses, no enum, no f-strings).

It is fail-secure: it powers up locked, relocks when a pulse ends and when the host's commands
stop for the heartbeat timeout, and refuses (NAK) anything it does not understand without moving
the relay. Time comes in only through ``tick(now_ms)``: a monotonic millisecond count that never
wraps (``main.py`` accumulates ``ticks_diff`` into one).
"""

try:
    from . import doorlink
except ImportError:  # MicroPython: the firmware's files sit flat in the Pico's root
    import doorlink  # type: ignore[no-redef]

FIRMWARE_VERSION = "accessd-door 1.0"
DEFAULT_DEBOUNCE_MS = 20
EVENT_RETRY_MS = 100  # an unacknowledged event goes out again after this long...
EVENT_TRIES = 5  # ...at most this many times in all, then it is dropped
EVENT_QUEUE_MAX = 16  # events waiting for the host; when full the oldest goes


def _expect_empty(frame):
    # type: (doorlink.Frame) -> None
    if frame.payload:
        raise doorlink.PayloadError("this message carries no payload")


class Pins:
    """The board's wiring: four sample functions and one output.

    ``door_open``, ``exit_pressed`` and ``tamper`` return the raw, undebounced input (True: door
    open, button pressed, case open); ``key`` returns the keypad key held down ("0".."9", "*",
    "#") or "" for none; ``set_relay(unlocked)`` drives the lock relay.
    """

    def __init__(self, door_open, exit_pressed, tamper, key, set_relay):
        self.door_open = door_open
        self.exit_pressed = exit_pressed
        self.tamper = tamper
        self.key = key
        self.set_relay = set_relay


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
    """

    def __init__(self, pins, now_ms=0, heartbeat_ms=doorlink.DEFAULT_HEARTBEAT_MS,
                 debounce_ms=DEFAULT_DEBOUNCE_MS, firmware=FIRMWARE_VERSION):
        # type: (Pins, int, int, int, str) -> None
        self.pins = pins
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
        self._events = []  # type: list[list]  # [seq, frame bytes, tries, next send ms]
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

    def _handle(self, frame):
        # type: (doorlink.Frame) -> None
        ftype = frame.type
        if ftype in (doorlink.ACK, doorlink.NAK):
            self._event_acknowledged(frame.seq)
            # Acknowledgements do not count as heartbeats: the host driver's reader thread sends
            # them, and it keeps running when the daemon's loop hangs.
            return
        self._last_command_ms = self._now
        try:
            if ftype == doorlink.HELLO:
                self._hello(frame)
            elif ftype == doorlink.PULSE:
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
            self._reply(doorlink.NAK, frame.seq, doorlink.pack_nak(
                doorlink.NAK_UNSUPPORTED_VERSION, doorlink.PROTOCOL_VERSION))
            return
        heartbeat_ms = doorlink.unpack_hello(frame.payload)[1]
        if not doorlink.MIN_HEARTBEAT_MS <= heartbeat_ms <= doorlink.MAX_HEARTBEAT_MS:
            raise doorlink.PayloadError("heartbeat timeout out of bounds")
        self.heartbeat_ms = heartbeat_ms
        self._reply(doorlink.HELLO_REPLY, frame.seq, doorlink.pack_hello_reply(
            doorlink.PROTOCOL_VERSION, self.heartbeat_ms, self.debounce_ms,
            doorlink.MAX_PULSE_MS, self.firmware))

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

    def _reply(self, ftype, seq, payload):
        # type: (int, int, bytes) -> None
        self._out.extend(doorlink.encode(ftype, seq, payload))

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
        frame = doorlink.encode(doorlink.EVENT, self._event_seq,
                                doorlink.pack_event(kind, value, self._now))
        self._events.append([self._event_seq, frame, 0, self._now])

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
        self._out.extend(head[1])
        head[2] += 1
        head[3] = now + EVENT_RETRY_MS

    def _event_acknowledged(self, seq):
        # type: (int) -> None
        if self._events and self._events[0][0] == seq and self._events[0][2] > 0:
            self._events.pop(0)
            if self._events:
                self._events[0][3] = self._now  # the next one may go at once
