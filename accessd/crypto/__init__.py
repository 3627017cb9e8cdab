"""Keys and encryption: AES-256-GCM only, master keys behind a ``KeyProvider``.

- ``keyring``: the key file (format, 0600 check, atomic writes) and ``FileKeyProvider``;
- ``envelope``: per-customer data keys, templates, staff secrets, each bound to its row;
- ``rotation``: ``rotate_master_key`` (rewraps data keys; templates untouched). It needs the
  models, so it is imported on first use: encrypting alone does not load SQLAlchemy.

Note on backups: a backup's file key, and the data keys in its customer sections, are wrapped
by the master key of its day. Once a rotation retires that key, the backup cannot be opened any
more: rotate, then take a fresh backup. The backup key file is resealed under the new master key
before the old one is retired (``rotate_master_key(before_retire=...)``).
"""

from typing import TYPE_CHECKING, Any

from accessd.crypto.envelope import (
    EncryptedTemplate,
    SealedSecret,
    WrappedDataKey,
    decrypt_template,
    encrypt_template,
    generate_data_key,
    open_staff_secret,
    seal_staff_secret,
    unwrap_data_key,
    wrap_data_key,
)
from accessd.crypto.keyring import (
    FileKeyProvider,
    KeyProvider,
    Keyring,
    RotatableKeyProvider,
    parse_keyring,
    read_keyring_file,
)
from accessd.errors import CryptoError, DecryptionError, KeyFileError

if TYPE_CHECKING:
    from accessd.crypto.rotation import RotationResult, rotate_master_key

_LAZY = {"RotationResult", "rotate_master_key"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from accessd.crypto import rotation

        return getattr(rotation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CryptoError",
    "DecryptionError",
    "EncryptedTemplate",
    "FileKeyProvider",
    "KeyFileError",
    "KeyProvider",
    "Keyring",
    "RotatableKeyProvider",
    "RotationResult",
    "SealedSecret",
    "WrappedDataKey",
    "decrypt_template",
    "encrypt_template",
    "generate_data_key",
    "open_staff_secret",
    "parse_keyring",
    "read_keyring_file",
    "rotate_master_key",
    "seal_staff_secret",
    "unwrap_data_key",
    "wrap_data_key",
]
