"""The ZFM/R30x fingerprint sensor's packet protocol: constants, encoding, incremental parsing.

Pure framing, no I/O: bytes in, packets out. Both sides of the wire use it: the simulator in
``hardware_sim`` to read commands and write answers, and any host-side code that wants the
protocol's constants or confirmation-code descriptions. It imports nothing but the standard
library and ``firmware_bridge.errors``, so it works without pyserial.

A packet on the wire (big-endian)::

    EF 01 | address (4) | PID (1) | LEN (2) | payload (LEN - 2) | SUM (2)

``SUM`` is the low 16 bits of PID + both LEN bytes + every payload byte. A command's first
payload byte is its instruction; an acknowledgement's first payload byte is its confirmation code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from firmware_bridge.errors import SensorProtocolError

START_CODE = 0xEF01
START_BYTES = START_CODE.to_bytes(2, "big")
DEFAULT_ADDRESS = 0xFFFFFFFF
DEFAULT_PASSWORD = 0x00000000

HEADER_SIZE = 9  # start code, address, PID, LEN
CHECKSUM_SIZE = 2
MAX_PAYLOAD = 256  # the largest data packet (packet size code 3); commands are far smaller
MAX_PACKET_SIZE = HEADER_SIZE + MAX_PAYLOAD + CHECKSUM_SIZE

CHARACTERISTICS_SIZE = 512  # one character buffer or template on ZFM/R307/AS608
IMAGE_WIDTH = 256
IMAGE_HEIGHT = 288
IMAGE_SIZE = IMAGE_WIDTH * IMAGE_HEIGHT // 2  # 4 bits per pixel on the wire
INDEX_PAGE_SLOTS = 256  # ReadConList: one page is 32 bytes, one bit per slot, LSB first
INDEX_PAGES = 4  # pyfingerprint asks pages 0..3 only
BAUD_UNIT = 9600  # the baud rate is 9600 x N, N = 1..12
PACKET_SIZES = (32, 64, 128, 256)  # indexed by the packet size code (system parameter 6)
SYSTEM_ID = 0x0009  # what ZFM modules report as their system identifier


class Pid(enum.IntEnum):
    """Packet identifier: what kind of packet follows."""

    COMMAND = 0x01
    DATA = 0x02  # a data packet with more to come
    ACK = 0x07
    END_DATA = 0x08  # the last data packet of a transfer


_PIDS = frozenset(int(p) for p in Pid)


class Instruction(enum.IntEnum):
    """Instruction codes, the first byte of a command packet's payload."""

    GEN_IMG = 0x01
    IMG2TZ = 0x02
    MATCH = 0x03
    SEARCH = 0x04
    REG_MODEL = 0x05
    STORE = 0x06
    LOAD_CHAR = 0x07
    UP_CHAR = 0x08
    DOWN_CHAR = 0x09
    UP_IMAGE = 0x0A
    DOWN_IMAGE = 0x0B
    DELET_CHAR = 0x0C
    EMPTY = 0x0D
    SET_SYS_PARA = 0x0E
    READ_SYS_PARA = 0x0F
    SET_PWD = 0x12
    VFY_PWD = 0x13
    GET_RANDOM_CODE = 0x14
    SET_ADDER = 0x15
    TEMPLATE_NUM = 0x1D
    READ_CON_LIST = 0x1F

    @property
    def datasheet_name(self) -> str:
        """The name the sensor's datasheet uses ("GenImg", "Img2Tz", ...)."""
        return _DATASHEET_NAMES[self]


