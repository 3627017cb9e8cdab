"""The door board driver: its framed serial protocol (``firmware/doorlink.py``) over pyserial.

Transport and framing are kept apart, as pyserial's ``serial.threaded`` keeps ``ReaderThread``
apart from ``Packetizer``: ``_ReaderThread`` only moves bytes from the port to a protocol object;
``SerialDoorBoard`` turns them into frames, answers and events.

There is deliberately no heartbeat thread in here. The daemon calls ``heartbeat()`` from its own
loop, so that a hung daemon really stops the heartbeats and the board relocks on its own.

The wire is authenticated (``firmware/doorauth.py``): ``open()`` derives a session key with the
board from the key provisioned at installation (``provision_board``), every frame either way
carries a counter and a MAC, and any frame that does not authenticate (in clear, forged,
replayed, truncated, or a board answering an older protocol) ends the connection with a
``DoorWireError``. There is no fallback to the clear: the daemon raises an alarm.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import serial

from firmware_bridge.door import DoorEvent, DoorEventKind, DoorInputs
from firmware_bridge.errors import (
    DoorDisconnectedError,
    DoorError,
    DoorInitError,
    DoorNotProvisionedError,
    DoorOperationError,
    DoorProtocolError,
    DoorTimeoutError,
    DoorWireError,
)
from firmware_bridge.firmware import doorauth, doorlink

log = logging.getLogger(__name__)

READ_POLL = 0.02  # s; a read returning nothing after this long means the line is idle
WRITE_TIMEOUT = 1.0  # s; a write that blocks this long means the port is wedged
STARVED_GRACE = 1.0  # s; the most a try waits past its deadline for input already received
_ANSWERS = {doorlink.HELLO: doorlink.HELLO_REPLY, doorlink.STATE: doorlink.STATE_REPLY}

try:  # pyserial lets termios.error (not an OSError) escape from its flush and drain calls
    import termios

    _PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # no termios on Windows
    _PORT_ERRORS = (serial.SerialException, OSError)


@contextlib.contextmanager
def wrap_serial_errors(
    port: str, action: str, error: type[DoorError] = DoorDisconnectedError
) -> Iterator[None]:
    """Turn pyserial's and the OS's exceptions into door errors: the one place that does it.

    :raises DoorTimeoutError: a write timed out.
    :raises error: any other serial or OS failure (``DoorDisconnectedError`` unless told).
    """
    try:
        yield
    except serial.SerialTimeoutException as exc:
        raise DoorTimeoutError(
            f"door board on {port}: {action} timed out ({exc}); check the cable and "
            "`accessd doctor`") from exc
    except _PORT_ERRORS as exc:
        raise error(
            f"door board on {port}: {action} failed ({exc}); check that it is plugged in and "
            "the port in the config, then reopen it (`accessd doctor` shows the ports)") from exc


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What the board said about itself in its HELLO reply."""

    protocol_version: int
    firmware: str
    heartbeat_ms: int
    debounce_ms: int
    max_pulse_ms: int


class _Protocol(Protocol):
    def data_received(self, data: bytes) -> None: ...
    def line_idle(self) -> None: ...
    def connection_lost(self, exc: DoorError) -> None: ...


class _ReaderThread(threading.Thread):
    """Reads the port until stopped or the port fails; knows nothing about frames."""

    def __init__(self, port: serial.Serial, name: str, protocol: _Protocol) -> None:
        super().__init__(name=f"doorboard-reader:{name}", daemon=True)
        self._serial = port
        self._name = name
        self._protocol = protocol
        self._stopping = threading.Event()
        self.receiving = False  # True while bytes read are being handed to the protocol

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                with wrap_serial_errors(self._name, "reading"):
                    data = self._serial.read(self._serial.in_waiting or 1)
            except DoorError as exc:
                if not self._stopping.is_set():
                    self._protocol.connection_lost(exc)
                return
            if data:
                self.receiving = True
                try:
                    self._protocol.data_received(data)
                finally:
                    self.receiving = False
            else:
                self._protocol.line_idle()

    def input_pending(self) -> bool:
        """Whether bytes arrived that the protocol has not seen yet (waiting in the kernel's
        buffer, or being handed over now)."""
        if self.receiving:
            return True
        try:
            return bool(self._serial.in_waiting)
        except Exception:  # the port failed (pyserial, OS, termios): the read loop reports it
            return False

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(Exception):  # the port may already be gone
            self._serial.cancel_read()
        if self is not threading.current_thread():
            self.join(timeout=2 * READ_POLL + 1.0)


