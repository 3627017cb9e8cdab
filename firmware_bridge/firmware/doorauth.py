"""The door wire's authentication: every frame carries a counter and an HMAC-SHA256, no I/O.

Shared by the host driver, the simulator and the board's MicroPython firmware, so it uses only
``struct`` and ``hashlib`` (MicroPython's ``uhashlib`` has SHA-256) and no f-strings or typing.

What it must not repeat of OSDP's secure channel (published attacks, 2023):

- no plaintext fallback and no capability negotiation: protocol version 2 authenticates every
  frame after provisioning, and a host that meets an unauthenticated answer stops (a fault, an
  alarm), it never retries in the clear;
- no default key: a board leaves the factory unprovisioned and refuses to unlock until a host
  wrote it a random 32-byte key (``PROVISION``); an all-zero key is refused;
- no install mode that hands out the key: the key only ever travels host -> board, once; the
  board accepts a new key only while unprovisioned, or while its provisioning jumper (inside
  its case) is closed;
- no short counter and no short MAC: 32-bit counters and 128-bit tags (OSDP: 2-bit sequence
  numbers and 4-byte MACs).

A session starts with HELLO: the host sends a fresh 16-byte nonce, sealed under the long-term
key; the board answers with its own nonce, whose first 4 bytes are a session number it keeps
in flash and never reuses (``board.py``). Both derive the session key from the two nonces, so
no frame of an earlier session authenticates in a later one, and within a session each side's
counter must grow with every frame it sends: a frame heard twice is refused.

A sealed payload is ``body || counter u32 || tag[16]``; the tag is the first 16 bytes of
HMAC-SHA256(key, direction || type || seq || counter || body).
"""

import struct

try:
    import hashlib
except ImportError:  # MicroPython ports that name it the old way
    import uhashlib as hashlib  # type: ignore[no-redef]

try:  # CPython: hmac.digest and compare_digest run in C
    from hmac import compare_digest as _compare_digest
    from hmac import digest as _hmac_digest
except ImportError:  # MicroPython has no hmac module
    _hmac_digest = None  # type: ignore[assignment]
    _compare_digest = None  # type: ignore[assignment]

KEY_LEN = 32
NONCE_LEN = 16
COUNTER_LEN = 4
TAG_LEN = 16
AUTH_LEN = COUNTER_LEN + TAG_LEN
MAX_COUNTER = 0xFFFFFFFF

TO_BOARD = b"H>B"
TO_HOST = b"B>H"
SESSION_LABEL = b"accessd-door session v2"

# Why a frame was refused: the values of the board's EV_WIRE_REJECTED event.
UNAUTHENTICATED = 1  # too short to carry a counter and a tag (truncated, or an old protocol)
BAD_TAG = 2  # the tag does not match: forged, or another key
REPLAYED = 3  # a counter not above the last one accepted
PROVISION_REFUSED = 4  # someone tried to give a provisioned board a new key
REASON_NAMES = {
    UNAUTHENTICATED: "unauthenticated or truncated frame", BAD_TAG: "bad MAC",
    REPLAYED: "replayed frame", PROVISION_REFUSED: "provisioning refused",
}


class AuthError(ValueError):
    """A frame that does not authenticate; ``reason`` is one of the reasons above."""

    def __init__(self, reason, message):
        # type: (int, str) -> None
        ValueError.__init__(self, message)
        self.reason = reason


def _hmac_pure(key, msg):
    # type: (bytes, bytes) -> bytes
    """HMAC-SHA256 (RFC 2104) for MicroPython; CPython uses ``hmac.digest``."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def hmac_sha256(key, msg):
    # type: (bytes, bytes) -> bytes
    if _hmac_digest is not None:
        return _hmac_digest(key, msg, "sha256")
    return _hmac_pure(key, msg)


def equal(a, b):
    # type: (bytes, bytes) -> bool
    """Compare without leaking where the first difference is."""
    if _compare_digest is not None:
        return _compare_digest(a, b)
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):  # no zip(strict=) on MicroPython
        diff |= a[i] ^ b[i]
    return diff == 0


def acceptable_key(key):
    # type: (bytes) -> bool
    """A key of the right length that is not all one byte value (a default or a wiped flash)."""
    return len(key) == KEY_LEN and len(set(key)) > 1


def session_key(key, host_nonce, board_nonce):
    # type: (bytes, bytes, bytes) -> bytes
    return hmac_sha256(key, SESSION_LABEL + bytes(host_nonce) + bytes(board_nonce))


def _tag(key, direction, ftype, seq, counter_bytes, body):
    # type: (bytes, bytes, int, int, bytes, bytes) -> bytes
    return hmac_sha256(key, direction + bytes((ftype, seq)) + counter_bytes + body)[:TAG_LEN]


def seal(key, direction, ftype, seq, body, counter):
    # type: (bytes, bytes, int, int, bytes, int) -> bytes
    """The payload carrying ``body`` with its counter and tag."""
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError("counter out of range")
    head = struct.pack(">I", counter)
    return bytes(body) + head + _tag(key, direction, ftype, seq, head, bytes(body))


def unseal(key, direction, ftype, seq, payload):
    # type: (bytes, bytes, int, int, bytes) -> tuple
    """(body, counter) of a sealed payload.

    :raises AuthError: too short to be sealed, or the tag does not match.
    """
    if len(payload) < AUTH_LEN:
        raise AuthError(UNAUTHENTICATED, "a frame of %d bytes carries no counter and MAC"
                        % len(payload))
    body = bytes(payload[:-AUTH_LEN])
    head = bytes(payload[-AUTH_LEN:-TAG_LEN])
    if not equal(_tag(key, direction, ftype, seq, head, body), bytes(payload[-TAG_LEN:])):
        raise AuthError(BAD_TAG, "the frame's MAC does not match")
    return body, struct.unpack(">I", head)[0]


def body_of(payload):
    # type: (bytes) -> bytes
    """A sealed payload's body, unchecked (to read the nonce the session key is derived from)."""
    if len(payload) < AUTH_LEN:
        raise AuthError(UNAUTHENTICATED, "a frame of %d bytes carries no counter and MAC"
                        % len(payload))
    return bytes(payload[:-AUTH_LEN])
