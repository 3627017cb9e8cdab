"""The second factor: TOTP secrets sealed at rest, codes accepted once, and re-keying.

pyotp's ``verify`` accepts the same code twice within its window; here the time step of
every accepted code is stored (``StaffUser.totp_last_step``) and a code for that step or an
earlier one is refused (ASVS 5.0 6.5.1).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hmac
import json
import uuid

import pyotp

from accessd.crypto import KeyProvider, SealedSecret, open_staff_secret, seal_staff_secret
from accessd.errors import CryptoError, TotpSetupError
from accessd.labels import N_
from accessd.models import StaffUser
from accessd.staff.policy import (
    TOTP_DIGITS,
    TOTP_INTERVAL_SECONDS,
    TOTP_ISSUER,
    TOTP_SETUP_LIFETIME,
    TOTP_VALID_WINDOW,
)

# A pending (unconfirmed) secret travels in the setup form, sealed under a key-derivation
# of the user's id that differs from the stored secret's: one cannot stand in for the other.
_PENDING_NAMESPACE = uuid.UUID("6f0d8c57-3b59-4c39-9b0c-6c1f52c7b1a4")


class TotpCheck(enum.Enum):
    """How a submitted code fared."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    REPLAYED = "replayed"  # right code, but its time step was already used


def new_totp_secret() -> str:
    """A fresh base32 secret (160 bits), as authenticator apps expect."""
    return pyotp.random_base32()


def provisioning_uri(username: str, secret: str, issuer: str = TOTP_ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app reads from a QR code."""
    return _totp(secret).provisioning_uri(name=username, issuer_name=issuer)


def store_totp_secret(
    user: StaffUser, secret: str, provider: KeyProvider, *, accepted_step: int | None = None
) -> None:
    """Seal ``secret`` under the active master key on ``user``'s row (caller commits).

    ``accepted_step`` is the step of the code that confirmed it, so that code cannot be used
    again to sign in.
    """
    sealed = seal_staff_secret(provider, secret.encode("ascii"), user_id=user.public_id)
    user.totp_secret_ciphertext = sealed.ciphertext
    user.totp_key_id = sealed.key_id
    user.totp_last_step = accepted_step


def has_totp(user: StaffUser) -> bool:
    """Whether ``user`` has a second factor set up."""
    return user.totp_secret_ciphertext is not None and user.totp_key_id is not None


def _secret_of(user: StaffUser, provider: KeyProvider) -> str | None:
    if user.totp_secret_ciphertext is None or user.totp_key_id is None:
        return None
    sealed = SealedSecret(user.totp_key_id, user.totp_secret_ciphertext)
    return open_staff_secret(provider, sealed, user_id=user.public_id).decode("ascii")


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL_SECONDS)


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step within the window whose code is ``code``, or ``None``."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):  # not "²"
        return None
    totp = _totp(secret)
    current = totp.timecode(now)
    found = None
    # Every step is compared (no early exit), so timing does not tell which one matched.
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def check_totp(user: StaffUser, code: str, provider: KeyProvider, now: dt.datetime) -> TotpCheck:
    """Check ``code`` for ``user`` and, when accepted, remember its step (caller commits).

    :raises DecryptionError: the stored secret does not decrypt (row altered or copied).
    """
    secret = _secret_of(user, provider)
    if secret is None:
        return TotpCheck.WRONG
    step = matching_step(secret, code, now)
    if step is None:
        return TotpCheck.WRONG
    if user.totp_last_step is not None and step <= user.totp_last_step:
        return TotpCheck.REPLAYED
    user.totp_last_step = step
    return TotpCheck.ACCEPTED


def _pending_user_id(user: StaffUser) -> uuid.UUID:
    return uuid.uuid5(_PENDING_NAMESPACE, str(user.public_id))


def seal_pending_secret(
    user: StaffUser, secret: str, provider: KeyProvider, now: dt.datetime
) -> str:
    """An opaque token carrying a not-yet-confirmed ``secret`` for ``user`` (a form field).

    Nothing is stored until the user proves with a code that the app has it.
    """
    payload = json.dumps({"secret": secret, "issued": int(now.timestamp())}).encode()
    sealed = seal_staff_secret(provider, payload, user_id=_pending_user_id(user))
    blob = json.dumps({"k": sealed.key_id, "c": base64.b64encode(sealed.ciphertext).decode()})
    return base64.urlsafe_b64encode(blob.encode()).decode()


def open_pending_secret(
    user: StaffUser, token: str, provider: KeyProvider, now: dt.datetime
) -> str:
    """The secret inside a token from ``seal_pending_secret``.

    :raises TotpSetupError: altered, made for someone else, or older than the setup lifetime.
    """
    expired = TotpSetupError(
        N_("this setup page has expired or was altered; open it again and scan the new QR code")
    )
    try:
        blob = json.loads(base64.urlsafe_b64decode(token.encode()))
        sealed = SealedSecret(str(blob["k"]), base64.b64decode(blob["c"]))
        payload = json.loads(open_staff_secret(provider, sealed, user_id=_pending_user_id(user)))
        issued = dt.datetime.fromtimestamp(int(payload["issued"]), dt.UTC)
        secret = str(payload["secret"])
    except (ValueError, KeyError, TypeError, binascii.Error, CryptoError):
        raise expired from None
    if not dt.timedelta(0) <= now - issued <= TOTP_SETUP_LIFETIME:
        raise expired
    return secret


def confirm_new_totp(
    user: StaffUser, token: str, code: str, provider: KeyProvider, now: dt.datetime
) -> None:
    """Replace ``user``'s second factor by the pending one, once ``code`` proves the app has it.

    :raises TotpSetupError: the code is wrong, or the token expired or was altered.
    """
    secret = open_pending_secret(user, token, provider, now)
    step = matching_step(secret, code, now)
    if step is None:
        raise TotpSetupError(N_(
            "that code does not match the new QR code; check the phone's clock and enter the "
            "code the app shows now"
        ))
    store_totp_secret(user, secret, provider, accepted_step=step)