_DATASHEET_NAMES = {
    Instruction.GEN_IMG: "GenImg", Instruction.IMG2TZ: "Img2Tz", Instruction.MATCH: "Match",
    Instruction.SEARCH: "Search", Instruction.REG_MODEL: "RegModel", Instruction.STORE: "Store",
    Instruction.LOAD_CHAR: "LoadChar", Instruction.UP_CHAR: "UpChar",
    Instruction.DOWN_CHAR: "DownChar", Instruction.UP_IMAGE: "UpImage",
    Instruction.DOWN_IMAGE: "DownImage", Instruction.DELET_CHAR: "DeletChar",
    Instruction.EMPTY: "Empty", Instruction.SET_SYS_PARA: "SetSysPara",
    Instruction.READ_SYS_PARA: "ReadSysPara", Instruction.SET_PWD: "SetPwd",
    Instruction.VFY_PWD: "VfyPwd", Instruction.GET_RANDOM_CODE: "GetRandomCode",
    Instruction.SET_ADDER: "SetAdder", Instruction.TEMPLATE_NUM: "TemplateNum",
    Instruction.READ_CON_LIST: "ReadConList",
}


def instruction_name(code: int) -> str:
    """The datasheet name of an instruction code, or ``"Unknown(0x42)"`` for others."""
    try:
        return Instruction(code).datasheet_name
    except ValueError:
        return f"Unknown({code:#04x})"


class Confirmation(enum.IntEnum):
    """Confirmation codes, the first byte of an acknowledgement's payload."""

    OK = 0x00
    RECEIVE_ERROR = 0x01
    NO_FINGER = 0x02
    ENROLL_FAILED = 0x03
    IMAGE_MESSY = 0x06
    TOO_FEW_FEATURES = 0x07
    NO_MATCH = 0x08
    NOT_FOUND = 0x09
    COMBINE_FAILED = 0x0A
    BAD_SLOT = 0x0B
    TEMPLATE_READ_ERROR = 0x0C
    UPLOAD_CHAR_FAILED = 0x0D
    DATA_RECEIVE_FAILED = 0x0E
    UPLOAD_IMAGE_FAILED = 0x0F
    DELETE_FAILED = 0x10
    CLEAR_FAILED = 0x11
    WRONG_PASSWORD = 0x13
    INVALID_IMAGE = 0x15
    FLASH_ERROR = 0x18
    UNDEFINED_ERROR = 0x19
    INVALID_REGISTER = 0x1A
    BAD_REGISTER_CONFIG = 0x1B
    BAD_NOTEPAD_PAGE = 0x1C
    PORT_FAILURE = 0x1D
    LIBRARY_FULL = 0x1F
    WRONG_ADDRESS = 0x20
    PASSWORD_NOT_VERIFIED = 0x21
    UNSUPPORTED_COMMAND = 0xFC

    @property
    def description(self) -> str:
        """What the code means, in a person's words."""
        return CONFIRMATION_DESCRIPTIONS[self]


CONFIRMATION_DESCRIPTIONS: dict[int, str] = {
    Confirmation.OK: "success",
    Confirmation.RECEIVE_ERROR: "error when receiving the packet",
    Confirmation.NO_FINGER: "no finger on the sensor",
    Confirmation.ENROLL_FAILED: "failed to take the finger's image",
    Confirmation.IMAGE_MESSY: "image too messy to extract characteristics",
    Confirmation.TOO_FEW_FEATURES: "too few feature points in the image (or image too small)",
    Confirmation.NO_MATCH: "the two character buffers do not match",
    Confirmation.NOT_FOUND: "no matching template in the library",
    Confirmation.COMBINE_FAILED: "the two captures could not be combined into one template",
    Confirmation.BAD_SLOT: "slot number outside the template library",
    Confirmation.TEMPLATE_READ_ERROR: "error reading the template from the library, or it is empty",
    Confirmation.UPLOAD_CHAR_FAILED: "error uploading the characteristics to the host",
    Confirmation.DATA_RECEIVE_FAILED: "the sensor cannot receive the following data packets",
    Confirmation.UPLOAD_IMAGE_FAILED: "error uploading the image to the host",
    Confirmation.DELETE_FAILED: "failed to delete the templates",
    Confirmation.CLEAR_FAILED: "failed to clear the template library",
    Confirmation.WRONG_PASSWORD: "wrong password",
    Confirmation.INVALID_IMAGE: "no valid image in the image buffer",
    Confirmation.FLASH_ERROR: "error writing the flash",
    Confirmation.UNDEFINED_ERROR: "undefined error",
    Confirmation.INVALID_REGISTER: "invalid register number or value",
    Confirmation.BAD_REGISTER_CONFIG: "incorrect register configuration",
    Confirmation.BAD_NOTEPAD_PAGE: "wrong notepad page number",
    Confirmation.PORT_FAILURE: "failed to operate the communication port",
    Confirmation.LIBRARY_FULL: "the template library is full",
    Confirmation.WRONG_ADDRESS: "the packet was sent to another module address",
    Confirmation.PASSWORD_NOT_VERIFIED: "the password must be verified first",
    Confirmation.UNSUPPORTED_COMMAND: "unsupported instruction",
}


