"""The installation's keyring, as the configuration names it."""

from __future__ import annotations

from accessd.config import Settings
from accessd.crypto import FileKeyProvider
from accessd.errors import KeyFileError


def open_key_provider(settings: Settings) -> FileKeyProvider:
    """The keyring file (or systemd credential, read-only) named by ``settings.keys``.

    :raises KeyFileError: missing, readable by others, or malformed; the message says the fix.
    """
    path = settings.keys.master_key_file
    if path is None:  # the loader always resolves it; kept for a hand-built Settings
        raise KeyFileError("no keyring configured: set keys.master_key_file")
    return FileKeyProvider(path, read_only=settings.keys.from_credential)
