"""The errors the hardware boundary raises, and nothing else.

One root, split by phase, as python-can does it. Every message says what happened and what a
person can do about it. Other libraries' exceptions (pyserial's, pyfingerprint's bare
``Exception``) are wrapped with ``raise ... from`` so that ``accessd`` never sees them.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of every error raised by ``firmware_bridge``."""


class BridgeInitError(BridgeError):
    """A device could not be opened or did not identify itself correctly."""


class BridgeOperationError(BridgeError):
    """A device answered, but the operation failed."""


class BridgeTimeoutError(BridgeError, TimeoutError):
    """A device did not answer within its deadline."""


class DeviceDisconnectedError(BridgeError):
    """The serial port disappeared or failed (cable pulled, USB adapter gone)."""


class ProtocolError(BridgeOperationError):
    """Bytes arrived that do not form a valid packet (bad header, checksum, length or type)."""


# --- sensor -------------------------------------------------------------------------------


class SensorError(BridgeError):
    """Root of the fingerprint sensor's errors."""


class SensorInitError(SensorError, BridgeInitError):
    """The sensor could not be opened."""


class SensorBadPasswordError(SensorInitError):
    """The sensor refused the configured password."""


class SensorSwappedError(SensorInitError):
    """The sensor is not the one this door provisioned; it is not used until staff approve it."""


class SensorOperationError(SensorError, BridgeOperationError):
    """The sensor answered with an error code.

    :ivar code: the sensor's confirmation code, or ``None`` where none was received.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SensorProtocolError(SensorOperationError, ProtocolError):
    """The sensor sent bytes that are not a valid packet."""


class SensorTimeoutError(SensorError, BridgeTimeoutError):
    """The sensor did not answer within the driver's deadline."""


class SensorDisconnectedError(SensorError, DeviceDisconnectedError):
    """The sensor's serial port disappeared or failed."""


class NoFingerError(SensorError, BridgeTimeoutError):
    """No finger was placed on the sensor before the timeout."""


class PoorImageError(SensorOperationError):
    """The image could not be turned into characteristics (too messy, too few features)."""


class EnrollMismatchError(SensorOperationError):
    """The captures given to build a template are not of the same finger."""


class LibraryFullError(SensorOperationError):
    """Every slot of the sensor's template library is taken."""


class BadSlotError(SensorOperationError):
    """The slot number is outside the sensor's library."""


# --- door board ---------------------------------------------------------------------------


class DoorError(BridgeError):
    """Root of the door board's errors. Any of them leaves the lock locked."""


class DoorInitError(DoorError, BridgeInitError):
    """The door board could not be opened or spoke an unsupported protocol version."""


class DoorOperationError(DoorError, BridgeOperationError):
    """The door board refused a command."""


class DoorProtocolError(DoorOperationError, ProtocolError):
    """The door board sent bytes that are not a valid frame."""


class DoorTimeoutError(DoorError, BridgeTimeoutError):
    """The door board did not acknowledge a command after every retry."""


class DoorDisconnectedError(DoorError, DeviceDisconnectedError):
    """The door board's serial port disappeared or failed."""


class DoorWireError(DoorError):
    """The door board's wire did not authenticate: an unauthenticated, forged, replayed or
    downgraded frame, or a board holding another key. Never a reason to fall back: an alarm."""


class DoorNotProvisionedError(DoorWireError):
    """The door board, or this installation's keyring, holds no key for the wire yet."""
