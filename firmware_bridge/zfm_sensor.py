"""Driver for ZhianTec ZFM / R30x / AS608 fingerprint sensors, on top of pyfingerprint 1.5.

pyfingerprint frames the packets; this driver adds what a door needs from it: a deadline on
every command, a clean input buffer before each one, errors a person can act on instead of bare
``Exception``s, and no wasted round trips on the door's hot path (pyfingerprint's own
``searchTemplate`` re-reads the system parameters each time, and ``uploadCharacteristics`` reads
the whole buffer back; this driver caches the capacity and packet size read at ``open``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from firmware_bridge.errors import (
    BadSlotError,
    EnrollMismatchError,
    LibraryFullError,
    NoFingerError,
    PoorImageError,
    SensorBadPasswordError,
    SensorDisconnectedError,
    SensorError,
    SensorInitError,
    SensorOperationError,
    SensorProtocolError,
    SensorTimeoutError,
)
from firmware_bridge.sensor import CHAR_BUFFER_1, CHAR_BUFFER_2, NO_MATCH, SearchResult
from firmware_bridge.serial_link import DeadlineSerial
from firmware_bridge.zfm import (
    INDEX_PAGE_SLOTS,
    PACKET_SIZES,
    Confirmation,
    Instruction,
    Pid,
)


def _defer_pillow() -> None:
    """pyfingerprint imports Pillow's ``PIL.Image`` at its top, for ``downloadImage`` alone,
    which this driver never calls: installed as a lazy module (``importlib.util.LazyLoader``),
    it loads only if something uses it, and the door's daemon keeps its 2 MB."""
    if "PIL.Image" in sys.modules:
        return
    spec = importlib.util.find_spec("PIL.Image")
    if spec is None or spec.loader is None:
        return  # pyfingerprint's own import will say what is missing
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["PIL.Image"] = module
    spec.loader.exec_module(module)
    sys.modules["PIL"].Image = module  # type: ignore[attr-defined]


_defer_pillow()

from pyfingerprint.pyfingerprint import PyFingerprint  # noqa: E402 - after _defer_pillow

T = TypeVar("T")

_OK, _NOT_FOUND, _BAD_SLOT = Confirmation.OK, Confirmation.NOT_FOUND, Confirmation.BAD_SLOT

# pyfingerprint raises bare Exception; only the message tells its errors apart.
_MESSAGES: tuple[tuple[str, type[SensorError], int | None, str], ...] = (
    ("valid header", SensorProtocolError, None,
     "sent bytes that are not a packet; check the baud rate and the wiring"),
    ("checksum is wrong", SensorProtocolError, None,
     "sent a packet with a wrong checksum; check the cable for noise"),
    ("no ack packet", SensorProtocolError, None, "answered with an unexpected packet type"),
    ("no data packet", SensorProtocolError, None, "answered with an unexpected packet type"),
    ("Communication error", SensorOperationError, 0x01,
     "reported a receive error; check the cable for noise"),
    ("address is wrong", SensorInitError, 0x20,
     "has another address; set sensor.address in the config"),
    ("too messy", PoorImageError, 0x06,
     "took an image too messy to use; clean the glass and the finger"),
    ("too few feature points", PoorImageError, 0x07,
     "found too few features in the image; press the finger flat and a little harder"),
    ("image is invalid", PoorImageError, 0x15, "took an invalid image; try again"),
    ("Could not store template", BadSlotError, _BAD_SLOT, "refused the slot number"),
    ("Invalid position", BadSlotError, _BAD_SLOT, "refused the slot number"),
    ("Could not load template", BadSlotError, _BAD_SLOT, "has no template at that slot"),
    ("template could not be read", SensorOperationError, 0x0C,
     "could not read the template from its flash"),
    ("writing to flash", SensorOperationError, Confirmation.FLASH_ERROR,
     "could not write its flash; the sensor may be failing"),
    ("Could not read image", SensorOperationError, 0x03, "could not take an image"),
    ("characteristics", SensorOperationError, None, "could not transfer characteristics"),
)
_UNKNOWN = re.compile(r"Unknown error (0x[0-9a-fA-F]+)")