def describe_confirmation(code: int) -> str:
    """A person's words for any confirmation code, known or not."""
    return CONFIRMATION_DESCRIPTIONS.get(code, f"unknown confirmation code {code:#04x}")


class SystemParameter(enum.IntEnum):
    """Parameter numbers of SetSysPara."""

    BAUD = 4  # value N: 9600 x N baud, N = 1..12
    SECURITY_LEVEL = 5  # 1 (lowest) .. 5
    PACKET_SIZE = 6  # code 0..3, see PACKET_SIZES


# --- encoding ---------------------------------------------------------------------------------


def checksum(pid: int, payload: bytes) -> int:
    """The 16-bit checksum of a packet: PID + both LEN bytes + payload, low 16 bits."""
    length = len(payload) + CHECKSUM_SIZE
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode_packet(address: int, pid: int, payload: bytes) -> bytes:
    """The bytes of one packet, ready for the wire.

    :raises ValueError: address not 32-bit, unknown PID, or payload longer than ``MAX_PAYLOAD``
        (these are the caller's mistakes, not line faults).
    """
    if not 0 <= address <= 0xFFFFFFFF:
        raise ValueError(f"address {address:#x} is not a 32-bit number")
    if pid not in _PIDS:
        raise ValueError(f"packet identifier {pid:#04x} is not one of 01, 02, 07, 08")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    length = len(payload) + CHECKSUM_SIZE
    return b"".join((
        START_BYTES,
        address.to_bytes(4, "big"),
        bytes((pid,)),
        length.to_bytes(2, "big"),
        payload,
        checksum(pid, payload).to_bytes(2, "big"),
    ))


@dataclass(frozen=True, slots=True)
class Packet:
    """One well-formed packet (its checksum was right)."""

    address: int
    pid: Pid
    payload: bytes

    def encode(self) -> bytes:
        """The packet's bytes on the wire."""
        return encode_packet(self.address, self.pid, self.payload)


# --- parsing ----------------------------------------------------------------------------------


class FrameFault(enum.Enum):
    """Why bytes were not a packet."""

    GARBAGE = "garbage"  # bytes before a start code
    BAD_PID = "bad packet identifier"
    BAD_LENGTH = "bad length"
    BAD_CHECKSUM = "bad checksum"
    TRUNCATED = "truncated"  # the stream ended inside a packet (only from ``flush``)


class FrameError(SensorProtocolError):
    """Bytes on the line that do not form a valid packet.

    ``PacketParser`` returns these as values among the packets, in stream order, and never
    raises them: a framing fault is an ordinary event on a serial line, and the simulator must
    answer some of them (a bad checksum gets confirmation code 01) without unwinding. A host
    driver that wants an exception can ``raise`` the value as it is.

    :ivar fault: what was wrong.
    :ivar discarded: how many bytes the parser dropped for this fault.
    :ivar address: the frame's address field where the header was complete, else ``None``.
    :ivar pid: the frame's PID byte where the header was complete, else ``None``.
    """

    def __init__(self, fault: FrameFault, discarded: int, *, address: int | None = None,
                 pid: int | None = None, detail: str = "") -> None:
        where = "" if address is None else f" in a packet for address {address:#010x}"
        what = f" ({detail})" if detail else ""
        super().__init__(f"{fault.value}{where}{what}: {discarded} byte(s) dropped; "
                         "check the wiring, the baud rate and that one program owns the port")
        self.fault = fault
        self.discarded = discarded
        self.address = address
        self.pid = pid


