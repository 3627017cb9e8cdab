"""The backup key file: the keys of every live customer's and person's backup sections, and a
copy of the erasure ledger, in one file beside the backups.

Where the keys live, and why there
----------------------------------
A backup holds a customer's personal data only as ciphertext under a key of that customer, and
each person's own data under a key of that person (``accessd.backup.sections``). Those keys must

- survive a dead SD card, or no restore could read anyone back: so they are neither in the
  database nor anywhere else on the card;
- exist in one copy only, so that destroying a key destroys it: so there is one current file,
  ``<backup.dir>/backup-keys``, mode 0600, replaced atomically (temporary file, fsync, rename,
  fsync of the directory), never versioned and never inside a backup;
- be useless without the installation's keyring: the file's body is one AES-256-GCM ciphertext
  under the active master key, so every key in it is wrapped by the master key, and nothing in
  it can be read, dropped or swapped (not even which people it holds keys for) without it.

It lives beside the backups because the two are needed together and survive together: the
backup directory belongs on another medium than the card (a USB disk, a network share), and
the keyring's offline copy opens it.

What destroys a key
-------------------
The erasure ledger decides, nothing else: a ``purge_customer`` entry removes the customer's key
and those of all its people, an ``erase_person`` entry the person's key. ``forget_customer`` does
it at once during a purge (the purge is not completed until it succeeded: a purge that cannot
reach this file is resumed at the next run). ``sync_key_file`` applies the whole ledger whenever
it runs: after an erasure from the command line, before and after every backup, and in the
daemon's hourly reconciliation, so a key of a destroyed subject outlives its destruction by at
most an hour in a reachable file, however the destruction came about (a medium that was away
during a purge, an erasure from the panel). Keys are only ever added
by a backup, for the subjects of its snapshot that the ledger does not name.

The file also carries a copy of the erasure ledger (digests, dates, counts: no personal data).
A restore after the database was lost re-applies it, so consent withdrawals, which destroy no
key, are honoured again too.

What a restore checks (``check_for_restore``)
---------------------------------------------
The file must be there, open under this keyring, name this installation, and be the very file
the backup was written against, at the generation the backup recorded or later (every write
increments it). An older copy could hold keys destroyed since: refused.

Residual risk: a replaced file's old blocks may survive on flash below the file system. They are
ciphertext under a master key; rotating it (``accessd keys rotate`` reseals this file) and
replacing the keyring's offline copy makes them unreadable. The backup directory must not be
snapshotted or versioned: every old version of this file is a copy of destroyed keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import enum
import fcntl
import json
import os
import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.errors import BackupKeysError, DecryptionError, KeyFileError
from accessd.models import ErasureLedgerEntry, LedgerAction
from accessd.privacy.purge import installation_key_id

KEY_FILE = "backup-keys"
FORMAT = "accessd-backup-keys"
VERSION = 1
KEY_BYTES = 32
FILE_ID_BYTES = 16
_LOCK = ".backup-keys.lock"
_AAD = b"accessd/backup-keys/v1\x00"
_HEADER_FIELDS = ("format", "version", "installation", "file_id", "generation", "written_at",
                  "master_key_id")


def backup_dir(settings: Settings) -> Path:
    """``backup.dir``, absolute (a hand-built ``Settings`` may hold it relative to data_dir)."""
    directory = settings.backup.dir
    return directory if directory.is_absolute() else settings.data_dir / directory


def key_file_path(directory: Path) -> Path:
    """The key file of the backups in ``directory``."""
    return directory / KEY_FILE


@dataclass
class CustomerKeys:
    """A customer's section key and its people's keys (person digest -> key)."""

    key: bytes = field(repr=False)
    people: dict[str, bytes] = field(default_factory=dict, repr=False)


@dataclass
class BackupKeys:
    """The key file's contents. ``file_id`` names this file for good; ``generation`` counts
    its writes; ``ledger`` holds the erasure ledger's rows (``encode_row``)."""

    file_id: bytes
    generation: int
    customers: dict[str, CustomerKeys] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)

    def customer_key(self, customer: str) -> bytes | None:
        found = self.customers.get(customer)
        return found.key if found is not None else None

    def person_key(self, customer: str, person: str) -> bytes | None:
        found = self.customers.get(customer)
        return found.people.get(person) if found is not None else None

    def apply_ledger(self, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Add the ledger rows it does not hold yet, then drop every key the ledger says was
        destroyed. Returns (customer keys dropped, person keys dropped)."""
        held = {row_identity(row) for row in self.ledger}
        for row in rows:
            identity = row_identity(row)
            if identity not in held:
                self.ledger.append(row)
                held.add(identity)
        customers_gone, people_gone = destroyed_subjects(self.ledger)
        dropped_customers = dropped_people = 0
        for digest in customers_gone & set(self.customers):
            dropped_people += len(self.customers.pop(digest).people)
            dropped_customers += 1
        for keys in self.customers.values():
            for person in people_gone & set(keys.people):
                del keys.people[person]
                dropped_people += 1
        return dropped_customers, dropped_people


def destroyed_subjects(ledger: Iterable[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """The customer digests purged and the person digests erased, according to ``ledger``."""
    customers, people = set(), set()
    for row in ledger:
        action = str(row.get("action"))
        if action == LedgerAction.PURGE_CUSTOMER.value:
            customers.add(str(row["customer_digest"]))
        elif action == LedgerAction.ERASE_PERSON.value and row.get("person_digest"):
            people.add(str(row["person_digest"]))
    return customers, people


# --- ledger rows as JSON ----------------------------------------------------------------------


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A database row as JSON values; whatever columns the ledger has, now or later."""
    return {name: _encode(value) for name, value in row.items()}


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``encode_row``: values to insert with SQLAlchemy."""
    return {name: _decode(value) for name, value in row.items()}


def row_identity(row: dict[str, Any]) -> str:
    """What makes two copies of a ledger row the same row, whatever their ids."""
    return json.dumps({k: v for k, v in row.items() if k != "id"}, sort_keys=True)


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, text),) = value.items()
            if tag == "$datetime":
                return dt.datetime.fromisoformat(text)
            if tag == "$date":
                return dt.date.fromisoformat(text)
            if tag == "$bytes":
                return base64.b64decode(text)
            if tag == "$uuid":
                return uuid.UUID(text)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def ledger_rows(session: Session) -> list[dict[str, Any]]:
    """The database's erasure ledger, encoded, oldest first."""
    table = ErasureLedgerEntry.__table__
    rows = session.execute(select(table).order_by(table.c.recorded_at, table.c.id)).mappings()
    return [encode_row(dict(row)) for row in rows]


# --- the file ---------------------------------------------------------------------------------


def new_keys() -> BackupKeys:
    """An empty key file's contents, with a new random id."""
    return BackupKeys(secrets.token_bytes(FILE_ID_BYTES), 0)


def installation_id(provider: KeyProvider) -> str:
    """Which installation a key file belongs to: its signing key's short name."""
    return installation_key_id(provider.signing_public_key())


def load(path: Path, provider: KeyProvider) -> BackupKeys:
    """Read and open the key file at ``path``.

    :raises BackupKeysError: missing, unreadable, not a key file, or not this installation's.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackupKeysError(f"there is no backup key file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupKeysError(f"cannot read the backup key file {path}: {exc}") from exc
    try:
        document = json.loads(text)
        header = {name: document[name] for name in _HEADER_FIELDS}
        sealed = base64.b64decode(document["sealed"], validate=True)
        file_id = bytes.fromhex(header["file_id"])
        generation = int(header["generation"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BackupKeysError(f"{path} is not a backup key file ({exc}); restore the backup "
                              "directory's key file from your copy") from None
    if header["format"] != FORMAT or header["version"] != VERSION:
        raise BackupKeysError(f"{path} is not a backup key file of format {FORMAT} {VERSION}")
    if header["installation"] != installation_id(provider):
        raise BackupKeysError(f"the backup key file {path} belongs to installation "
                              f"{header['installation']}, not to this keyring's "
                              f"{installation_id(provider)}: use this installation's keyring "
                              "and backup directory together")
    try:
        body = json.loads(provider.decrypt(str(header["master_key_id"]), sealed,
                                           _AAD + _canonical(header)))
    except KeyFileError as exc:
        raise BackupKeysError(f"the backup key file {path} is sealed under master key "
                              f"{header['master_key_id']}, which this keyring does not hold "
                              f"({exc})") from None
    except (DecryptionError, ValueError):
        raise BackupKeysError(f"the backup key file {path} does not authenticate: it was "
                              "altered or damaged; restore it from your copy") from None
    try:
        customers = {digest: CustomerKeys(_key(item["key"]),
                                          {p: _key(k) for p, k in item["people"].items()})
                     for digest, item in body["customers"].items()}
        ledger = list(body["ledger"])
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
        raise BackupKeysError(f"the backup key file {path} authenticates but its contents "
                              f"cannot be read ({exc}); restore it from your copy") from None
    return BackupKeys(file_id, generation, customers, ledger)


def store(path: Path, provider: KeyProvider, keys: BackupKeys, now: dt.datetime) -> int:
    """Write ``keys`` as the next generation of the file at ``path``, atomically; returns it.

    :raises BackupKeysError: the file cannot be written (nothing changed then).
    """
    keys.generation += 1
    header: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "installation": installation_id(provider),
        "file_id": keys.file_id.hex(), "generation": keys.generation,
        "written_at": now.astimezone(dt.UTC).isoformat(),
        "master_key_id": provider.active_key_id,
    }
    body = {"customers": {digest: {"key": _b64(item.key),
                                   "people": {p: _b64(k) for p, k in item.people.items()}}
                          for digest, item in keys.customers.items()},
            "ledger": keys.ledger}
    sealed = provider.encrypt(header["master_key_id"], json.dumps(body).encode("utf-8"),
                              _AAD + _canonical(header))
    text = json.dumps({**header, "sealed": _b64(sealed)}, indent=1) + "\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        keys.generation -= 1
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise BackupKeysError(f"cannot write the backup key file {path}: {exc.strerror}") \
            from exc
    return keys.generation


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise changes to the key file between processes (backup, purge, CLI, daemon)."""
    try:
        fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise BackupKeysError(f"cannot lock the backup key file in {directory}: "
                              f"{exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- what the rest of accessd calls -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySync:
    """What bringing the key file in line with the ledger did."""

    customer_keys_dropped: int = 0
    person_keys_dropped: int = 0
    ledger_entries: int = 0
    written: bool = False


def sync_key_file(directory: Path, sessions: sessionmaker[Session], provider: KeyProvider,
                  now: dt.datetime) -> KeySync:
    """Copy the database's ledger into the key file and drop every key it says was destroyed;
    reseal under the active master key. Nothing to do without a key file (no backup needs one).

    :raises BackupKeysError: the key file exists but cannot be read or written.
    """
    path = key_file_path(directory)
    if not path.exists():
        return KeySync()
    with sessions() as session:
        rows = ledger_rows(session)
    with locked(directory):
        keys = load(path, provider)
        before = len(keys.ledger)
        customers, people = keys.apply_ledger(rows)
        if customers or people or len(keys.ledger) != before or _sealed_under(
                path) != provider.active_key_id:
            store(path, provider, keys, now)
            return KeySync(customers, people, len(keys.ledger), True)
    return KeySync(0, 0, len(keys.ledger), False)


def forget_customer(directory: Path, sessions: sessionmaker[Session], provider: KeyProvider,
                    customer: str, now: dt.datetime) -> bool:
    """Destroy the keys of customer ``customer`` (a digest) and of all its people, now, with the
    ledger copied in (its purge entry among it). Returns whether a key was destroyed. No key
    file: nothing to destroy (no backup holds a readable section of anyone).

    :raises BackupKeysError: the key file exists but cannot be read or rewritten: the purge
        calling this stays incomplete and is resumed.
    """
    path = key_file_path(directory)
    if not directory.is_dir() or not path.exists():
        return False
    with sessions() as session:
        rows = ledger_rows(session)
    with locked(directory):
        keys = load(path, provider)
        held = customer in keys.customers
        keys.apply_ledger(rows)
        keys.customers.pop(customer, None)
        store(path, provider, keys, now)
    return held


def reseal(directory: Path, provider: KeyProvider, now: dt.datetime) -> bool:
    """Rewrite the key file under the active master key (a rotation does this before it
    retires the old key, which would otherwise leave the file unreadable)."""
    path = key_file_path(directory)
    if not path.exists():
        return False
    with locked(directory):
        store(path, provider, load(path, provider), now)
    return True


def check_for_restore(directory: Path, provider: KeyProvider, backup: Path,
                      file_id: bytes | None, generation: int | None) -> BackupKeys:
    """The key file a restore of ``backup`` may trust, or a one-line refusal saying what is
    needed. ``file_id``/``generation``: what the backup recorded (None for format 1).

    :raises BackupKeysError: missing, unreadable, another installation's, another file, or older
        than the backup.
    """
    path = key_file_path(directory)
    if not path.exists():
        raise BackupKeysError(
            f"restore needs the backup key file {path}: copy it from your backup directory "
            "with the backups (it holds the keys of the customers' sections and the erasure "
            "ledger; without it this restore cannot prove which erasures it must honour)")
    keys = load(path, provider)
    if file_id is not None and keys.file_id != file_id:
        raise BackupKeysError(
            f"the backup key file {path} is not the one {backup.name} was written against "
            "(a new key file was started since): restore a backup made since, or put the key "
            "file of that time back")
    if generation is not None and keys.generation < generation:
        raise BackupKeysError(
            f"the backup key file {path} is older than {backup.name} (generation "
            f"{keys.generation}, the backup needs {generation} or later): an old copy may hold "
            "keys destroyed since; use the current key file")
    return keys


def keys_for_backup(directory: Path, provider: KeyProvider, subjects: dict[str, list[str]],
                    ledger: list[dict[str, Any]], now: dt.datetime,
                    *, has_sections: bool) -> BackupKeys:
    """The keys a backup of ``subjects`` (customer digest -> its people's digests) uses: the
    ledger applied first, then a new key for every subject without one that the ledger does
    not name. The file is written (a new generation) and returned.

    ``has_sections``: backups with customer sections exist in ``directory``; then a missing key
    file is an error (a new one could not open them), not a first backup.

    :raises BackupKeysError: the key file cannot be read or written, or is missing while
        backups need it.
    """
    path = key_file_path(directory)
    with locked(directory):
        if path.exists():
            keys = load(path, provider)
        elif has_sections:
            raise BackupKeysError(
                f"the backup key file {path} is missing, and the backups in {directory} need "
                "it: put it back from your copy of the backup directory (or move those backups "
                "away: without it they restore no customer), then back up again")
        else:
            keys = new_keys()
        keys.apply_ledger(ledger)
        customers_gone, people_gone = destroyed_subjects(keys.ledger)
        for customer, people in subjects.items():
            if customer in customers_gone:
                continue
            held = keys.customers.setdefault(customer, CustomerKeys(_new_key()))
            for person in people:
                if person not in people_gone and person not in held.people:
                    held.people[person] = _new_key()
        store(path, provider, keys, now)
        return keys


def _new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _sealed_under(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["master_key_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _canonical(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key(text: str) -> bytes:
    key = base64.b64decode(text, validate=True)
    if len(key) != KEY_BYTES:
        raise ValueError(f"a key of {len(key)} bytes")
    return key


__all__ = ["BackupKeys", "BackupKeysError", "CustomerKeys", "KeySync", "backup_dir",
           "check_for_restore", "forget_customer", "key_file_path", "keys_for_backup", "load",
           "reseal", "store", "sync_key_file"]
