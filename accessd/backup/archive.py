"""Encrypted backups of the SQLite database, and restores that never resurrect destroyed data.

``accessd backup`` takes a consistent snapshot (``VACUUM INTO``: one read transaction, the
doors keep writing), compresses it and encrypts it in authenticated chunks under a random
file key wrapped by the active master key (format: ``accessd.backup.format``). The file is
written with mode 0600 under a temporary name, read back and compared before it gets its
real name. PostgreSQL sites back up with ``pg_dump``, their database's own tool; this module
refuses them rather than doing it badly.

What a backup does not hold: usable data keys. Each customer's wrapped data key is blanked
in the snapshot, so a backup's template ciphertexts decrypt only with the key in the live
database. Purging a customer destroys that key, which is what makes the customer's templates
unreadable in every backup, old ones included (crypto-shredding). The price: if the live
database is lost, a restore brings back everything but the templates, and people re-enrol
their fingers.

``accessd restore`` first decrypts, decompresses and integrity-checks the whole backup into a
temporary file next to the database; nothing live is touched until all of it checks out.
Then, still on the temporary copy:

1. the erasure ledger (``ErasureLedgerEntry``, the tables flagged ``RESTORE_KEEPS``) is read
   from the live database and replaces the backup's: the live ledger has every purge,
   erasure and consent withdrawal, also those recorded after the backup was taken;
2. every ledger entry is applied again (a purged customer disappears with its data key, an
   erased person with their fingers and consents, history anonymised; withdrawn consents
   are withdrawn again); data keys are re-attached from the live database;
3. every door is asked to resync its sensor; the copy is checkpointed.

Only then is the copy moved over the database in one atomic rename. Re-applying before the
swap, not after, means there is no moment, not even after a crash mid-restore, at which the
live database holds data that was destroyed. The ledger must be read before the swap because
the swap replaces the database that holds it.

The daemon and the panel must be stopped during a restore (``--yes-i-stopped-the-daemon``):
a process holding the old file open would keep writing to it. As a check, the restore refuses
when the database's ``-wal`` file survives closing our own connections: some other process
still has the database open.

Backups older than ``backup.max_age_months`` (at most 12) are deleted by ``prune_backups``,
which the scheduler calls.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from accessd.backup.format import CHUNK_SIZE, BackupWriter, iter_plaintext, read_header
from accessd.backup.replay import LiveState, ReplayReport, prepare_restored, read_live_state
from accessd.config import RetentionPeriod, Settings
from accessd.crypto import KeyProvider
from accessd.db import (
    check_integrity,
    checkpoint_wal,
    create_db_engine,
    make_sessionmaker,
    upgrade,
)
from accessd.errors import BackupError, StorageError
from accessd.models import DataKey, ErasureLedgerEntry

__all__ = [
    "BackupError",
    "BackupInfo",
    "RestoreReport",
    "create_backup",
    "list_backups",
    "prune_backups",
    "restore_backup",
    "verify_backup",
]

SUFFIX = ".backup"
PREFIX = "accessd-"
_BLOCK = 1 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """A verified backup: when it was made, under which master key, what it holds."""

    path: Path
    created_at: dt.datetime
    master_key_id: str
    file_bytes: int
    database_bytes: int
    database_sha256: str


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore did: the backup's time and what was re-applied to it."""

    backup_created_at: dt.datetime
    ledger_entries_since_backup: int
    replay: ReplayReport


def sqlite_path(engine: Engine) -> Path:
    """The database file behind ``engine``.

    :raises BackupError: not SQLite (PostgreSQL backs up with ``pg_dump``), or in memory.
    """
    if engine.dialect.name != "sqlite":
        raise BackupError(
            f"`accessd backup` covers the embedded SQLite database; this site uses "
            f"{engine.dialect.name}: back it up with its own tool (pg_dump -Fc, encrypted and "
            "kept at most 12 months), and restore with pg_restore")
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("the database is in memory: there is no file to back up")
    return Path(database).absolute()


def create_backup(settings: Settings, engine: Engine, provider: KeyProvider, now: dt.datetime,
                  *, out_dir: Path | None = None) -> Path:
    """Write an encrypted, verified backup of the database; returns its path.

    :raises BackupError: PostgreSQL, a database that fails its integrity check, or a write
        that does not read back identically.
    """
    db_path = sqlite_path(engine)
    directory = out_dir or settings.backup.dir
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = _free_name(directory, now)
    partial = directory / f".{final.name}.{secrets.token_hex(4)}.tmp"
    snapshot = _snapshot(engine, db_path)
    try:
        written = hashlib.sha256()
        with _create_private(partial) as out, \
                BackupWriter(out, provider, now, CHUNK_SIZE) as writer:
            for block in _blocks(snapshot):
                written.update(block)
                writer.write(block)
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        info = verify_backup(partial, provider)
        if info.database_sha256 != written.hexdigest():
            raise BackupError(f"backup {partial} did not read back as written; check the disk "
                              f"holding {directory} and run `accessd backup` again")
        os.replace(partial, final)
        _fsync_dir(directory)
    finally:
        _unlink(snapshot)
        _unlink(partial)
    return final


