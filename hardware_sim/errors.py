"""What the simulator refuses, one root for the whole package."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of the errors the simulated devices and their control socket raise on purpose."""


class ControlError(SimulatorError):
    """A control request that cannot be carried out; its message goes back to the caller."""


class DoorLockedError(SimulatorError, RuntimeError):
    """The simulated door is locked: a person cannot push it open."""
