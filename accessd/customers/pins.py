"""PINs typed on the door's keypad: the way in that costs nothing to people who refuse biometrics.

A keypad entry is ``<person code>*<PIN>#``. The person code says whose PIN to check, so each PIN
is hashed with its own salt (argon2id) and a wrong one counts against that person only. The
cost follows OWASP's floor for argon2id (19 MiB, t=2, p=1): heavier settings would take seconds
on a Pi Zero 2 W at the door, and the per-person lockout, not the hash, is what stops guessing
at the keypad.
"""

from __future__ import annotations

import itertools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from accessd.errors import PinError

MIN_PIN_DIGITS = 6
MAX_PIN_DIGITS = 12

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)




def validate_pin(pin: str) -> None:
    """:raises PinError: with what is wrong and what a good PIN looks like."""
    if not pin.isdigit() or not pin.isascii():
        raise PinError("a PIN is digits only (the keypad has 0-9, * and #)")
    if not MIN_PIN_DIGITS <= len(pin) <= MAX_PIN_DIGITS:
        raise PinError(f"a PIN has {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if len(set(pin)) == 1 or steps in ({1}, {9}):
        raise PinError("that PIN is among the first anyone would try; choose another, or let "
                       "accessd generate one")


def generate_pin(digits: int = MIN_PIN_DIGITS) -> str:
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(digits))
        try:
            validate_pin(pin)
        except PinError:
            continue
        return pin


def hash_pin(pin: str) -> str:
    validate_pin(pin)
    return _hasher.hash(pin)


def verify_pin(pin_hash: str, pin: str) -> bool:
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False
