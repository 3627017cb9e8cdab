"""The key that signs the panel's cookie: read from a 0600 file, never a built-in default.

A guessable key lets anyone forge a session cookie's content (the CSRF secret, flashed
messages, the session token's envelope), so the panel refuses to start without a real one.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accessd.errors import ConfigError

MIN_SECRET_BYTES = 32
# Values seen in tutorials and templates; a key equal to one of these is no secret.
_PLACEHOLDERS = frozenset({"dev", "change-me", "changeme", "secret", "development", "test"})


def create_secret_key_file(path: Path) -> None:
    """Write a new random key to ``path`` (mode 0600); for ``accessd init``.

    :raises ConfigError: the file exists already (replacing it signs everyone out).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"web secret key file {path} exists already; keep it") from None
    try:
        os.write(fd, secrets.token_hex(MIN_SECRET_BYTES).encode("ascii") + b"\n")
    finally:
        os.close(fd)


def _how_to_create(path: Path) -> str:
    return (
        f"create it with `accessd init`, or with `python3 -c 'import secrets; "
        f"print(secrets.token_hex(32))' > {path} && chmod 600 {path}`"
    )


def read_secret_key_file(path: Path) -> bytes:
    """The key in ``path``: the file must exist, be 0600 or stricter, and hold 32+ bytes.

    :raises ConfigError: saying what is wrong and how to fix it.
    """
    try:
        info = path.stat()
        key = path.read_bytes().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"web secret key file {path} not found; {_how_to_create(path)}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read web secret key file {path}: {exc.strerror}") from exc
    if info.st_mode & 0o077:
        raise ConfigError(
            f"web secret key file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
        )
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"web secret key file {path} holds {len(key)} bytes, fewer than "
            f"{MIN_SECRET_BYTES}; {_how_to_create(path)}"
        )
    return key


def choose_secret_key(config: Mapping[str, Any], key_file: Path | None) -> str | bytes:
    """The key for ``SECRET_KEY``: the one given, else the key file, else (tests only) random.

    :raises ConfigError: no real key outside ``TESTING``.
    """
    given = config.get("SECRET_KEY")
    testing = bool(config.get("TESTING"))
    if given:
        text = given.decode("utf-8", "replace") if isinstance(given, bytes) else str(given)
        if not testing and (len(text) < MIN_SECRET_BYTES or text.lower() in _PLACEHOLDERS):
            raise ConfigError(
                f"SECRET_KEY must be at least {MIN_SECRET_BYTES} random characters; leave it "
                "unset to use web.secret_key_file"
            )
        return given
    if key_file is not None and (not testing or key_file.exists()):
        return read_secret_key_file(key_file)
    if testing:
        return secrets.token_bytes(MIN_SECRET_BYTES)
    raise ConfigError("the panel needs a secret key: set web.secret_key_file in the config")
