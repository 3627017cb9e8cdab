"""The door board's serial framing: bytes in, frames out, no I/O.

The host driver, the simulator and the board's own firmware (MicroPython on a Pico) all import
this one module, so it uses only what MicroPython has: no typing at runtime, no dataclasses, no
enum, no f-strings, and ``struct`` as its only import.

A frame, every integer big-endian::

    AC CE | len | seq | type | payload (len <= 96) | crc16

``crc16`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over len, seq, type and payload.
Each side numbers its own requests: the host its commands, the board its events. An answer
(ACK, NAK, HELLO_REPLY, STATE_REPLY) carries the sequence number of what it answers, so a retry
reuses its number and a late answer to an earlier try still counts. See README.md for the table.

Protocol version 2 authenticates the wire: apart from PROVISION and the board's refusals before
a session exists, every payload is sealed (``doorauth.py``: counter and MAC after the body). The
``pack_*``/``unpack_*`` functions here build and read the bodies only.
"""

import struct

PROTOCOL_VERSION = 2  # 1 was unauthenticated; a board or host of version 1 is refused

SYNC = b"\xac\xce"
SYNC0 = 0xAC
SYNC1 = 0xCE
HEADER_LEN = 5  # sync (2), len, seq, type
CRC_LEN = 2
MAX_PAYLOAD = 96  # a frame's length byte above this is line noise, not a frame
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN

# A frame still incomplete after the line was quiet this long never will be: the parser then
# looks past its first byte (as Modbus RTU's inter-frame gap does), so that a false start in
# noise cannot hold back a real frame that arrived inside it.
IDLE_RESYNC_MS = 20

# --- message types ------------------------------------------------------------------------
HELLO = 0x01  # host: version u8, heartbeat timeout ms u16, nonce[16]; sealed, long-term key
PULSE = 0x02  # host: unlock for ms u32 (the board caps it at MAX_PULSE_MS)
LOCK = 0x03  # host: lock now
HEARTBEAT = 0x04  # host: still alive
STATE = 0x05  # host: report the relay and inputs
PROVISION = 0x07  # host: key[32], in clear (once, at installation); ACK sealed under that key
ACK = 0x06  # either side: status u8; seq = the acknowledged frame's
NAK = 0x15  # board: code u8, detail u8; seq = the refused frame's
EVENT = 0x10  # board: kind u8, value u8, board time ms u32; seq = the board's own
HELLO_REPLY = 0x81  # board: version u8, heartbeat ms u16, debounce ms u16, max pulse ms u32,
#                     nonce[16], firmware name (UTF-8, the rest)
STATE_REPLY = 0x85  # board: flags u8, board time ms u32

TYPE_NAMES = {
    HELLO: "HELLO", PULSE: "PULSE", LOCK: "LOCK", HEARTBEAT: "HEARTBEAT", STATE: "STATE",
    PROVISION: "PROVISION",
    ACK: "ACK", NAK: "NAK", EVENT: "EVENT", HELLO_REPLY: "HELLO_REPLY",
    STATE_REPLY: "STATE_REPLY",
}

ACK_OK = 0
ACK_CAPPED = 1  # PULSE accepted, shortened to MAX_PULSE_MS

NAK_BAD_PAYLOAD = 1  # wrong length or a value out of range
NAK_UNKNOWN_TYPE = 2
NAK_UNSUPPORTED_VERSION = 3  # detail: the board's PROTOCOL_VERSION
NAK_NOT_PROVISIONED = 4  # the board holds no key yet: `accessd door provision`
NAK_PROVISION_REFUSED = 5  # the board holds a key; a new one needs its jumper closed
NAK_BAD_KEY = 6  # HELLO did not authenticate under the board's key
NAK_NAMES = {
    NAK_BAD_PAYLOAD: "bad payload", NAK_UNKNOWN_TYPE: "unknown message type",
    NAK_UNSUPPORTED_VERSION: "unsupported protocol version",
    NAK_NOT_PROVISIONED: "not provisioned", NAK_PROVISION_REFUSED: "provisioning refused",
    NAK_BAD_KEY: "another key",
}

# Event kinds; the names are firmware_bridge.door.DoorEventKind's values.
EV_DOOR_OPENED = 1
EV_DOOR_CLOSED = 2
EV_DOOR_FORCED = 3
EV_EXIT_PRESSED = 4
EV_TAMPER_ON = 5
EV_TAMPER_OFF = 6
EV_KEY = 7  # value: the key's ASCII code
EV_UNLOCKED = 8
EV_RELOCKED = 9  # value: a RELOCK_* reason
EV_WIRE_REJECTED = 10  # value: why a frame was refused (doorauth's reasons)
EVENT_NAMES = {
    EV_DOOR_OPENED: "door_opened", EV_DOOR_CLOSED: "door_closed", EV_DOOR_FORCED: "door_forced",
    EV_EXIT_PRESSED: "exit_pressed", EV_TAMPER_ON: "tamper_on", EV_TAMPER_OFF: "tamper_off",
    EV_KEY: "key", EV_UNLOCKED: "unlocked", EV_RELOCKED: "relocked",
    EV_WIRE_REJECTED: "wire_rejected",
}
KEYS = "0123456789*#"