_LOST = object()  # put in the event queue when the port fails, so next_event() wakes up


class SerialDoorBoard:
    """The door board on a serial port.

    :param port: the serial device, e.g. ``/dev/serial/by-id/usb-...`` or ``/dev/ttyAMA1``.
    :param heartbeat_timeout: seconds without a command after which the board relocks; the
        daemon must call ``heartbeat()`` more often than this while a pulse runs.
    :param ack_timeout: seconds to wait for an answer to one try of a command.
    :param retries: how many times a command is sent before giving up.
    :param link_key: the wire's key, provisioned into the board at installation (the keyring's
        ``door_link_key``); ``None`` (never provisioned) makes ``open()`` fail.
    """

    capabilities = frozenset({"inputs", "keypad", "autorelock", "authenticated"})

    def __init__(self, port: str, *, link_key: bytes | None, baud: int = 115200,
                 heartbeat_timeout: float = 3.0, ack_timeout: float = 0.1,
                 retries: int = 3) -> None:
        heartbeat_ms = round(heartbeat_timeout * 1000)
        if not doorlink.MIN_HEARTBEAT_MS <= heartbeat_ms <= doorlink.MAX_HEARTBEAT_MS:
            raise ValueError(f"heartbeat_timeout must be {doorlink.MIN_HEARTBEAT_MS / 1000} to "
                             f"{doorlink.MAX_HEARTBEAT_MS / 1000} s, got {heartbeat_timeout}")
        if ack_timeout <= 0 or retries < 1:
            raise ValueError("ack_timeout must be positive and retries at least 1")
        if link_key is not None and not doorauth.acceptable_key(link_key):
            raise ValueError(f"link_key must be {doorauth.KEY_LEN} random bytes")
        self.port = port
        self._link_key = link_key
        self._session: bytes | None = None  # set once HELLO_REPLY authenticated
        self._tx_counter = 0  # written under _write_lock: counters go out in the wire's order
        self._rx_counter = 0  # the reader thread's alone
        self._hello_nonce = b""
        self._handshake_error: DoorWireError | None = None
        self._pending_info: BoardInfo | None = None
        self.baud = baud
        self.board_info: BoardInfo | None = None
        self._heartbeat_ms = heartbeat_ms
        self._ack_timeout = ack_timeout
        self._retries = retries
        self._serial: serial.Serial | None = None
        self._reader: _ReaderThread | None = None
        self._parser = doorlink.Parser()
        self._seq = 0
        self._command_lock = threading.Lock()  # one command in flight at a time
        self._write_lock = threading.Lock()  # commands and event ACKs share the wire
        self._answer = threading.Condition()
        self._awaiting: int | None = None
        self._reply: doorlink.Frame | None = None
        self._failure: DoorError | None = None
        self._events: queue.Queue[object] = queue.Queue()
        self._last_event: tuple[int, bytes] | None = None

    # --- DoorBoard ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and greet the board; reopening an open driver starts afresh.

        :raises DoorInitError: the port cannot be opened or the board does not answer.
        :raises DoorWireError: the board answered without authenticating (another protocol
            version, another key, someone else on the wire).
        :raises DoorNotProvisionedError: no key here, or none in the board.
        """
        self._release()
        if self._link_key is None:
            raise DoorNotProvisionedError(
                f"door board on {self.port}: the keyring holds no key for its wire; run "
                "`accessd door provision` once with the board connected")
        with wrap_serial_errors(self.port, "opening the port", DoorInitError):
            # Exclusive: `accessd door provision` must not share the wire with a running daemon.
            port = serial.Serial(self.port, self.baud, timeout=READ_POLL,
                                 write_timeout=WRITE_TIMEOUT, exclusive=True)
        self._serial = port
        self._parser = doorlink.Parser()
        self._failure = None
        self._events = queue.Queue()
        self._last_event = None
        self._session, self._tx_counter, self._rx_counter = None, 0, 0
        try:
            with wrap_serial_errors(self.port, "flushing the port", DoorInitError):
                port.reset_input_buffer()  # whatever waited there belongs to nobody now
            self._reader = _ReaderThread(port, self.port, self)
            self._reader.start()
            self._hello()
        except DoorError:
            self._release()
            raise

    def close(self) -> None:
        """Lock, then release the port. Safe to call twice and after a failure."""
        if self._serial is not None and self._failure is None:
            try:
                self.lock()
            except DoorError as exc:
                log.warning("could not lock the door board on %s while closing: %s", self.port, exc)
        self._release()

    def pulse(self, seconds: float) -> None:
        """Unlock for ``seconds`` (the board caps it at 30 s and relocks by itself).

        :raises DoorOperationError: ``seconds`` is not positive, or the board refused.
        """
        if not seconds > 0:
            raise DoorOperationError(f"a pulse must last more than 0 s, got {seconds}")
        ms = min(max(1, round(seconds * 1000)), 0xFFFFFFFF)
        reply = self._command(doorlink.PULSE, doorlink.pack_pulse(ms))
        if doorlink.unpack_status(reply.payload) == doorlink.ACK_CAPPED:
            log.warning("door board on %s capped a %.1f s pulse to %d s", self.port, seconds,
                        doorlink.MAX_PULSE_MS // 1000)

    def lock(self) -> None:
        """Lock now."""
        self._command(doorlink.LOCK)

    def heartbeat(self) -> None:
        """Tell the board the daemon is alive; call it more often than ``heartbeat_timeout``."""
        self._command(doorlink.HEARTBEAT)

    def inputs(self) -> DoorInputs:
        """The board's debounced inputs and lock state, asked for now."""
        reply = self._command(doorlink.STATE)
        flags = self._decode(doorlink.unpack_state, reply)[0]
        return DoorInputs(door_open=bool(flags & doorlink.FLAG_DOOR_OPEN),
                          exit_pressed=bool(flags & doorlink.FLAG_EXIT_PRESSED),
                          tamper=bool(flags & doorlink.FLAG_TAMPER),
                          locked=bool(flags & doorlink.FLAG_LOCKED))

    def next_event(self, timeout: float) -> DoorEvent | None:
        """The next event, waiting up to ``timeout`` s; ``None`` when none came.

        :raises DoorDisconnectedError: the port failed (events received before are returned first).
        """
        if self._serial is None:
            raise self._not_open()
        try:
            item = self._events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if item is _LOST:
            self._events.put(_LOST)  # every later call fails too, until reopened
            raise self._lost()
        assert isinstance(item, DoorEvent)
        return item

    @property
    def bad_frames(self) -> int:
        """Frames dropped for a bad CRC or length since open(): a measure of line noise."""
        return self._parser.crc_errors + self._parser.length_errors

    # --- protocol callbacks (reader thread) --------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._frames(self._parser.feed(data))

    def line_idle(self) -> None:
        if self._parser.buffered:
            self._frames(self._parser.idle())

    def connection_lost(self, exc: DoorError) -> None:
        with self._answer:
            self._failure = exc
            self._answer.notify_all()
        self._events.put(_LOST)

    def _frames(self, frames: list[doorlink.Frame]) -> None:
        for frame in frames:
            if self._session is None:
                self._handshake_frame(frame)
                continue
            try:
                body, counter = doorauth.unseal(self._session, doorauth.TO_HOST, frame.type,
                                                frame.seq, frame.payload)
            except doorauth.AuthError as exc:
                self._wire_fault(exc.reason, frame)
                return
            if counter <= self._rx_counter:
                self._wire_fault(doorauth.REPLAYED, frame)
                return
            self._rx_counter = counter
            self._dispatch(doorlink.Frame(frame.type, frame.seq, body))

    def _handshake_frame(self, frame: doorlink.Frame) -> None:
        """Before a session only the answer to HELLO matters; frames of a session before this
        one may still be on their way, and are ignored. The session starts here, in the reader
        thread, so that events the board sends right behind its HELLO_REPLY count."""
        if frame.type == doorlink.HELLO_REPLY and frame.seq == self._awaiting:
            try:
                self._start_session(frame)
            except DoorWireError as exc:
                self._handshake_error = exc
            self._dispatch(frame)
        elif frame.type == doorlink.NAK:
            self._dispatch(frame)
        else:
            log.debug("door board on %s: %r before the session; ignored", self.port, frame)

    def _wire_fault(self, reason: int, frame: doorlink.Frame) -> None:
        self.connection_lost(DoorWireError(
            f"door board on {self.port} sent a {doorauth.REASON_NAMES[reason]} "
            f"({doorlink.TYPE_NAMES.get(frame.type, hex(frame.type))}); the door stays locked. "
            "Someone may be on the cable between the Pi and the board, or the board holds "
            "another key: check the cable and the board's case, then `accessd door provision`"
            " if the board was replaced"))

    def _dispatch(self, frame: doorlink.Frame) -> None:
        if frame.type == doorlink.EVENT:
            self._event(frame)
        elif frame.type in (doorlink.ACK, doorlink.NAK, doorlink.HELLO_REPLY,
                            doorlink.STATE_REPLY):
            with self._answer:
                if frame.seq == self._awaiting and self._reply is None:
                    self._reply = frame
                    self._answer.notify_all()
        else:
            log.debug("door board on %s sent an unexpected %r", self.port, frame)

    def _event(self, frame: doorlink.Frame) -> None:
        try:
            self._write_sealed(doorlink.ACK, frame.seq, doorlink.pack_status(doorlink.ACK_OK))
        except DoorError as exc:
            self.connection_lost(exc)
            return
        # One event is in flight at a time, so a repeat can only be of the last one accepted;
        # the payload (with the board's clock) tells a rebooted board's new seq 1 from a repeat.
        if self._last_event == (frame.seq, frame.payload):
            return
        self._last_event = (frame.seq, frame.payload)
        try:
            kind, value, _board_ms = doorlink.unpack_event(frame.payload)
            event_kind = DoorEventKind(doorlink.EVENT_NAMES[kind])
        except (doorlink.PayloadError, KeyError, ValueError):
            log.warning("door board on %s sent an event this driver does not know: %r; "
                        "update accessd or the firmware so that they match", self.port, frame)
            return
        key = chr(value) if event_kind is DoorEventKind.KEY else None
        reason = None
        if event_kind is DoorEventKind.RELOCKED:
            reason = doorlink.REASON_NAMES.get(value, str(value))
        elif event_kind is DoorEventKind.WIRE_REJECTED:
            reason = doorauth.REASON_NAMES.get(value, str(value))
        self._events.put(DoorEvent(event_kind, time.monotonic(), key=key, reason=reason))

    # --- commands ----------------------------------------------------------------------------

    def _hello(self) -> None:
        """Start a session: both nonces, sealed under the provisioned key, give its key."""
        assert self._link_key is not None
        self._session, self._handshake_error, self._pending_info = None, None, None
        self._hello_nonce = os.urandom(doorlink.NONCE_LEN)
        try:
            self._command(doorlink.HELLO, doorlink.pack_hello(
                doorlink.PROTOCOL_VERSION, self._heartbeat_ms, self._hello_nonce))
        except (DoorInitError, DoorWireError):
            raise
        except DoorTimeoutError as exc:
            raise DoorInitError(
                f"door board on {self.port} did not answer HELLO after {self._retries} tries; "
                f"check that it is powered, the cable, the baud rate ({self.baud}) and that its "
                "firmware is flashed (firmware_bridge/firmware/README.md)") from exc
        except DoorError as exc:  # refused, corrupted or gone: open() reports all as DoorInitError
            raise DoorInitError(f"door board on {self.port} could not be greeted: {exc}") from exc
        if self._handshake_error is not None:
            raise self._handshake_error
        info = self._pending_info
        assert info is not None and self._session is not None
        self.board_info = info
        log.info("door board on %s: %s, protocol %d, wire authenticated", self.port,
                 info.firmware, info.protocol_version)

    def _start_session(self, reply: doorlink.Frame) -> None:
        """Check the HELLO_REPLY and derive the session from it (the reader thread).

        :raises DoorWireError: another version, or it does not authenticate.
        """
        assert self._link_key is not None
        if not reply.payload or reply.payload[0] != doorlink.PROTOCOL_VERSION:
            raise self._version_error(reply.payload[0] if reply.payload else 0)
        try:
            body = doorauth.body_of(reply.payload)
            version, heartbeat_ms, debounce_ms, max_pulse_ms, board_nonce, firmware = (
                doorlink.unpack_hello_reply(body))
            session = doorauth.session_key(self._link_key, self._hello_nonce, board_nonce)
            _, counter = doorauth.unseal(session, doorauth.TO_HOST, reply.type, reply.seq,
                                         reply.payload)
        except (doorauth.AuthError, doorlink.PayloadError) as exc:
            raise DoorWireError(
                f"door board on {self.port} answered HELLO without authenticating ({exc}); the "
                "door stays locked. The board holds another key (it was replaced or "
                "re-provisioned: run `accessd door provision`), or someone else answers on "
                "its cable") from exc
        self._pending_info = BoardInfo(version, firmware, heartbeat_ms, debounce_ms,
                                       max_pulse_ms)
        self._rx_counter = counter
        self._session = session

    def _command(self, ftype: int, body: bytes = b"") -> doorlink.Frame:
        """Send one command until it is answered; returns the answer (never a NAK)."""
        name = doorlink.TYPE_NAMES[ftype]
        with self._command_lock:
            if self._serial is None:
                raise self._not_open()
            self._seq = (self._seq + 1) & 0xFF
            seq = self._seq
            if ftype == doorlink.HELLO:  # sealed under the provisioned key; its retry repeats it
                assert self._link_key is not None
                hello = doorlink.encode(ftype, seq, doorauth.seal(
                    self._link_key, doorauth.TO_BOARD, ftype, seq, body, 0))

                def send() -> None:
                    self._write(hello)
            else:  # sealed under the session, each try with a new counter

                def send() -> None:
                    self._write_sealed(ftype, seq, body)
            bad_before = self.bad_frames
            with self._answer:
                self._awaiting, self._reply = seq, None
            try:
                reply = self._send_until_answered(send)
            finally:
                with self._answer:
                    self._awaiting = None
        if reply is None:
            if self.bad_frames > bad_before:
                raise DoorProtocolError(
                    f"door board on {self.port} answered {name} only with corrupted frames "
                    f"after {self._retries} tries; check the baud rate ({self.baud}), the "
                    "cable's length and shielding, and `accessd doctor`")
            raise DoorTimeoutError(
                f"door board on {self.port} did not acknowledge {name} after {self._retries} "
                "tries; check the cable and `accessd doctor`")
        if reply.type == doorlink.NAK:
            if self._session is None:  # a refusal in clear: a fault, never a fallback
                raise self._refused_in_clear(reply, name)
            code, _detail = self._decode(doorlink.unpack_nak, reply)
            raise DoorOperationError(
                f"door board on {self.port} refused {name}: "
                f"{doorlink.NAK_NAMES.get(code, f'code {code}')}; accessd and the board's "
                "firmware may not match (`accessd doctor`)")
        if reply.type != _ANSWERS.get(ftype, doorlink.ACK):
            raise DoorProtocolError(f"door board on {self.port} answered {name} with {reply!r}")
        return reply

    def _refused_in_clear(self, reply: doorlink.Frame, name: str) -> DoorWireError:
        try:
            code, detail = doorlink.unpack_nak(reply.payload)
        except doorlink.PayloadError:
            code, detail = -1, 0
        if code == doorlink.NAK_NOT_PROVISIONED:
            return DoorNotProvisionedError(
                f"door board on {self.port} holds no key for its wire (a new board); run "
                "`accessd door provision` once, with the board connected")
        if code == doorlink.NAK_UNSUPPORTED_VERSION:
            return self._version_error(detail)
        if code == doorlink.NAK_BAD_KEY:
            return DoorWireError(
                f"door board on {self.port} holds another key than this installation's "
                "keyring; the door stays locked. If the board was replaced or re-provisioned, "
                "run `accessd door provision` (close its jumper if it is not new); otherwise "
                "check that this is the right board and keyring")
        return DoorWireError(
            f"door board on {self.port} refused {name} in clear "
            f"({doorlink.NAK_NAMES.get(code, f'code {code}')}); the door stays locked. Check "
            "the cable, the firmware (firmware_bridge/firmware/README.md) and the board's key")

    def _send_until_answered(self, send: Callable[[], None]) -> doorlink.Frame | None:
        """Call ``send`` up to ``retries`` times until it is answered.

        A try ends at its deadline only when nothing it could be waiting for has arrived: while
        the port holds bytes the reader thread has not handed over yet (this process was not
        scheduled for a while), it waits on, up to ``STARVED_GRACE`` in all. A starved daemon
        is slow, not cut off from its board.
        """
        grace_until = None
        for _ in range(self._retries):
            send()
            deadline = time.monotonic() + self._ack_timeout
            with self._answer:
                while self._reply is None and self._failure is None:
                    now = time.monotonic()
                    left = deadline - now
                    if left <= 0:
                        reader = self._reader
                        if reader is None or not reader.input_pending():
                            break
                        grace_until = grace_until or now + STARVED_GRACE
                        if now >= grace_until:
                            break
                        left = READ_POLL
                    self._answer.wait(left)
                if self._failure is not None:
                    raise self._lost()
                if self._reply is not None:
                    return self._reply
        return None

    def _write_sealed(self, ftype: int, seq: int, body: bytes) -> None:
        """Seal ``body`` with the next counter and write it, both under the write lock, so that
        counters reach the board in the order they were taken (commands and event ACKs share
        the wire)."""
        with self._write_lock:
            session, port = self._session, self._serial
            if port is None:
                raise self._not_open()
            if session is None:
                raise DoorOperationError(
                    f"door board on {self.port} has no authenticated session; reopen it")
            self._tx_counter += 1
            data = doorlink.encode(ftype, seq, doorauth.seal(
                session, doorauth.TO_BOARD, ftype, seq, body, self._tx_counter))
            with wrap_serial_errors(self.port, "writing"):
                port.write(data)

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            port = self._serial
            if port is None:
                raise self._not_open()
            with wrap_serial_errors(self.port, "writing"):
                port.write(data)

    def _decode(self, unpack: Callable[[bytes], tuple[Any, ...]],
                frame: doorlink.Frame) -> tuple[Any, ...]:
        try:
            return tuple(unpack(frame.payload))
        except doorlink.PayloadError as exc:
            raise DoorProtocolError(
                f"door board on {self.port} sent a malformed {frame!r}: {exc}") from exc

    # --- endings -----------------------------------------------------------------------------

    def _release(self) -> None:
        reader, port = self._reader, self._serial
        self._reader = None
        if reader is not None:
            reader.stop()
        with self._write_lock:
            self._serial = None
        if port is not None:
            with contextlib.suppress(DoorError), wrap_serial_errors(self.port, "closing"):
                port.close()

    def _not_open(self) -> DoorOperationError:
        return DoorOperationError(f"door board on {self.port} is not open; call open() first")

    def _lost(self) -> DoorError:
        cause = self._failure
        if isinstance(cause, DoorWireError):  # the alarm's reason, not a cable unplugged
            error: DoorError = type(cause)(str(cause))
            error.__cause__ = cause
            return error
        root = cause.__cause__ if cause is not None and cause.__cause__ else cause
        error = DoorDisconnectedError(
            f"door board on {self.port} is gone ({root}); check the cable, then close() and "
            "open() it again")
        error.__cause__ = cause
        return error

    def _version_error(self, theirs: int) -> DoorWireError:
        return DoorWireError(
            f"door board on {self.port} speaks protocol version {theirs}, this accessd speaks "
            f"only {doorlink.PROTOCOL_VERSION} (authenticated) and never falls back; the door "
            "stays locked. Flash the firmware shipped with this accessd "
            "(firmware_bridge/firmware/README.md), or find who answers on the board's cable")


