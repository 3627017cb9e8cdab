"""The errors ``accessd`` raises on purpose, one root split by phase.

Callers (the CLI, the daemon, the panel) catch ``AccessdError`` to print one clear line and
exit non-zero; anything else escaping is a bug. Every message says what happened and what a
person can do about it. Other libraries' exceptions are wrapped with ``raise ... from``.
"""

from __future__ import annotations


class AccessdError(Exception):
    """Root of every error ``accessd`` raises on purpose."""


class ConfigError(AccessdError):
    """The configuration is missing, unreadable or invalid; the message lists every problem.

    :ivar problems: one line per problem, each naming the key (or path) concerned.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class StorageError(AccessdError):
    """The database cannot be used as it is (unreachable, corrupt, schema not migrated)."""


class CryptoError(AccessdError):
    """Root of the key and encryption errors."""


class KeyFileError(CryptoError):
    """The keyring is missing, has unsafe permissions, is malformed, or lacks a needed key."""


class DecryptionError(CryptoError):
    """A ciphertext did not authenticate: altered, moved to another row, or its key is gone."""