RELOCK_PULSE_END = 1
RELOCK_HEARTBEAT_LOST = 2
RELOCK_COMMAND = 3
REASON_NAMES = {
    RELOCK_PULSE_END: "pulse_end", RELOCK_HEARTBEAT_LOST: "heartbeat_lost",
    RELOCK_COMMAND: "command",
}

# STATE_REPLY flags
FLAG_LOCKED = 0x01
FLAG_DOOR_OPEN = 0x02
FLAG_EXIT_PRESSED = 0x04
FLAG_TAMPER = 0x08

# Limits both sides agree on.
DEFAULT_HEARTBEAT_MS = 3000
MIN_HEARTBEAT_MS = 100
MAX_HEARTBEAT_MS = 60000
MAX_PULSE_MS = 30000
MAX_FIRMWARE_LEN = 32


class PayloadError(ValueError):
    """A frame or payload that cannot be built or read (wrong length, value out of range)."""


def crc16(data, crc=0xFFFF):
    # type: (bytes, int) -> int
    """CRC-16/CCITT-FALSE of ``data``, bit by bit: no 512-byte table on the Pico."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            if crc & 0x8000:
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
    return crc


def encode(ftype, seq, payload=b""):
    # type: (int, int, bytes) -> bytes
    """The bytes of one frame.

    :raises PayloadError: the payload is longer than MAX_PAYLOAD or seq/type is not a byte.
    """
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError("payload of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD))
    if not (0 <= seq <= 0xFF and 0 <= ftype <= 0xFF):
        raise PayloadError("seq %r and type %r must be bytes (0..255)" % (seq, ftype))
    body = bytes((len(payload), seq, ftype)) + bytes(payload)
    crc = crc16(body)
    return SYNC + body + bytes((crc >> 8, crc & 0xFF))


class Frame:
    """One checked frame: its type, sequence number and payload."""

    def __init__(self, ftype, seq, payload=b""):
        # type: (int, int, bytes) -> None
        self.type = ftype
        self.seq = seq
        self.payload = bytes(payload)

    def encode(self):
        # type: () -> bytes
        return encode(self.type, self.seq, self.payload)

    def __eq__(self, other):
        # type: (object) -> bool
        return (isinstance(other, Frame) and self.type == other.type
                and self.seq == other.seq and self.payload == other.payload)

    def __repr__(self):
        # type: () -> str
        return "Frame(%s, seq=%d, payload=%r)" % (
            TYPE_NAMES.get(self.type, hex(self.type)), self.seq, self.payload)


class Parser:
    """Turns a byte stream into frames, skipping whatever is not one.

    It never raises on input and never holds more than MAX_FRAME - 1 bytes: a candidate frame
    that fails (length over MAX_PAYLOAD, bad CRC) costs only its first byte, and the search for
    the next sync resumes right behind it, so a real frame hidden behind a false start is found.
    The counters say how noisy the line is.
    """

    def __init__(self):
        # type: () -> None
        self._buf = bytearray()
        self.crc_errors = 0
        self.length_errors = 0
        self.dropped = 0  # bytes discarded while looking for a frame

    @property
    def buffered(self):
        # type: () -> int
        """How many bytes wait for the rest of a frame."""
        return len(self._buf)

    def feed(self, data):
        # type: (bytes) -> list[Frame]
        """Add received bytes; returns the frames they completed, in order."""
        frames = []  # type: list[Frame]
        # One byte at a time keeps the buffer within one frame whatever the chunk size.
        for byte in data:
            self._buf.append(byte)
            self._scan(frames)
        return frames

    def idle(self):
        # type: () -> list[Frame]
        """The line went quiet: give up on the incomplete frame and rescan what follows it."""
        frames = []  # type: list[Frame]
        while self._buf:
            self._drop(1)
            self._scan(frames)
        return frames

    def _drop(self, n):
        # type: (int) -> None
        self.dropped += n
        self._buf = self._buf[n:]  # slicing, not `del buf[:n]`, which some MicroPython ports lack

    def _scan(self, frames):
        # type: (list[Frame]) -> None
        while self._buf:
            buf = self._buf
            if buf[0] != SYNC0 or (len(buf) > 1 and buf[1] != SYNC1):
                self._drop(1)
                continue
            if len(buf) < 3:
                return
            length = buf[2]
            if length > MAX_PAYLOAD:
                self.length_errors += 1
                self._drop(1)
                continue
            end = HEADER_LEN + length + CRC_LEN
            if len(buf) < end:
                return
            if crc16(bytes(buf[2:end - CRC_LEN])) != (buf[end - 2] << 8) | buf[end - 1]:
                self.crc_errors += 1
                self._drop(1)
                continue
            frames.append(Frame(buf[4], buf[3], bytes(buf[HEADER_LEN:end - CRC_LEN])))
            self._buf = buf[end:]


# --- payloads: pack_* builds one, unpack_* reads one (raising PayloadError) -------------------


def _unpack(fmt, payload, what):
    # type: (str, bytes, str) -> tuple
    if len(payload) != struct.calcsize(fmt):
        raise PayloadError("%s payload must be %d bytes, got %d"
                           % (what, struct.calcsize(fmt), len(payload)))
    return struct.unpack(fmt, payload)


NONCE_LEN = 16


def pack_hello(version, heartbeat_ms, nonce):
    # type: (int, int, bytes) -> bytes
    """HELLO's body. Its first byte is the version in every protocol version, forever."""
    if len(nonce) != NONCE_LEN:
        raise PayloadError("a HELLO nonce is %d bytes" % NONCE_LEN)
    return struct.pack(">BH", version, heartbeat_ms) + bytes(nonce)


