"""A simulated ZFM/R30x fingerprint sensor behind a pseudo-terminal.

It speaks the sensor's packet protocol (``firmware_bridge.zfm``) byte for byte, for every
instruction the real ``pyfingerprint`` sends, with a flash template library, password and address
checks and the real confirmation codes (the instructions themselves live in
``hardware_sim.sensor_firmware``). Tests play the person at the door with ``place`` and ``lift``
and assert on ``history``, a timestamped record of every answer, as gpiozero's ``MockPin`` keeps
one of its states.

Behaviour worth knowing, where datasheets leave room:

- A packet for another module address is answered with 0x20 (from this sensor's own address),
  as the R30x manuals list that code. A bad checksum gets 0x01, but only when the frame's address
  field is this sensor's: a corrupted frame may be meant for another module on the line.
- With a non-zero password every instruction but VfyPwd answers 0x21 until VfyPwd succeeded; a
  failed VfyPwd revokes an earlier success. ``power_cycle`` forgets it, as a real power cycle
  does; unplugging the port does not (``PtyPort`` tells nobody about a replug).
- A bad character buffer number (not 1 or 2) answers 0x01; an unknown instruction 0xFC.
- Search honours ``false_reject_rate`` and ``false_accept_rate`` with an RNG seeded by ``seed``;
  Match reports the true score.
- ``image_time`` (a GenImg that finds a finger; ``empty_image_time`` one that does not, by
  default the same), ``search_time`` (Search) and ``store_time``
  (Store, DeletChar, Empty) are slept whenever they are above zero, whether or not ``baud`` is
  set; ``baud`` paces the bytes only. Everything defaults to 0: no timing emulation.
- SetSysPara changes the reported values; a new baud multiplier also changes the pacing when
  ``baud`` is set. The security level is reported only; ``match_threshold`` decides matches.
- A partial packet older than ``RX_IDLE_RESET`` is dropped before new bytes are parsed, as a
  sensor's receive timeout would, so bytes cut off by an unplug do not swallow the next command.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple, Self

from firmware_bridge.zfm import (
    BAUD_UNIT,
    DEFAULT_ADDRESS,
    INDEX_PAGE_SLOTS,
    INDEX_PAGES,
    PACKET_SIZES,
    Confirmation,
    FrameError,
    FrameFault,
    Packet,
    PacketParser,
    Pid,
    encode_packet,
    instruction_name,
)
from hardware_sim import fingers
from hardware_sim.fingers import DEFAULT_MATCH_THRESHOLD, Quality
from hardware_sim.port import PtyPort, sleep_until
from hardware_sim.sensor_firmware import Answer, Matching, SensorFirmware, Timing

log = logging.getLogger(__name__)

RX_IDLE_RESET = 0.5  # seconds of silence after which a partial packet is dropped
BAD_CHECKSUM = "<bad checksum>"  # the history's instruction name for a frame that failed its SUM


class HistoryEntry(NamedTuple):
    """One answer the sensor sent: when (``time.monotonic()``), to what, with which code."""

    at: float
    instruction: str  # the datasheet's name ("GenImg"), "Unknown(0x42)" or BAD_CHECKSUM
    code: int


class SimulatedSensor:
    """A ZFM/R30x sensor on a pty; drivers open ``path``. Control calls are thread-safe.

    :param link: where the stable symlink to the pty is made.
    :param capacity: template slots, 1 .. 1024 (pyfingerprint reads four 256-slot index pages).
    :param baud: pace bytes at this rate (9600 x N, N = 1..12); ``None`` sends them at once.
    :param packet_size: data packet size, 32, 64, 128 or 256.
    :param match_threshold: the lowest score that counts as a match (scores run 0..300).
    :param seed: seeds the false accept / reject draws and GetRandomCode.
    :raises ValueError: a setting outside what a real sensor could have.
    """

    def __init__(self, *, link: Path, capacity: int = 1000, password: int = 0,
                 address: int = DEFAULT_ADDRESS, baud: int | None = None,
                 image_time: float = 0.0, search_time: float = 0.0, store_time: float = 0.0,
                 empty_image_time: float | None = None, packet_size: int = 128,
                 false_reject_rate: float = 0.0, false_accept_rate: float = 0.0,
                 match_threshold: int = DEFAULT_MATCH_THRESHOLD, seed: int = 0) -> None:
        slots = INDEX_PAGES * INDEX_PAGE_SLOTS
        if not 1 <= capacity <= slots:
            raise ValueError(f"capacity {capacity} is outside 1..{slots}")
        if not (0 <= password <= 0xFFFFFFFF and 0 <= address <= 0xFFFFFFFF):
            raise ValueError("password and address are 32-bit numbers")
        if baud is not None and (baud % BAUD_UNIT or not 1 <= baud // BAUD_UNIT <= 12):
            raise ValueError(f"baud {baud} is not 9600 x N with N = 1..12")
        if packet_size not in PACKET_SIZES:
            raise ValueError(f"packet size {packet_size} is not one of {PACKET_SIZES}")
        if not (0.0 <= false_reject_rate <= 1.0 and 0.0 <= false_accept_rate <= 1.0):
            raise ValueError("false reject and false accept rates are probabilities, 0..1")
        if min(image_time, search_time, store_time, empty_image_time or 0.0) < 0:
            raise ValueError("sensor processing times cannot be negative")
        self._lock = threading.Lock()  # guards the firmware, the counters and the history
        self._firmware = SensorFirmware(
            capacity=capacity, password=password, address=address,
            baud_multiplier=(baud or 57600) // BAUD_UNIT, packet_size=packet_size,
            timing=Timing(image=image_time, search=search_time, store=store_time,
                          empty_image=empty_image_time),
            matching=Matching(threshold=match_threshold, false_reject_rate=false_reject_rate,
                              false_accept_rate=false_accept_rate, seed=seed))
        self._placements: dict[str, int] = {}
        self._history: list[HistoryEntry] = []
        self._parser = PacketParser()  # only the port's reader thread touches it
        self._stale_rx = True  # set by power_cycle: the reader drops its partial packet
        self._last_rx = 0.0
        self._port = PtyPort(link, self._on_bytes, baud=baud, on_replug=self.power_cycle)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Create the pty and its link and start answering."""
        self._port.start()

    def stop(self) -> None:
        """Remove the link and stop the reader thread."""
        self._port.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def power_cycle(self) -> None:
        """Lose what RAM holds (verified password, image, buffers); keep flash and settings."""
        with self._lock:
            self._firmware.power_on()
            self._stale_rx = True

    @property
    def path(self) -> str:
        """The link a driver opens, as a string (pyfingerprint wants one)."""
        return self._port.path

    @property
    def port(self) -> PtyPort:
        """The simulated line, to unplug, replug or inject faults."""
        return self._port

    # --- the world: a person at the sensor ------------------------------------------------

    def place(self, finger: str, quality: str = "good") -> None:
        """Put ``finger`` on the glass; each placement is a new, reproducible impression.

        :param quality: "good", "messy" (Img2Tz answers 0x06) or "few_features" (0x07).
        :raises ValueError: unknown quality.
        """
        q = Quality(quality)
        with self._lock:
            self._firmware.on_glass = fingers.impression(finger, self._next(finger), quality=q)

    def lift(self) -> None:
        """Take the finger off the glass."""
        with self._lock:
            self._firmware.on_glass = None

    def lose(self, slot: int) -> None:
        """The flash forgets ``slot`` (a failing sensor, or someone deleting behind our back)."""
        with self._lock:
            self._firmware.library.pop(slot, None)

    def enrol(self, finger: str, slot: int) -> None:
        """Put a template of ``finger`` at ``slot`` without the wire, as if enrolled earlier.

        :raises ValueError: slot outside the library.
        """
        with self._lock:
            fw = self._firmware
            if not 0 <= slot < fw.capacity:
                raise ValueError(f"slot {slot} is outside 0..{fw.capacity - 1}")
            first, second = (fingers.characteristics(fingers.impression(finger, self._next(finger)))
                             for _ in range(2))
            template = fingers.combine(first, second, fw.matching.threshold)
            if template is None:
                raise ValueError(f"{finger!r} did not combine at threshold "
                                 f"{fw.matching.threshold}; lower the threshold")
            fw.library[slot] = template

    def _next(self, finger: str) -> int:
        """The placement number of ``finger``'s next impression. Call with the lock held."""
        number = self._placements.get(finger, 0)
        self._placements[finger] = number + 1
        return number

    @property
    def finger(self) -> str | None:
        """The finger on the glass, if any."""
        with self._lock:
            on_glass = self._firmware.on_glass
            return None if on_glass is None else on_glass.finger

    @property
    def template_count(self) -> int:
        """Occupied slots in the flash library."""
        with self._lock:
            return len(self._firmware.library)

    @property
    def library(self) -> Mapping[int, bytes]:
        """A read-only snapshot of the flash library: slot -> template bytes."""
        with self._lock:
            return MappingProxyType(dict(self._firmware.library))

    @property
    def history(self) -> list[HistoryEntry]:
        """A copy of every answer sent so far, oldest first."""
        with self._lock:
            return list(self._history)

    def history_since(self, index: int) -> list[HistoryEntry]:
        """The answers from ``index`` on (a long run's waits copy only what is new)."""
        with self._lock:
            return self._history[index:]

    def forget_history(self) -> int:
        """Drop the answers kept so far (a soak's memory); returns how many there were."""
        with self._lock:
            count = len(self._history)
            self._history.clear()
            return count

    @property
    def password(self) -> int:
        """The current password (SetPwd changes it)."""
        with self._lock:
            return self._firmware.password

    @property
    def address(self) -> int:
        """The current module address (SetAdder changes it)."""
        with self._lock:
            return self._firmware.address

    # --- the wire (the port's reader thread) ----------------------------------------------

    def _on_bytes(self, chunk: bytes) -> None:
        try:
            now = time.monotonic()
            with self._lock:
                stale, self._stale_rx = self._stale_rx, False
            if stale or now - self._last_rx > RX_IDLE_RESET:
                self._parser.reset()
            self._last_rx = now
            for item in self._parser.feed(chunk):
                self._serve(item)
        except Exception:  # a bug must not kill the reader thread: the line would go dead
            log.exception("simulated sensor on %s failed on %d bytes", self.path, len(chunk))

    def _serve(self, item: Packet | FrameError) -> None:
        if isinstance(item, FrameError):
            if item.fault is FrameFault.BAD_CHECKSUM and item.address == self.address:
                self._send(BAD_CHECKSUM, Answer(Confirmation.RECEIVE_ERROR))
            return
        if item.pid == Pid.COMMAND:
            self._port.wait_for_wire()  # a command has arrived only after its wire time
        with self._lock:
            answer = self._firmware.answer(item)
        if answer is not None:
            self._send(instruction_name(item.payload[0]), answer)

    def _send(self, name: str, answer: Answer) -> None:
        if answer.busy > 0:
            sleep_until(time.perf_counter() + answer.busy)
        with self._lock:
            fw = self._firmware
            address = fw.address if answer.address is None else answer.address
            size = fw.packet_size
        self._port.write(encode_packet(address, Pid.ACK, bytes((answer.code,)) + answer.data))
        if answer.transfer is not None:
            data = answer.transfer
            chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
            last = len(chunks) - 1
            # One write for all data packets: a fault such as corrupt_next hits one "answer".
            self._port.write(b"".join(
                encode_packet(address, Pid.END_DATA if i == last else Pid.DATA, chunk)
                for i, chunk in enumerate(chunks)))
        if answer.baud is not None and self._port.baud is not None:
            self._port.baud = answer.baud  # timing emulation on: the new rate takes effect
        with self._lock:
            self._history.append(HistoryEntry(time.monotonic(), name, answer.code))
