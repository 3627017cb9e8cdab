"""What runs inside a simulated ZFM/R30x sensor: its memory and its answer to each packet.

No I/O and no threads: ``SensorFirmware.answer`` takes one parsed packet and returns what the
sensor sends back and how long it is busy first. ``hardware_sim.sensor.SimulatedSensor`` puts it
behind a pty and a lock. Choices where datasheets leave room (documented again there):

- A command for another module address answers 0x20 from this sensor's own address.
- With a non-zero password every instruction but VfyPwd answers 0x21 until VfyPwd succeeds; a
  failed VfyPwd revokes an earlier success.
- A character buffer number other than 1 or 2 answers 0x01; an unknown instruction 0xFC.
- Search applies the false reject and false accept rates; Match reports the true score.
- ReadConList answers any page; slots outside the library read as free.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.zfm import (
    BAUD_UNIT,
    CHARACTERISTICS_SIZE,
    INDEX_PAGE_SLOTS,
    PACKET_SIZES,
    SYSTEM_ID,
    Confirmation,
    Instruction,
    Packet,
    Pid,
    SystemParameter,
)
from hardware_sim import fingers
from hardware_sim.fingers import Impression, Quality

MAX_DOWNLOAD = 4 * CHARACTERISTICS_SIZE  # DownChar gives up on transfers longer than this
DEFAULT_SECURITY_LEVEL = 3

C = Confirmation


@dataclass(frozen=True, slots=True)
class Answer:
    """What the sensor sends back for one command."""

    code: int
    data: bytes = b""  # acknowledgement payload after the confirmation code
    transfer: bytes | None = None  # sent as data packets after the acknowledgement
    busy: float = 0.0  # seconds of processing before the acknowledgement
    address: int | None = None  # answer from this address (SetAdder answers as the new one)
    baud: int | None = None  # new line rate, effective once the acknowledgement is sent


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds the sensor is busy per operation; 0 answers at once."""

    image: float = 0.0  # a GenImg that finds a finger
    # A GenImg that finds no finger: the sensor's presence check answers sooner than a full
    # capture. None means as long as a capture (the most pessimistic sensor).
    empty_image: float | None = None
    search: float = 0.0  # Search, for any range
    store: float = 0.0  # flash writes: Store, DeletChar, Empty


@dataclass(frozen=True, slots=True)
class Matching:
    """How the sensor decides matches."""

    threshold: int = fingers.DEFAULT_MATCH_THRESHOLD
    false_reject_rate: float = 0.0
    false_accept_rate: float = 0.0
    seed: int = 0


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def _u32(data: bytes) -> int:
    return int.from_bytes(data[:4], "big")