def unpack_hello(payload):
    # type: (bytes) -> tuple
    """(version, heartbeat_ms, nonce)."""
    if len(payload) != 3 + NONCE_LEN:
        raise PayloadError("HELLO body must be %d bytes, got %d" % (3 + NONCE_LEN, len(payload)))
    return struct.unpack(">BH", payload[:3]) + (bytes(payload[3:]),)


def pack_hello_reply(version, heartbeat_ms, debounce_ms, max_pulse_ms, nonce, firmware):
    # type: (int, int, int, int, bytes, str) -> bytes
    if len(nonce) != NONCE_LEN:
        raise PayloadError("a HELLO_REPLY nonce is %d bytes" % NONCE_LEN)
    name = firmware.encode()[:MAX_FIRMWARE_LEN]
    return (struct.pack(">BHHI", version, heartbeat_ms, debounce_ms, max_pulse_ms)
            + bytes(nonce) + name)


def unpack_hello_reply(payload):
    # type: (bytes) -> tuple
    """(version, heartbeat_ms, debounce_ms, max_pulse_ms, nonce, firmware)."""
    if len(payload) < 9 + NONCE_LEN:
        raise PayloadError("HELLO_REPLY body must be at least %d bytes, got %d"
                           % (9 + NONCE_LEN, len(payload)))
    fields = struct.unpack(">BHHI", payload[:9])
    try:
        firmware = bytes(payload[9 + NONCE_LEN:]).decode()
    except UnicodeError:
        raise PayloadError("HELLO_REPLY firmware name is not UTF-8") from None
    return fields + (bytes(payload[9:9 + NONCE_LEN]), firmware)


def pack_status(status):
    # type: (int) -> bytes
    """ACK's payload."""
    return bytes((status,))


def unpack_status(payload):
    # type: (bytes) -> int
    return _unpack(">B", payload, "ACK")[0]


def pack_nak(code, detail=0):
    # type: (int, int) -> bytes
    return bytes((code, detail))


def unpack_nak(payload):
    # type: (bytes) -> tuple
    """(code, detail)."""
    return _unpack(">BB", payload, "NAK")


def pack_pulse(ms):
    # type: (int) -> bytes
    if not 0 <= ms <= 0xFFFFFFFF:
        raise PayloadError("pulse of %r ms does not fit in 32 bits" % ms)
    return struct.pack(">I", ms)


def unpack_pulse(payload):
    # type: (bytes) -> int
    return _unpack(">I", payload, "PULSE")[0]


def pack_state(flags, board_ms):
    # type: (int, int) -> bytes
    return struct.pack(">BI", flags, board_ms & 0xFFFFFFFF)


def unpack_state(payload):
    # type: (bytes) -> tuple
    """(flags, board_ms)."""
    return _unpack(">BI", payload, "STATE_REPLY")


def pack_event(kind, value, board_ms):
    # type: (int, int, int) -> bytes
    return struct.pack(">BBI", kind, value, board_ms & 0xFFFFFFFF)


def unpack_event(payload):
    # type: (bytes) -> tuple
    """(kind, value, board_ms)."""
    return _unpack(">BBI", payload, "EVENT")