def verify_backup(path: Path, provider: KeyProvider) -> BackupInfo:
    """Read the whole backup: every chunk authenticates, the stream ends properly, and it
    holds a SQLite database. Needs the keyring: integrity is proved by the chunks' tags.

    :raises BackupError: what is wrong, and that another backup should be used.
    """
    digest, size = hashlib.sha256(), 0
    head = b""
    try:
        with path.open("rb") as stream:
            header = read_header(stream, str(path))
            for block in iter_plaintext(stream, provider, str(path), header):
                if len(head) < len(_SQLITE_MAGIC):
                    head += block[: len(_SQLITE_MAGIC)]
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise BackupError(f"cannot read backup {path}: {exc.strerror}") from exc
    if not head.startswith(_SQLITE_MAGIC):
        raise BackupError(f"{path} decrypts, but does not hold a SQLite database")
    return BackupInfo(path, header.created_at, header.master_key_id, path.stat().st_size, size,
                      digest.hexdigest())


def restore_backup(path: Path, settings: Settings, engine: Engine, provider: KeyProvider, *,
                   daemon_stopped: bool, live_database_lost: bool = False) -> RestoreReport:
    """Replace the database with the backup at ``path``, re-applying the ledger first.

    ``engine`` is disposed: open new connections afterwards. ``live_database_lost`` allows a
    restore when the live database is missing or unreadable: its ledger is then lost, and
    erasures recorded after the backup must be carried out again from the request records.

    :raises BackupError: the daemon flag is missing, the backup does not verify, the live
        database cannot be read (without ``live_database_lost``) or is still open elsewhere.
        Nothing has changed when it raises.
    """
    if not daemon_stopped:
        raise BackupError("stop the door daemon and the panel first (e.g. `systemctl stop "
                          "accessd accessd-web`), then restore with --yes-i-stopped-the-daemon")
    db_path = sqlite_path(engine)
    staged = db_path.with_name(f".{db_path.name}.restore-{secrets.token_hex(4)}.tmp")
    try:
        created_at = _stage(path, provider, staged)
        live = _read_live(engine, db_path, live_database_lost)
        replay = _prepare(staged, live, provider)
        since = sum(1 for row in (live.kept_rows.get(ErasureLedgerEntry.__tablename__, [])
                                  if live else []) if row["recorded_at"] > created_at)
        _swap(engine, db_path, staged)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            _unlink(Path(f"{staged}{suffix}"))
    return RestoreReport(created_at, since, replay)


def list_backups(directory: Path) -> list[tuple[Path, dt.datetime]]:
    """The backups in ``directory``, oldest first, with the time each says it was made (the
    file's modification time when its header is unreadable)."""
    found = []
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        try:
            with path.open("rb") as stream:
                created = read_header(stream, str(path)).created_at
        except (BackupError, OSError):
            created = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        found.append((path, created))
    return sorted(found, key=lambda item: item[1])


def prune_backups(settings: Settings, now: dt.datetime) -> list[Path]:
    """Delete the backups older than ``backup.max_age_months`` calendar months; returns them."""
    directory = settings.backup.dir
    if not directory.is_dir():
        return []
    cutoff = RetentionPeriod(settings.backup.max_age_months, "month").cutoff(now)
    assert cutoff is not None  # a number of months always has a cutoff
    deleted = []
    for path, created in list_backups(directory):
        if created < cutoff:
            path.unlink(missing_ok=True)
            deleted.append(path)
    if deleted:
        _fsync_dir(directory)
    return deleted


# --- backup -----------------------------------------------------------------------------------