def provision_board(port: str, key: bytes, *, baud: int = 115200, timeout: float = 0.5,
                    retries: int = 3) -> None:
    """Give the board on ``port`` the wire's key: once, at installation, with the daemon
    stopped. The board accepts it only while it holds no key, or while its provisioning jumper
    is closed; its answer is sealed under the new key, which proves it stored it. The key
    crosses the wire in clear this once, so provision with the cable on the secure side.

    :raises DoorWireError: the board refused (it holds a key and its jumper is open), or its
        answer does not prove it holds this key.
    :raises DoorTimeoutError: no answer after every try.
    :raises DoorInitError: the port cannot be opened.
    """
    if not doorauth.acceptable_key(key):
        raise ValueError(f"a wire key is {doorauth.KEY_LEN} random bytes")
    with wrap_serial_errors(port, "opening the port", DoorInitError):
        link = serial.Serial(port, baud, timeout=READ_POLL, write_timeout=WRITE_TIMEOUT,
                             exclusive=True)
    try:
        with wrap_serial_errors(port, "provisioning"):
            link.reset_input_buffer()
            seq = 1
            frame = doorlink.encode(doorlink.PROVISION, seq, key)
            for _ in range(retries):
                link.write(frame)
                reply = _provision_answer(link, seq, time.monotonic() + timeout)
                if reply is not None:
                    break
            else:
                raise DoorTimeoutError(
                    f"door board on {port} did not answer the provisioning after {retries} "
                    "tries; check that it is powered, its firmware (protocol "
                    f"{doorlink.PROTOCOL_VERSION}) and that the daemon is stopped")
    finally:
        with contextlib.suppress(Exception):
            link.close()
    if reply.type == doorlink.NAK:
        code = reply.payload[0] if reply.payload else -1
        if code == doorlink.NAK_PROVISION_REFUSED:
            raise DoorWireError(
                f"door board on {port} already holds a key and refused a new one. To replace "
                "it, open the board's case, close its provisioning jumper (GP5 to GND), run "
                "this again, then remove the jumper")
        raise DoorWireError(f"door board on {port} refused the key: "
                            f"{doorlink.NAK_NAMES.get(code, f'code {code}')}")
    try:
        body, counter = doorauth.unseal(key, doorauth.TO_HOST, reply.type, reply.seq,
                                        reply.payload)
        ok = reply.type == doorlink.ACK and counter == 0 and \
            doorlink.unpack_status(body) == doorlink.ACK_OK
    except (doorauth.AuthError, doorlink.PayloadError):
        ok = False
    if not ok:
        raise DoorWireError(
            f"door board on {port} answered the provisioning without proving it holds the new "
            "key; the keyring is unchanged. Check the firmware and the cable, then try again")


def _provision_answer(link: serial.Serial, seq: int, deadline: float) -> doorlink.Frame | None:
    parser = doorlink.Parser()
    while time.monotonic() < deadline:
        for frame in parser.feed(link.read(link.in_waiting or 1)):
            if frame.seq == seq and frame.type in (doorlink.ACK, doorlink.NAK):
                return frame
    return None