class ZfmSensor:
    """A ZFM-family sensor on a serial port (implements ``firmware_bridge.sensor.Sensor``).

    :param port: serial device, e.g. ``/dev/serial0``.
    :param password: the sensor's 32-bit password (factory default 0, which a door must not keep).
    :param timeout: deadline in seconds for one command's answer.
    :param poll_interval: pause between two empty image polls while waiting for a finger.
    """

    def __init__(
        self,
        port: str,
        *,
        baud: int = 57600,
        address: int = 0xFFFFFFFF,
        password: int = 0,
        timeout: float = 2.0,
        poll_interval: float = 0.01,
    ) -> None:
        self.port = port
        self.baud = baud
        self.address = address
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.password = password  # used by the next open(); set_password() updates it
        self._fp: Any = None  # PyFingerprint is untyped; its private packet layer is used below
        self._link: DeadlineSerial | None = None
        self._capacity = 0
        self._params: tuple[int, ...] = ()
        self._packet_size = 128
        self._stale = False  # a command failed mid-answer: late bytes may still arrive

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        self.close()
        try:
            fp = PyFingerprint(self.port, self.baud, self.address, self.password)
        except ValueError as exc:
            raise SensorInitError(f"sensor settings for {self.port} are invalid: {exc}") from exc
        except Exception as exc:  # pyserial's SerialException or OSError
            raise self._disconnect_error(exc) from exc
        # pyfingerprint opened its own port with a 2 s per-byte timeout; swap in one with deadlines.
        fp._PyFingerprint__serial.close()
        link = DeadlineSerial(self.port, self.baud, self._timeout_error, self._disconnect_error)
        fp._PyFingerprint__serial = link
        self._fp, self._link = fp, link
        try:
            if not self._call(fp.verifyPassword):
                raise SensorBadPasswordError(
                    f"sensor on {self.port} refused the password; it was set by another "
                    "installation: use that installation's keyring, or factory-reset the sensor"
                )
            params = self._call(fp.getSystemParameters)
        except SensorError:
            self.close()
            raise
        self._params = tuple(params)
        self._capacity = params[2]
        self._packet_size = PACKET_SIZES[params[5]] if params[5] < len(PACKET_SIZES) else 128

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
        self._fp = self._link = None

    @property
    def is_open(self) -> bool:
        return self._fp is not None

    @property
    def bytes_on_wire(self) -> int:
        """Bytes sent and received since ``open`` (benchmarks compare this with the wire floor)."""
        return 0 if self._link is None else self._link.bytes_sent + self._link.bytes_received

    # --- library ----------------------------------------------------------------------------

    def identity(self) -> str:
        """``getSystemParameters`` but the status register (busy, matched...), which changes
        with use: system id, capacity, security level, address, packet size, baud."""
        self._require_open()
        _status, system_id, capacity, security, address, packet, baud = self._params
        size = PACKET_SIZES[packet] if packet < len(PACKET_SIZES) else f"code {packet}"
        return (f"zfm system_id={system_id:#06x} capacity={capacity} security_level={security} "
                f"address={address:#010x} packet_size={size} baud={baud * 9600}")

    def capacity(self) -> int:
        self._require_open()
        return self._capacity

    def template_count(self) -> int:
        return int(self._call(self._require_open().getTemplateCount))

    def occupied_slots(self) -> set[int]:
        fp = self._require_open()
        pages = (self._capacity + INDEX_PAGE_SLOTS - 1) // INDEX_PAGE_SLOTS
        slots: set[int] = set()
        for page in range(pages):
            flags = self._call(fp.getTemplateIndex, page)
            base = page * INDEX_PAGE_SLOTS
            slots.update(base + i for i, used in enumerate(flags) if used)
        slots.intersection_update(range(self._capacity))
        return slots

    def free_slot(self) -> int:
        """The lowest free slot.

        :raises LibraryFullError: every slot is taken.
        """
        used = self.occupied_slots()
        for slot in range(self._capacity):
            if slot not in used:
                return slot
        raise LibraryFullError(
            f"sensor library on {self.port} is full ({self._capacity} of {self._capacity} "
            "slots); remove people who no longer need access or fit a sensor with more slots",
            code=_BAD_SLOT,
        )

    # --- images and characteristics ---------------------------------------------------------

    def finger_present(self) -> bool:
        return bool(self._call(self._require_open().readImage))

    def wait_for_finger(self, timeout: float) -> None:
        self._poll(timeout, want_finger=True)

    def wait_for_lift(self, timeout: float) -> None:
        self._poll(timeout, want_finger=False)

    def capture(self, buffer: int = CHAR_BUFFER_1) -> None:
        self._call(self._require_open().convertImage, buffer)

    def search(self) -> SearchResult:
        """Search buffer 1 over the library in one round trip (capacity cached at ``open``)."""
        n = self._capacity
        code, payload = self._transact(Instruction.SEARCH, CHAR_BUFFER_1, 0, 0, n >> 8, n & 0xFF)
        if code == _NOT_FOUND:
            return NO_MATCH
        self._check(code, "search")
        if len(payload) < 4:
            self._stale = True
            raise SensorProtocolError(
                f"sensor on {self.port} answered the search with {len(payload)} bytes instead "
                "of 4; the line was out of step and has been resynchronised", code=code)
        return SearchResult(slot=payload[0] << 8 | payload[1], score=payload[2] << 8 | payload[3])

    def compare(self) -> int:
        return int(self._call(self._require_open().compareCharacteristics))

    def create_template(self) -> None:
        if not self._call(self._require_open().createTemplate):
            raise EnrollMismatchError(
                "the captures are not of the same finger; place the same finger each time",
                code=0x0A,
            )

    def store(self, slot: int, buffer: int = CHAR_BUFFER_1) -> None:
        self._check_slot(slot)
        self._call(self._require_open().storeTemplate, slot, buffer)

    def load(self, slot: int, buffer: int = CHAR_BUFFER_1) -> None:
        self._check_slot(slot)
        self._call(self._require_open().loadTemplate, slot, buffer)

    def download_characteristics(self, buffer: int = CHAR_BUFFER_1) -> bytes:
        return bytes(self._call(self._require_open().downloadCharacteristics, buffer))

    def upload_characteristics(self, data: bytes, buffer: int = CHAR_BUFFER_1) -> None:
        """Upload and read back (pyfingerprint verifies by downloading the buffer again)."""
        # pyfingerprint reports a failed comparison for bytes or tuples: it wants list[int].
        if not self._call(self._require_open().uploadCharacteristics, buffer, list(data)):
            raise SensorOperationError(
                f"sensor on {self.port} holds other characteristics than were uploaded; "
                "check the cable for noise"
            )

    def upload_template(self, slot: int, data: bytes) -> None:
        """DownChar then Store: the protocol's minimum for one template, no read-back.

        The sensor checks each data packet's checksum; the caller can spot-check with
        ``load`` + ``download_characteristics`` where it wants certainty over speed.
        """
        self._check_slot(slot)
        self._down_char(data, CHAR_BUFFER_1)
        code, _ = self._transact(
            Instruction.STORE, CHAR_BUFFER_1, slot >> 8, slot & 0xFF, flush=False)
        self._check(code, "template store", slot=slot)

    def send_characteristics(self, data: bytes, buffer: int = CHAR_BUFFER_2) -> None:
        """DownChar into ``buffer``: one command, its acknowledgement and the data packets
        (a 1:1 check's only wire cost beyond the capture; pyfingerprint's
        ``uploadCharacteristics`` adds a ReadSysPara and a full read-back)."""
        self._down_char(data, buffer)

    def _down_char(self, data: bytes, buffer: int) -> None:
        fp = self._require_open()
        code, _ = self._transact(Instruction.DOWN_CHAR, buffer)
        self._check(code, "template upload")
        size = self._packet_size
        chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]

        def send_data() -> None:
            for i, chunk in enumerate(chunks):
                pid = Pid.END_DATA if i == len(chunks) - 1 else Pid.DATA
                fp._PyFingerprint__writePacket(pid, list(chunk))
            # The link collects writes until the next read; the next command starts by
            # dropping what is pending, so the data packets must leave now.
            if self._link is not None:
                self._link.flush()

        self._guard(send_data)

    def delete(self, slot: int, count: int = 1) -> None:
        self._check_slot(slot)
        self._call(self._require_open().deleteTemplate, slot, count)

    def wipe(self) -> None:
        self._call(self._require_open().clearDatabase)

    def set_password(self, password: int) -> None:
        if not 0 <= password <= 0xFFFFFFFF:
            raise SensorOperationError("a sensor password is a 32-bit number")
        self._call(self._require_open().setPassword, password)
        self.password = password

    # --- plumbing ---------------------------------------------------------------------------

    def _poll(self, timeout: float, *, want_finger: bool) -> None:
        deadline = time.monotonic() + timeout
        while self.finger_present() != want_finger:
            if time.monotonic() >= deadline:
                what = "no finger was placed" if want_finger else "the finger was not lifted"
                raise NoFingerError(f"{what} on the sensor within {timeout:g} s")
            time.sleep(self.poll_interval)

    def _require_open(self) -> Any:
        if self._fp is None:
            raise SensorDisconnectedError(f"sensor on {self.port} is not open; call open() first")
        return self._fp

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self._capacity:
            raise BadSlotError(
                f"slot {slot} is outside the library of the sensor on {self.port} "
                f"(0..{self._capacity - 1})", code=_BAD_SLOT)

    def _begin(self) -> DeadlineSerial:
        if self._link is None:
            raise SensorDisconnectedError(f"sensor on {self.port} is not open; call open() first")
        if self._stale:
            self._stale = False
            self._link.drain(quiet=min(self.timeout, 0.5))
        self._link.reset_input_buffer()
        self._link.set_deadline(self.timeout)
        return self._link

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        """Run one pyfingerprint command with a clean buffer and a deadline."""
        self._begin()
        return self._guard(lambda: method(*args))

    def _transact(
        self, instruction: int, *params: int, flush: bool = True
    ) -> tuple[int, list[int]]:
        """Send one command through pyfingerprint's packet layer; return (code, rest)."""
        fp = self._require_open()
        if flush:
            self._begin()
        elif self._link is not None:
            self._link.set_deadline(self.timeout)

        def exchange() -> tuple[int, list[int]]:
            fp._PyFingerprint__writePacket(Pid.COMMAND, (instruction, *params))
            pid, payload = fp._PyFingerprint__readPacket()
            if pid != Pid.ACK or not payload:
                raise SensorProtocolError(
                    f"sensor on {self.port} answered with packet type {pid:#04x} instead of an "
                    "acknowledgement")
            return payload[0], payload[1:]

        return self._guard(exchange)

    def _check(self, code: int, what: str, *, slot: int | None = None) -> None:
        if code == _OK:
            return
        if code == _BAD_SLOT:
            raise BadSlotError(f"sensor on {self.port} refused slot {slot} for {what}", code=code)
        if code == Confirmation.PASSWORD_NOT_VERIFIED:
            raise SensorBadPasswordError(
                f"sensor on {self.port} wants its password verified first; reopen it")
        raise SensorOperationError(
            f"sensor on {self.port} failed the {what} with code {code:#04x}", code=code)

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (SensorTimeoutError, SensorProtocolError):
            self._stale = True
            raise
        except SensorError:
            raise
        except IndexError as exc:  # pyfingerprint indexing into an answer that was too short
            self._stale = True
            raise SensorProtocolError(
                f"sensor on {self.port} sent an answer too short for the command; the line was "
                "out of step and will be resynchronised") from exc
        except ValueError as exc:
            if "position" in str(exc):
                raise BadSlotError(f"sensor on {self.port}: {exc}", code=_BAD_SLOT) from exc
            raise SensorOperationError(f"sensor on {self.port}: {exc}") from exc
        except Exception as exc:  # pyfingerprint raises bare Exception
            error = self._translate(exc)
            if isinstance(error, SensorProtocolError):
                self._stale = True
            raise error from exc

    def _translate(self, exc: Exception) -> SensorError:
        text = str(exc)
        unknown = _UNKNOWN.search(text)
        if unknown:
            code = int(unknown.group(1), 16)
            if code in (Confirmation.WRONG_PASSWORD, Confirmation.PASSWORD_NOT_VERIFIED):
                return SensorBadPasswordError(f"sensor on {self.port} refused the password")
            return SensorOperationError(
                f"sensor on {self.port} answered with error code {code:#04x}", code=code)
        for needle, kind, known_code, advice in _MESSAGES:
            if needle in text:
                if issubclass(kind, SensorOperationError):
                    return kind(f"sensor on {self.port} {advice}", code=known_code)
                return kind(f"sensor on {self.port} {advice}")
        return SensorOperationError(f"sensor on {self.port} failed: {text}")

    def _timeout_error(self) -> SensorError:
        return SensorTimeoutError(
            f"sensor on {self.port} did not answer within {self.timeout:g} s; check wiring, "
            "power and baud rate, and run `accessd doctor`")

    def _disconnect_error(self, exc: BaseException) -> SensorError:
        return SensorDisconnectedError(
            f"sensor on {self.port} is not reachable ({exc}); check that it is plugged in and "
            "that the port name is right")