class PacketParser:
    """Turns a byte stream, fed in chunks of any size, into packets and framing errors.

    It hunts for the start code ``EF 01`` and resynchronises after any fault by dropping the
    two start-code bytes of the failed frame and hunting again from there, so a valid packet
    hidden after (or inside the declared length of) a bogus frame is still found. A length
    outside ``2 .. MAX_PAYLOAD + 2`` is a framing error at once, which keeps the buffer below
    ``MAX_PACKET_SIZE`` bytes after every ``feed``. No method raises.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a packet (always < ``MAX_PACKET_SIZE``)."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial packet, as a device does after a receive timeout."""
        self._buf.clear()

    def feed(self, data: bytes) -> list[Packet | FrameError]:
        """Add bytes; return every packet and framing error they complete, in stream order."""
        self._buf += data
        return self._scan(final=False)

    def flush(self) -> list[Packet | FrameError]:
        """Treat the stream as ended: packets still findable in the buffer, then what is left
        reported as a framing error. The buffer is empty afterwards."""
        return self._scan(final=True)

    def _scan(self, final: bool) -> list[Packet | FrameError]:
        buf = self._buf
        out: list[Packet | FrameError] = []
        pos = 0  # index of the first byte not yet consumed
        garbage = 0  # bytes skipped while hunting, reported as one error before the next item

        def drop(n: int) -> None:
            nonlocal garbage, pos
            garbage += n
            pos += n

        def report(item: Packet | FrameError) -> None:
            nonlocal garbage
            if garbage:
                out.append(FrameError(FrameFault.GARBAGE, garbage))
                garbage = 0
            out.append(item)

        while True:
            start = buf.find(START_BYTES, pos)
            if start < 0:
                # Keep a trailing EF: it may be the first half of a start code still on its way.
                keep = 1 if not final and len(buf) > pos and buf[-1] == START_BYTES[0] else 0
                drop(len(buf) - pos - keep)
                break
            drop(start - pos)
            if len(buf) - pos < HEADER_SIZE:
                if final:
                    report(FrameError(FrameFault.TRUNCATED, 2))
                    pos += 2
                    continue
                break
            address = int.from_bytes(buf[pos + 2:pos + 6], "big")
            pid = buf[pos + 6]
            length = int.from_bytes(buf[pos + 7:pos + 9], "big")
            if pid not in _PIDS:
                report(FrameError(FrameFault.BAD_PID, 2, detail=f"PID {pid:#04x}"))
                pos += 2
                continue
            if not CHECKSUM_SIZE <= length <= MAX_PAYLOAD + CHECKSUM_SIZE:
                report(FrameError(FrameFault.BAD_LENGTH, 2, address=address, pid=pid,
                                  detail=f"LEN {length}"))
                pos += 2
                continue
            end = pos + HEADER_SIZE + length
            if end > len(buf):
                if final:
                    report(FrameError(FrameFault.TRUNCATED, 2, address=address, pid=pid))
                    pos += 2
                    continue
                break
            payload = bytes(buf[pos + HEADER_SIZE:end - CHECKSUM_SIZE])
            received = int.from_bytes(buf[end - CHECKSUM_SIZE:end], "big")
            expected = checksum(pid, payload)
            if received != expected:
                report(FrameError(FrameFault.BAD_CHECKSUM, 2, address=address, pid=pid,
                                  detail=f"SUM {received:#06x}, expected {expected:#06x}"))
                pos += 2
                continue
            report(Packet(address, Pid(pid), payload))
            pos = end
        if garbage:
            out.append(FrameError(FrameFault.GARBAGE, garbage))
        del buf[:pos]
        return out