def _snapshot(engine: Engine, db_path: Path) -> Path:
    """A consistent copy of the database, with the data keys blanked, next to the database
    (the same protection as the database itself, never the backup directory)."""
    snapshot = db_path.with_name(f".{db_path.name}.snapshot-{secrets.token_hex(4)}.tmp")
    os.close(os.open(snapshot, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM INTO ?", (str(snapshot),))
            cursor.close()
        finally:
            raw.close()
        with contextlib.closing(sqlite3.connect(snapshot, isolation_level=None)) as copy:
            problems = [row[0] for row in copy.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise BackupError(f"the database {db_path} fails its integrity check "
                                  f"({'; '.join(problems[:3])}): a backup of it would not "
                                  "restore; run `accessd doctor` and restore the last good backup")
            copy.execute("PRAGMA secure_delete = ON")
            copy.execute(f"UPDATE {DataKey.__tablename__} SET wrapped_key = X''")  # noqa: S608
            copy.execute("VACUUM")  # no page of the copy keeps the old wrapped keys
    except sqlite3.Error as exc:
        _unlink(snapshot)
        raise BackupError(f"cannot snapshot {db_path} ({exc}); if the database is damaged, "
                          "run `accessd doctor` and restore the last good backup") from exc
    except BaseException:
        _unlink(snapshot)
        raise
    return snapshot


def _free_name(directory: Path, now: dt.datetime) -> Path:
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = directory / f"{PREFIX}{stamp}{SUFFIX}", 1
    while candidate.exists():
        candidate, n = directory / f"{PREFIX}{stamp}-{n}{SUFFIX}", n + 1
    return candidate


# --- restore ----------------------------------------------------------------------------------


def _stage(path: Path, provider: KeyProvider, staged: Path) -> dt.datetime:
    """Decrypt the whole backup into ``staged`` and check it; raises before anything live."""
    try:
        with path.open("rb") as stream, _create_private(staged) as out:
            header = read_header(stream, str(path))
            head = b""
            for block in iter_plaintext(stream, provider, str(path), header):
                if len(head) < len(_SQLITE_MAGIC):
                    head += block[: len(_SQLITE_MAGIC)]
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise BackupError(f"cannot read backup {path} or write next to the database: "
                          f"{exc.strerror}") from exc
    if not head.startswith(_SQLITE_MAGIC):
        raise BackupError(f"{path} decrypts, but does not hold a SQLite database")
    with contextlib.closing(sqlite3.connect(staged, isolation_level=None)) as copy:
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check(20)")]
    if problems != ["ok"]:
        raise BackupError(f"the database in {path} fails its integrity check "
                          f"({'; '.join(problems[:3])}); use another backup")
    return header.created_at


def _read_live(engine: Engine, db_path: Path, live_database_lost: bool) -> LiveState | None:
    problem = None
    if not db_path.exists():
        problem = f"there is no database at {db_path}"
    else:
        report = check_integrity(engine)
        if not report.ok:
            problem = f"the database at {db_path} fails its check ({'; '.join(report.problems)})"
    if problem is None:
        try:
            return read_live_state(engine)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            problem = f"the ledger cannot be read from {db_path} ({exc})"
    if live_database_lost:
        return None
    raise BackupError(f"{problem}: its erasure ledger is what keeps a restore from bringing "
                      "back destroyed data. If the database is really lost, restore with "
                      "--live-database-lost, then carry out again every erasure recorded in "
                      "the data-subject requests since the backup")


def _prepare(staged: Path, live: LiveState | None, provider: KeyProvider) -> ReplayReport:
    staged_engine = create_db_engine(f"sqlite:///{staged}")
    try:
        try:
            upgrade(staged_engine)  # a backup from an older accessd gets today's schema
        except StorageError as exc:
            raise BackupError(f"the backup's schema cannot be brought up to date ({exc}); "
                              "was it made by a newer accessd?") from exc
        replay = prepare_restored(make_sessionmaker(staged_engine), live, provider)
        checkpoint_wal(staged_engine)
    finally:
        staged_engine.dispose()
    return replay


def _swap(engine: Engine, db_path: Path, staged: Path) -> None:
    engine.dispose()
    wal = Path(f"{db_path}-wal")
    if db_path.exists():
        # Our connections are closed; opening and closing one more lets SQLite checkpoint and
        # remove the WAL, which it does only when no other process has the database open.
        with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as probe:
            probe.execute("SELECT count(*) FROM sqlite_master").fetchall()
        if wal.exists():
            raise BackupError(f"{db_path} is still open in another process (its -wal file "
                              "stays): stop the door daemon and the panel, then restore again")
    fd = os.open(staged, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(staged, db_path)
    _unlink(Path(f"{db_path}-shm"))
    _fsync_dir(db_path.parent)


# --- files ------------------------------------------------------------------------------------


def _create_private(path: Path) -> io.BufferedWriter:
    # O_EXCL: never write through a file (or a link) someone placed under our temporary name.
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            yield block


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
