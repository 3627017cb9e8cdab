"""The fingerprint sensor as ``accessd`` sees it: a handful of verbs, no serial port.

A ``Sensor`` stores templates in its own flash (its "library", slots ``0 .. capacity-1``)
and matches on-chip. It has two character buffers (1 and 2) that hold the characteristics
of a capture or a template while it moves between the sensor and the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

CHAR_BUFFER_1 = 1
CHAR_BUFFER_2 = 2


@dataclass(frozen=True, slots=True)
class SearchResult:
    """An on-chip search's answer: the matching slot and its score, or no match."""

    slot: int | None
    score: int

    @property
    def matched(self) -> bool:
        return self.slot is not None


NO_MATCH = SearchResult(slot=None, score=0)


@runtime_checkable
class Sensor(Protocol):
    """What every fingerprint sensor driver must offer.

    Implementations must raise only ``firmware_bridge.errors.SensorError`` subclasses and must
    never block longer than their configured deadline per command (``wait_for_finger`` excepted,
    which blocks up to its own ``timeout``). One thread owns a sensor at a time.
    """

    port: str
    password: int  # the 32-bit password the next ``open`` verifies

    def open(self) -> None:
        """Open the port and verify ``password``.

        :raises SensorBadPasswordError: the sensor refused the password.
        :raises SensorDisconnectedError: the port does not exist or cannot be opened.
        :raises SensorTimeoutError: nothing answered.
        """

    def close(self) -> None:
        """Release the port. Safe to call twice and after a failure."""

    def identity(self) -> str:
        """What the open sensor says about itself and does not change by use (the ZFM's system
        parameters but its status register), to tell one sensor from another at start."""

    def capacity(self) -> int:
        """Number of slots in the library (read from the sensor, never assumed)."""

    def template_count(self) -> int:
        """Number of occupied slots."""

    def occupied_slots(self) -> set[int]:
        """The occupied slots, from the sensor's index table."""

    def free_slot(self) -> int:
        """The lowest free slot.

        :raises LibraryFullError: every slot is taken.
        """

    def finger_present(self) -> bool:
        """Take one image; true when a finger was on the sensor (the image stays in its buffer)."""

    def wait_for_finger(self, timeout: float) -> None:
        """Poll until a finger is imaged.

        :raises NoFingerError: no finger within ``timeout`` seconds.
        """

    def wait_for_lift(self, timeout: float) -> None:
        """Poll until no finger is on the sensor.

        :raises NoFingerError: the finger stayed on for ``timeout`` seconds.
        """

    def capture(self, buffer: int = CHAR_BUFFER_1) -> None:
        """Turn the last image into characteristics in ``buffer``.

        :raises PoorImageError: the image is too messy or has too few features.
        """

    def search(self) -> SearchResult:
        """Search character buffer 1 over the whole library, on the chip."""

    def compare(self) -> int:
        """Score of buffer 1 against buffer 2 (0 when they do not match)."""

    def create_template(self) -> None:
        """Combine buffers 1 and 2 into one template (in both buffers).

        :raises EnrollMismatchError: the two captures are not of the same finger.
        """

    def store(self, slot: int, buffer: int = CHAR_BUFFER_1) -> None:
        """Store ``buffer`` at ``slot``.

        :raises BadSlotError: slot outside the library.
        """

    def load(self, slot: int, buffer: int = CHAR_BUFFER_1) -> None:
        """Load the template at ``slot`` into ``buffer``."""

    def download_characteristics(self, buffer: int = CHAR_BUFFER_1) -> bytes:
        """Read ``buffer``'s characteristics from the sensor to the host."""

    def upload_characteristics(self, data: bytes, buffer: int = CHAR_BUFFER_1) -> None:
        """Write characteristics from the host into ``buffer``."""

    def upload_template(self, slot: int, data: bytes) -> None:
        """Write a template from the host into the library at ``slot``."""

    def send_characteristics(self, data: bytes, buffer: int = CHAR_BUFFER_2) -> None:
        """Write characteristics into ``buffer`` with the protocol's minimum (DownChar and
        its data packets, no read-back), for a 1:1 ``compare`` against a capture."""

    def delete(self, slot: int, count: int = 1) -> None:
        """Delete ``count`` slots starting at ``slot``."""

    def wipe(self) -> None:
        """Delete every template in the library."""

    def set_password(self, password: int) -> None:
        """Set the sensor's 32-bit password; later opens must use it."""
