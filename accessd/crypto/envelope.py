"""Envelope encryption: per-customer data keys wrapped by a master key, templates under them.

AES-256-GCM only. Every ciphertext's associated data names the row it belongs to, so a
ciphertext copied onto another row (another customer, person or finger) does not decrypt:

- data key:   ``accessd/data-key/v1 NUL || customer uuid (16 bytes) || master key id``
- template:   ``accessd/template/v1 NUL || customer uuid || person uuid || finger uuid``
- staff secret: ``accessd/staff-secret/v1 NUL || staff user uuid || master key id``

Plaintext templates exist only in memory, between the sensor and the database.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from accessd.crypto.keyring import KEY_BYTES, NONCE_BYTES, KeyProvider
from accessd.errors import CryptoError, DecryptionError


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """A data key as stored: which master key wrapped it, and the provider's blob."""

    master_key_id: str
    wrapped: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class EncryptedTemplate:
    """A template as stored in ``Finger.template_nonce`` / ``Finger.template_ciphertext``."""

    nonce: bytes
    ciphertext: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A staff secret (TOTP seed) as stored: master key id and the provider's blob."""

    key_id: str
    ciphertext: bytes = field(repr=False)


def generate_data_key() -> bytes:
    """A new random AES-256 data key (for a new customer)."""
    return AESGCM.generate_key(bit_length=256)


def _data_key_aad(customer_id: uuid.UUID, master_key_id: str) -> bytes:
    return b"accessd/data-key/v1\x00" + customer_id.bytes + master_key_id.encode("ascii")


def wrap_data_key(
    provider: KeyProvider,
    data_key: bytes,
    *,
    customer_id: uuid.UUID,
    master_key_id: str | None = None,
) -> WrappedDataKey:
    """Wrap a customer's data key under the active master key (or ``master_key_id``)."""
    _check_key(data_key)
    key_id = master_key_id or provider.active_key_id
    blob = provider.encrypt(key_id, data_key, _data_key_aad(customer_id, key_id))
    return WrappedDataKey(key_id, blob)


def unwrap_data_key(
    provider: KeyProvider, wrapped: WrappedDataKey, *, customer_id: uuid.UUID
) -> bytes:
    """The plaintext data key of ``customer_id``.

    :raises DecryptionError: the wrapped key belongs to another customer or was altered.
    :raises KeyFileError: its master key is not in the keyring.
    """
    aad = _data_key_aad(customer_id, wrapped.master_key_id)
    try:
        data_key = provider.decrypt(wrapped.master_key_id, wrapped.wrapped, aad)
    except DecryptionError:
        raise DecryptionError(
            f"data key of customer {customer_id} does not unwrap under master key "
            f"{wrapped.master_key_id}: the row was altered or belongs to another customer"
        ) from None
    _check_key(data_key)
    return data_key


def _template_aad(customer_id: uuid.UUID, person_id: uuid.UUID, finger_id: uuid.UUID) -> bytes:
    return b"accessd/template/v1\x00" + customer_id.bytes + person_id.bytes + finger_id.bytes


def encrypt_template(
    data_key: bytes,
    plaintext: bytes,
    *,
    customer_id: uuid.UUID,
    person_id: uuid.UUID,
    finger_id: uuid.UUID,
) -> EncryptedTemplate:
    """Encrypt a sensor template for the finger row with these public ids."""
    _check_key(data_key)
    nonce = secrets.token_bytes(NONCE_BYTES)
    aad = _template_aad(customer_id, person_id, finger_id)
    return EncryptedTemplate(nonce, AESGCM(data_key).encrypt(nonce, plaintext, aad))


def decrypt_template(
    data_key: bytes,
    encrypted: EncryptedTemplate,
    *,
    customer_id: uuid.UUID,
    person_id: uuid.UUID,
    finger_id: uuid.UUID,
) -> bytes:
    """The plaintext template of this finger row.

    :raises DecryptionError: the ciphertext was altered, copied from another row, or made
        under another data key.
    """
    _check_key(data_key)
    aad = _template_aad(customer_id, person_id, finger_id)
    try:
        return AESGCM(data_key).decrypt(encrypted.nonce, encrypted.ciphertext, aad)
    except (InvalidTag, ValueError):
        raise DecryptionError(
            f"template of finger {finger_id} does not decrypt: it was altered, copied from "
            "another finger's row, or made under another data key; re-enrol the finger"
        ) from None


def _staff_secret_aad(user_id: uuid.UUID, key_id: str) -> bytes:
    return b"accessd/staff-secret/v1\x00" + user_id.bytes + key_id.encode("ascii")


def seal_staff_secret(
    provider: KeyProvider, secret: bytes, *, user_id: uuid.UUID, key_id: str | None = None
) -> SealedSecret:
    """Encrypt a staff member's TOTP seed under the active master key (or ``key_id``)."""
    key_id = key_id or provider.active_key_id
    aad = _staff_secret_aad(user_id, key_id)
    return SealedSecret(key_id, provider.encrypt(key_id, secret, aad))


def open_staff_secret(provider: KeyProvider, sealed: SealedSecret, *, user_id: uuid.UUID) -> bytes:
    """The TOTP seed of ``user_id``.

    :raises DecryptionError: the row was altered or belongs to another staff member.
    """
    try:
        return provider.decrypt(
            sealed.key_id, sealed.ciphertext, _staff_secret_aad(user_id, sealed.key_id)
        )
    except DecryptionError:
        raise DecryptionError(
            f"second-factor secret of staff user {user_id} does not decrypt: the row was "
            "altered or copied; set up the second factor again"
        ) from None


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise CryptoError(f"a data key must be {KEY_BYTES} bytes, got {len(key)}")