class SensorFirmware:
    """The sensor's flash (library, password, address, settings) and RAM (image, buffers).

    Not thread-safe: its owner serialises calls. Attributes are public for that owner.
    """

    def __init__(self, *, capacity: int, password: int, address: int, baud_multiplier: int,
                 packet_size: int, timing: Timing, matching: Matching) -> None:
        self.capacity = capacity
        self.password = password
        self.address = address
        self.baud_multiplier = baud_multiplier
        self.packet_size_code = PACKET_SIZES.index(packet_size)
        self.security_level = DEFAULT_SECURITY_LEVEL
        self.timing = timing
        self.matching = matching
        self.library: dict[int, bytes] = {}
        self.on_glass: Impression | None = None  # the world, not the sensor: what is placed
        self._rng = random.Random(matching.seed)  # false accepts and rejects
        self._codes = random.Random(f"{matching.seed}:GetRandomCode")  # apart: same draws
        self._commands: dict[int, tuple[int, Callable[[bytes], Answer]]] = {
            Instruction.GEN_IMG: (0, self._gen_img),
            Instruction.IMG2TZ: (1, self._img2tz),
            Instruction.MATCH: (0, self._match),
            Instruction.SEARCH: (5, self._search),
            Instruction.REG_MODEL: (0, self._reg_model),
            Instruction.STORE: (3, self._store),
            Instruction.LOAD_CHAR: (3, self._load_char),
            Instruction.UP_CHAR: (1, self._up_char),
            Instruction.DOWN_CHAR: (1, self._down_char),
            Instruction.UP_IMAGE: (0, self._up_image),
            Instruction.DELET_CHAR: (4, self._delet_char),
            Instruction.EMPTY: (0, self._empty),
            Instruction.SET_SYS_PARA: (2, self._set_sys_para),
            Instruction.READ_SYS_PARA: (0, self._read_sys_para),
            Instruction.SET_PWD: (4, self._set_pwd),
            Instruction.VFY_PWD: (4, self._vfy_pwd),
            Instruction.GET_RANDOM_CODE: (0, self._get_random_code),
            Instruction.SET_ADDER: (4, self._set_adder),
            Instruction.TEMPLATE_NUM: (0, self._template_num),
            Instruction.READ_CON_LIST: (1, self._read_con_list),
        }
        self.power_on()

    @property
    def packet_size(self) -> int:
        """Bytes per data packet the sensor sends."""
        return PACKET_SIZES[self.packet_size_code]

    def power_on(self) -> None:
        """Clear what RAM holds after a power cycle; flash and settings stay."""
        self.verified = False
        self.image: Impression | None = None
        self.buffers = {1: bytes(CHARACTERISTICS_SIZE), 2: bytes(CHARACTERISTICS_SIZE)}
        self.matched = False  # status register bit "pass"
        self._download: tuple[int, bytearray] | None = None  # DownChar in progress

    def answer(self, packet: Packet) -> Answer | None:
        """The answer to one packet, or ``None`` for packets that get none (data packets,
        acknowledgements, empty commands)."""
        if packet.pid in (Pid.DATA, Pid.END_DATA):
            self._receive_data(packet)
            return None
        if packet.pid != Pid.COMMAND or not packet.payload:
            return None
        self._download = None  # a command ends any transfer the host abandoned
        if packet.address != self.address:
            return Answer(C.WRONG_ADDRESS)
        instruction, args = packet.payload[0], packet.payload[1:]
        command = self._commands.get(instruction)
        if command is None:
            return Answer(C.UNSUPPORTED_COMMAND)
        if self.password and not self.verified and instruction != Instruction.VFY_PWD:
            return Answer(C.PASSWORD_NOT_VERIFIED)
        arg_length, handler = command
        if len(args) < arg_length:
            return Answer(C.RECEIVE_ERROR)
        return handler(args)

    def _receive_data(self, packet: Packet) -> None:
        if self._download is None or packet.address != self.address:
            return  # stray data: nothing asked for it
        buffer, data = self._download
        data += packet.payload
        if len(data) > MAX_DOWNLOAD:
            self._download = None
        elif packet.pid == Pid.END_DATA:
            self.buffers[buffer] = bytes(data)
            self._download = None

    # --- instructions ---------------------------------------------------------------------

    def _gen_img(self, args: bytes) -> Answer:
        if self.on_glass is None:
            empty = self.timing.empty_image
            return Answer(C.NO_FINGER, busy=self.timing.image if empty is None else empty)
        self.image = self.on_glass
        return Answer(C.OK, busy=self.timing.image)

    def _img2tz(self, args: bytes) -> Answer:
        if args[0] not in self.buffers:
            return Answer(C.RECEIVE_ERROR)
        if self.image is None:
            return Answer(C.INVALID_IMAGE)
        if self.image.quality is Quality.MESSY:
            return Answer(C.IMAGE_MESSY)
        if self.image.quality is Quality.FEW_FEATURES:
            return Answer(C.TOO_FEW_FEATURES)
        self.buffers[args[0]] = fingers.characteristics(self.image)
        return Answer(C.OK)

    def _match(self, args: bytes) -> Answer:
        score = fingers.match_score(self.buffers[1], self.buffers[2])
        self.matched = score >= self.matching.threshold
        return Answer(C.OK if self.matched else C.NO_MATCH, score.to_bytes(2, "big"))

    def _search(self, args: bytes) -> Answer:
        buffer, start, count = args[0], _u16(args, 1), _u16(args, 3)
        if buffer not in self.buffers:
            return Answer(C.RECEIVE_ERROR)
        if start >= self.capacity:
            return Answer(C.BAD_SLOT)
        end = min(start + count, self.capacity)
        in_range = sorted(s for s in self.library if start <= s < end)
        query = self.buffers[buffer]
        slot, score = -1, 0
        for candidate in in_range:
            s = fingers.match_score(query, self.library[candidate])
            if s > score:
                slot, score = candidate, s
        m = self.matching
        found = score >= m.threshold
        # Draw only when a rate could apply, so a run without them keeps its random sequence.
        if found and m.false_reject_rate and self._rng.random() < m.false_reject_rate:
            found = False
        elif not found and in_range and m.false_accept_rate and (
                self._rng.random() < m.false_accept_rate):
            found = True
            slot, score = self._rng.choice(in_range), m.threshold + self._rng.randrange(10)
        self.matched = found
        if not found:
            return Answer(C.NOT_FOUND, bytes(4), busy=self.timing.search)
        return Answer(C.OK, slot.to_bytes(2, "big") + score.to_bytes(2, "big"),
                      busy=self.timing.search)

    def _reg_model(self, args: bytes) -> Answer:
        template = fingers.combine(self.buffers[1], self.buffers[2], self.matching.threshold)
        if template is None:
            return Answer(C.COMBINE_FAILED)
        self.buffers[1] = self.buffers[2] = template
        return Answer(C.OK)

    def _store(self, args: bytes) -> Answer:
        buffer, slot = args[0], _u16(args, 1)
        if buffer not in self.buffers:
            return Answer(C.RECEIVE_ERROR)
        if slot >= self.capacity:
            return Answer(C.BAD_SLOT)
        self.library[slot] = self.buffers[buffer]
        return Answer(C.OK, busy=self.timing.store)

    def _load_char(self, args: bytes) -> Answer:
        buffer, slot = args[0], _u16(args, 1)
        if buffer not in self.buffers:
            return Answer(C.RECEIVE_ERROR)
        if slot >= self.capacity:
            return Answer(C.BAD_SLOT)
        if slot not in self.library:
            return Answer(C.TEMPLATE_READ_ERROR)
        self.buffers[buffer] = self.library[slot]
        return Answer(C.OK)

    def _up_char(self, args: bytes) -> Answer:
        if args[0] not in self.buffers:
            return Answer(C.RECEIVE_ERROR)
        return Answer(C.OK, transfer=self.buffers[args[0]])

    def _down_char(self, args: bytes) -> Answer:
        if args[0] not in self.buffers:
            return Answer(C.RECEIVE_ERROR)
        self._download = (args[0], bytearray())
        return Answer(C.OK)

    def _up_image(self, args: bytes) -> Answer:
        if self.image is None:
            return Answer(C.UPLOAD_IMAGE_FAILED)
        return Answer(C.OK, transfer=fingers.image(self.image))

    def _delet_char(self, args: bytes) -> Answer:
        start, count = _u16(args, 0), _u16(args, 2)
        if start >= self.capacity or start + count > self.capacity:
            return Answer(C.DELETE_FAILED)
        for slot in range(start, start + count):
            self.library.pop(slot, None)
        return Answer(C.OK, busy=self.timing.store)

    def _empty(self, args: bytes) -> Answer:
        self.library.clear()
        return Answer(C.OK, busy=self.timing.store)

    def _set_sys_para(self, args: bytes) -> Answer:
        parameter, value = args[0], args[1]
        if parameter == SystemParameter.BAUD and 1 <= value <= 12:
            self.baud_multiplier = value
            return Answer(C.OK, baud=value * BAUD_UNIT)
        if parameter == SystemParameter.SECURITY_LEVEL and 1 <= value <= 5:
            self.security_level = value
            return Answer(C.OK)
        if parameter == SystemParameter.PACKET_SIZE and value < len(PACKET_SIZES):
            self.packet_size_code = value
            return Answer(C.OK)
        return Answer(C.INVALID_REGISTER)

    def _read_sys_para(self, args: bytes) -> Answer:
        status = self.matched << 1 | self.verified << 2 | (self.image is not None) << 3
        return Answer(C.OK, b"".join((
            status.to_bytes(2, "big"), SYSTEM_ID.to_bytes(2, "big"),
            self.capacity.to_bytes(2, "big"), self.security_level.to_bytes(2, "big"),
            self.address.to_bytes(4, "big"), self.packet_size_code.to_bytes(2, "big"),
            self.baud_multiplier.to_bytes(2, "big"))))

    def _set_pwd(self, args: bytes) -> Answer:
        self.password = _u32(args)
        return Answer(C.OK)

    def _vfy_pwd(self, args: bytes) -> Answer:
        self.verified = _u32(args) == self.password
        return Answer(C.OK if self.verified else C.WRONG_PASSWORD)

    def _get_random_code(self, args: bytes) -> Answer:
        return Answer(C.OK, self._codes.getrandbits(32).to_bytes(4, "big"))

    def _set_adder(self, args: bytes) -> Answer:
        self.address = _u32(args)
        return Answer(C.OK, address=self.address)

    def _template_num(self, args: bytes) -> Answer:
        return Answer(C.OK, len(self.library).to_bytes(2, "big"))

    def _read_con_list(self, args: bytes) -> Answer:
        first = args[0] * INDEX_PAGE_SLOTS
        bits = sum(1 << (slot - first) for slot in self.library
                   if first <= slot < first + INDEX_PAGE_SLOTS)
        return Answer(C.OK, bits.to_bytes(INDEX_PAGE_SLOTS // 8, "little"))  # LSB = lowest slot
