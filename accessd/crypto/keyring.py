"""The installation's secrets outside the database, behind the ``KeyProvider`` protocol.

The keyring file (format 1) is UTF-8 JSON, mode 0600, and nothing else is accepted::

    {
      "format": "accessd-keyring",
      "version": 1,
      "active_master_key": "mk-20250101-1a2b3c4d",
      "master_keys": [
        {"id": "mk-20250101-1a2b3c4d", "key": "<base64 of 32 random bytes>",
         "created_at": "2025-01-01T12:00:00+00:00"}
      ],
      "sensor_password": 2864434397,
      "signing_key": "<base64 of the 32-byte Ed25519 private key>",
      "door_link_key": "<base64 of 32 random bytes>"
    }

- master keys (AES-256) wrap the per-customer data keys and the staff TOTP secrets; there is
  more than one only while a rotation runs;
- ``sensor_password`` is the fingerprint sensor's 32-bit password (never the factory 0);
- ``signing_key`` signs purge certificates and the erasure ledger's seals (Ed25519);
- ``door_link_key`` authenticates the wire to the door board (HMAC-SHA256); it is absent until
  ``accessd door provision`` wrote it into the board, the only other place it lives.

A format is never guessed: any deviation is refused, with what to do. Loss of this file is
loss of every template (staff re-enrol people); keep an offline copy.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from accessd.errors import DecryptionError, KeyFileError

FORMAT_NAME = "accessd-keyring"
FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FIELDS = {
    "format",
    "version",
    "active_master_key",
    "master_keys",
    "sensor_password",
    "signing_key",
}
_OPTIONAL_FIELDS = {"door_link_key"}
_KEY_FIELDS = {"id", "key", "created_at"}


@runtime_checkable
class KeyProvider(Protocol):
    """Where master keys live and how they are used; the keys themselves never leave it.

    ``encrypt``/``decrypt`` are AES-256-GCM with the given associated data; the blob format
    is the provider's own (the file provider: nonce || ciphertext || tag). An implementation
    for a TPM or an HSM offers the same verbs.
    """

    @property
    def active_key_id(self) -> str:
        """The master key new wrappings use."""
        ...

    def key_ids(self) -> tuple[str, ...]:
        """Every master key this provider can decrypt with."""
        ...

    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt under master key ``key_id``; raises ``KeyFileError`` for an unknown id."""
        ...

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        """Decrypt; raises ``DecryptionError`` if it does not authenticate."""
        ...

    def sensor_password(self) -> int:
        """The fingerprint sensor's 32-bit password."""
        ...

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature by the installation's signing key."""
        ...

    def signing_public_key(self) -> bytes:
        """The installation's Ed25519 public key, raw (32 bytes)."""
        ...

    def door_link_key(self) -> bytes | None:
        """The door board wire's key (32 bytes), or None before ``accessd door provision``."""
        ...


@runtime_checkable
class RotatableKeyProvider(KeyProvider, Protocol):
    """A provider whose master keys can be added and retired (``accessd keys rotate``)."""

    def add_master_key(self) -> str:
        """Create a new master key, make it the active one, and return its id."""
        ...

    def retire_master_key(self, key_id: str) -> None:
        """Destroy a master key that is no longer active (and no longer used)."""
        ...


@dataclass(frozen=True, slots=True)
class MasterKey:
    """One master key; its bytes never appear in ``repr``."""

    id: str
    key: bytes = field(repr=False)
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Keyring:
    """The parsed contents of a keyring file."""

    active_master_key: str
    master_keys: tuple[MasterKey, ...]
    sensor_password: int = field(repr=False)
    signing_key: bytes = field(repr=False)
    door_link_key: bytes | None = field(default=None, repr=False)

    def master_key(self, key_id: str) -> MasterKey | None:
        """The master key with this id, if present."""
        return next((k for k in self.master_keys if k.id == key_id), None)


def new_keyring(now: dt.datetime | None = None) -> Keyring:
    """A fresh keyring: one master key, a random sensor password, a new signing key."""
    first = _new_master_key(now)
    password = 0
    while password in (0, 0xFFFFFFFF):  # 0 is the factory default; all-ones looks like a wipe
        password = secrets.randbits(32)
    return Keyring(first.id, (first,), password, secrets.token_bytes(KEY_BYTES))


def _new_master_key(now: dt.datetime | None = None) -> MasterKey:
    now = now or dt.datetime.now(dt.UTC)
    key_id = f"mk-{now:%Y%m%d}-{secrets.token_hex(4)}"
    return MasterKey(key_id, AESGCM.generate_key(bit_length=256), now.replace(microsecond=0))


def parse_keyring(text: str, where: str) -> Keyring:
    """Parse keyring file text, refusing anything but format 1 exactly.

    :raises KeyFileError: the text is not a valid keyring; the message says what is wrong.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _malformed(where, f"not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise _malformed(where, "not a JSON object")
    if data.get("format") != FORMAT_NAME or data.get("version") != FORMAT_VERSION:
        raise _malformed(where, f"expected format {FORMAT_NAME!r} version {FORMAT_VERSION}")
    if not _FIELDS <= set(data) <= _FIELDS | _OPTIONAL_FIELDS:
        raise _malformed(where, f"expected exactly the fields {sorted(_FIELDS)}, and "
                                f"optionally {sorted(_OPTIONAL_FIELDS)}")
    keys = data["master_keys"]
    if not isinstance(keys, list) or not keys:
        raise _malformed(where, "master_keys must be a non-empty list")
    master_keys = tuple(_parse_master_key(item, where) for item in keys)
    ids = [k.id for k in master_keys]
    if len(set(ids)) != len(ids):
        raise _malformed(where, "two master keys share an id")
    if data["active_master_key"] not in ids:
        raise _malformed(where, "active_master_key names no key in master_keys")
    password = data["sensor_password"]
    if type(password) is not int or not 0 <= password <= 0xFFFFFFFF:
        raise _malformed(where, "sensor_password must be an integer between 0 and 4294967295")
    signing_key = _b64(data["signing_key"], "signing_key", where)
    door_link_key = None
    if "door_link_key" in data:
        door_link_key = _b64(data["door_link_key"], "door_link_key", where)
        if len(set(door_link_key)) < 2:
            raise _malformed(where, "door_link_key is not a random key")
    return Keyring(data["active_master_key"], master_keys, password, signing_key, door_link_key)


def _parse_master_key(item: Any, where: str) -> MasterKey:
    if not isinstance(item, dict) or set(item) != _KEY_FIELDS:
        raise _malformed(where, f"each master key must have exactly {sorted(_KEY_FIELDS)}")
    key_id = item["id"]
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise _malformed(where, f"master key id {key_id!r} is not a valid id")
    key = _b64(item["key"], f"key of {key_id}", where)
    try:
        created_at = dt.datetime.fromisoformat(item["created_at"])
    except (TypeError, ValueError) as exc:
        raise _malformed(where, f"created_at of {key_id} is not an ISO 8601 time") from exc
    return MasterKey(key_id, key, created_at)


def _b64(value: Any, name: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise _malformed(where, f"{name} must be base64 of exactly {KEY_BYTES} bytes")
    return raw


def _malformed(where: str, detail: str) -> KeyFileError:
    return KeyFileError(
        f"key file {where} is not a valid accessd keyring: {detail}. It is never edited by "
        "hand: restore it from your key backup"
    )


def render_keyring(keyring: Keyring) -> str:
    """The file text for ``keyring`` (format 1)."""
    data = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "active_master_key": keyring.active_master_key,
        "master_keys": [
            {
                "id": k.id,
                "key": base64.b64encode(k.key).decode("ascii"),
                "created_at": k.created_at.isoformat(),
            }
            for k in keyring.master_keys
        ],
        "sensor_password": keyring.sensor_password,
        "signing_key": base64.b64encode(keyring.signing_key).decode("ascii"),
    }
    if keyring.door_link_key is not None:
        data["door_link_key"] = base64.b64encode(keyring.door_link_key).decode("ascii")
    return json.dumps(data, indent=2) + "\n"


def read_keyring_file(path: Path) -> Keyring:
    """Read and check a keyring file: it must exist, be a regular file, and be mode 0600 or
    stricter (no access for group or others).

    :raises KeyFileError: missing, unsafe permissions or malformed, saying how to fix it.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(
            f"key file {path} not found; run `accessd init` to create one, or restore it "
            "from your key backup"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise KeyFileError(
            f"key file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    return parse_keyring(text, str(path))


def write_keyring_file(path: Path, keyring: Keyring, *, exclusive: bool = False) -> None:
    """Write ``keyring`` to ``path`` atomically (temporary file, fsync, rename), mode 0600.

    :raises KeyFileError: ``exclusive`` and the file exists, or the write failed.
    """
    if exclusive and path.exists():
        raise KeyFileError(
            f"key file {path} already exists; refusing to overwrite it (it protects every "
            "template). Move it away first if you really mean to start over"
        )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, render_keyring(keyring).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror}") from exc


class FileKeyProvider:
    """The ``KeyProvider`` for a keyring file (or a systemd credential, ``read_only``).

    A daemon that meets a master key id it does not know re-reads the file once, so a
    rotation done by ``accessd keys rotate`` in another process is picked up without restart.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._keyring = read_keyring_file(path)

    @classmethod
    def create(cls, path: Path) -> FileKeyProvider:
        """Create a new keyring file at ``path`` (refused if one exists) and open it."""
        write_keyring_file(path, new_keyring(), exclusive=True)
        return cls(path)

    def __repr__(self) -> str:
        return f"<FileKeyProvider {self.path} keys={list(self.key_ids())}>"

    @property
    def active_key_id(self) -> str:
        return self._keyring.active_master_key

    def key_ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self._keyring.master_keys)

    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self._key(key_id)).encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        key = self._key(key_id)
        try:
            return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):  # ValueError: a blob too short to hold a nonce
            raise DecryptionError(f"ciphertext does not authenticate under {key_id}") from None

    def sensor_password(self) -> int:
        return self._keyring.sensor_password

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self._keyring.signing_key).sign(message)

    def signing_public_key(self) -> bytes:
        private = Ed25519PrivateKey.from_private_bytes(self._keyring.signing_key)
        return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def door_link_key(self) -> bytes | None:
        return self._keyring.door_link_key

    def set_door_link_key(self, key: bytes | None) -> None:
        """Store (or, with None, remove) the door wire's key: ``accessd door provision``."""
        self._refuse_if_read_only("store the door board's key")
        self._keyring = read_keyring_file(self.path)  # never overwrite another writer's change
        updated = replace(self._keyring, door_link_key=key)
        write_keyring_file(self.path, updated)
        self._keyring = updated

    def add_master_key(self) -> str:
        self._refuse_if_read_only("add a master key")
        self._keyring = read_keyring_file(self.path)  # never overwrite another writer's change
        new = _new_master_key()
        updated = replace(
            self._keyring,
            active_master_key=new.id,
            master_keys=(*self._keyring.master_keys, new),
        )
        write_keyring_file(self.path, updated)
        self._keyring = updated
        return new.id

    def retire_master_key(self, key_id: str) -> None:
        self._refuse_if_read_only("retire a master key")
        self._keyring = read_keyring_file(self.path)
        if key_id == self._keyring.active_master_key:
            raise KeyFileError(f"master key {key_id} is the active one and cannot be retired")
        if self._keyring.master_key(key_id) is None:
            return  # already gone: retiring is idempotent, a resumed rotation may repeat it
        kept = tuple(k for k in self._keyring.master_keys if k.id != key_id)
        updated = replace(self._keyring, master_keys=kept)
        write_keyring_file(self.path, updated)
        self._keyring = updated

    def _key(self, key_id: str) -> bytes:
        found = self._keyring.master_key(key_id)
        if found is None:
            self._keyring = read_keyring_file(self.path)
            found = self._keyring.master_key(key_id)
        if found is None:
            raise KeyFileError(
                f"master key {key_id} is not in key file {self.path}: it was retired, or this "
                "is not this installation's keyring; restore the keyring that holds it"
            )
        return found.key

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise KeyFileError(
                f"cannot {what}: key file {self.path} is read-only here (a systemd credential); "
                "rotate the source keyring with `accessd keys rotate --config` pointing at it, "
                "then install the new credential and restart"
            )
