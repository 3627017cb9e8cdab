"""Encrypted backups of the SQLite database, and restores that never resurrect destroyed data.

``accessd backup`` reads the database in one read transaction (the doors keep writing) and cuts
it into sections (``accessd.backup.sections``): the installation's, under a random file key
wrapped by the active master key, and one per customer, under that customer's key from the
backup key file (``accessd.backup.keys``), with each person's own data sealed inside it under
that person's key. Each section is compressed and encrypted in authenticated chunks
(``accessd.backup.format``). The file is written with mode 0600 under a temporary name, read
back (every chunk authenticated, every section's bytes against the manifest) before it gets its
real name. PostgreSQL sites back up with ``pg_dump``, their database's own tool; this module
refuses them rather than doing it badly.

So a purge reaches every backup ever taken at the moment it destroys the customer's keys in the
key file, and an erasure reaches them when the person's key goes; the rest of each backup
restores as before.

``accessd restore`` first checks the key file (``keys.check_for_restore``: present, this
installation's, the file the backup was written against and not older), then decrypts the
installation's section into a temporary file next to the database, merges every customer
section whose key still exists (every person whose key still exists), and integrity-checks the
result; nothing live is touched until all of it checks out, manifest included. Then, still on
the temporary copy (``accessd.backup.replay``):

1. the erasure ledger becomes the union of the live one, the key file's copy and the backup's
   own (with the purge certificates in the data directory): every destruction any of them knows
   of, including those recorded after the backup was taken, also when the live database is lost;
2. every ledger entry is applied again; data keys are re-attached from the live database where
   it has them;
3. every door is asked to resync its sensor; the copy is checkpointed.

Only then is the copy moved over the database in one atomic rename: there is no moment, not even
after a crash mid-restore, at which the live database holds data that was destroyed. After the
swap, the key file receives the restored ledger.

The daemon and the panel must be stopped during a restore (``--yes-i-stopped-the-daemon``):
a process holding the old file open would keep writing to it. As a check, the restore refuses
when the database's ``-wal`` file survives closing our own connections: some other process
still has the database open.

Backups older than ``backup.max_age_months`` (at most 12) are deleted by the daemon's hourly
reconciliation (``accessd.backup.housekeeping``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import secrets
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from accessd.backup.format import (
    CHUNK_SIZE,
    SECTION_VERSIONS,
    BackupFileWriter,
    BackupHeader,
    BackupReader,
    SectionKind,
    read_header,
)
from accessd.backup.housekeeping import PREFIX, SUFFIX, list_backups, prune_backups
from accessd.backup.keys import (
    BackupKeys,
    backup_dir,
    check_for_restore,
    destroyed_subjects,
    fsync_dir,
    keys_for_backup,
    ledger_rows,
    sync_key_file,
)
from accessd.backup.replay import (
    LiveState,
    PurgeCertificate,
    ReplayReport,
    prepare_restored,
    purge_certificates,
    read_live_state,
)
from accessd.backup.sections import (
    MergeCounts,
    Merger,
    PersonKey,
    customer_section,
    scratch_on,
    take_snapshot,
)
from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.db import (
    check_integrity,
    checkpoint_wal,
    create_db_engine,
    make_sessionmaker,
    upgrade,
)
from accessd.errors import BackupError, BackupKeysError, StorageError
from accessd.models import ErasureLedgerEntry, utcnow
from accessd.privacy.purge import CustomerDigester, certificate_dir
from accessd.progress import Progress, Tally, no_progress

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

log = logging.getLogger(__name__)

_BLOCK = 1 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """A verified backup: when it was made, under which master key, what it holds."""

    path: Path
    created_at: dt.datetime
    master_key_id: str
    version: int
    file_bytes: int
    database_bytes: int  # of every section this keyring and key file could read
    customer_sections: int = 0
    unreadable_sections: int = 0  # customers whose key is gone: their data is noise


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore did: the backup's time, what came back, and what was re-applied."""

    backup_created_at: dt.datetime
    ledger_entries_since_backup: int
    replay: ReplayReport
    merged: MergeCounts = field(default_factory=MergeCounts)
    customers_without_key: int = 0  # purged: their sections stay noise
    unaccounted_customers: int = 0  # no key and no purge on record: reported, never guessed


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
                  *, out_dir: Path | None = None, compress: bool = False,
                  progress: Progress = no_progress) -> Path:
    """Write an encrypted, verified backup of the database; returns its path. The key file
    stays in ``backup.dir`` whatever ``out_dir`` says. ``compress``: about half the size of a
    history, for about twice the time (see ``accessd.backup.format``). ``progress`` counts
    sections: the installation's, each customer's, and the reading back of the whole file.

    :raises BackupError: PostgreSQL, a database that cannot be read, a key file that cannot
        be read or written, or a file that does not read back as written.
    """
    db_path = sqlite_path(engine)
    key_dir = backup_dir(settings)
    directory = out_dir or key_dir
    for folder in {key_dir, directory}:
        _private_dir(folder)
    sessions = make_sessionmaker(engine)
    digester = CustomerDigester(provider)
    final = _free_name(directory, now)
    partial = directory / f".{final.name}.{secrets.token_hex(4)}.tmp"
    with _workdir(db_path) as work:
        try:
            snapshot = take_snapshot(db_path, work)
            names = {cid: digester(public) for cid, public in snapshot.customers}
            people = {public: digester(public) for persons in snapshot.people.values()
                      for _, public in persons}
            subjects = {names[cid]: [people[p] for _, p in snapshot.people.get(cid, [])]
                        for cid, _ in snapshot.customers}
            with sessions() as session:
                ledger = ledger_rows(session)
            keys = keys_for_backup(key_dir, provider, subjects, ledger, now,
                                   has_sections=_has_sections(key_dir, directory))
            tally = Tally(progress, len(snapshot.customers) + 2)  # + the read-back
            progress(0, tally.total)
            with _create_private(partial) as out:
                writer = BackupFileWriter(out, provider, now, key_file_id=keys.file_id,
                                          key_file_generation=keys.generation,
                                          chunk_size=CHUNK_SIZE, compress=compress)
                with snapshot.installation.open("rb") as plain:
                    writer.write_section(SectionKind.INSTALLATION, _blocks(plain))
                tally.add()
                for customer_id, _ in snapshot.customers:
                    customer = names[customer_id]
                    customer_key = keys.customer_key(customer)
                    tally.add()
                    if customer_key is None:
                        continue  # purged since the snapshot: nothing of it is written
                    with customer_section(snapshot, customer_id, customer, work,
                                          _person_keys(keys, people, customer)) as blocks:
                        writer.write_section(SectionKind.CUSTOMER, blocks,
                                             customer=customer, customer_key=customer_key)
                writer.finish()
                out.flush()
                os.fsync(out.fileno())
            _read_back(partial, provider, keys)
            tally.add()
            os.replace(partial, final)
            fsync_dir(directory)
        finally:
            _unlink(partial)
    try:  # a purge or an erasure committed while this ran: its keys go now, not in an hour
        sync_key_file(key_dir, sessions, provider, now)
    except BackupKeysError as exc:
        log.warning("backup written, but the key file could not be brought up to date (%s); "
                    "the hourly reconciliation retries", exc)
    return final


def verify_backup(path: Path, provider: KeyProvider, keys: BackupKeys | None = None
                  ) -> BackupInfo:
    """Read the whole backup: every chunk authenticates, every section matches the manifest,
    and each section it can open (with ``keys``, the key file) holds a SQLite database. A
    section whose customer's key is gone is checked against the manifest only.

    :raises BackupError: what is wrong, and that another backup should be used.
    """
    size, customers, unreadable = 0, 0, 0
    try:
        with path.open("rb") as stream:
            reader = BackupReader(stream, provider, str(path))
            header = reader.header
            if header.version not in SECTION_VERSIONS:
                size = _check_database(reader.whole(), str(path), None)
            else:
                for section in reader.sections(keys.customer_key if keys else _no_key):
                    customers += section.kind is SectionKind.CUSTOMER
                    if not section.readable:
                        unreadable += 1
                        continue
                    size += _check_database(section.blocks(), str(path), None)
    except OSError as exc:
        raise BackupError(f"cannot read backup {path}: {exc.strerror}") from exc
    return BackupInfo(path, header.created_at, header.master_key_id, header.version,
                      path.stat().st_size, size, customers, unreadable)


def restore_backup(path: Path, settings: Settings, engine: Engine, provider: KeyProvider, *,
                   daemon_stopped: bool, live_database_lost: bool = False,
                   progress: Progress = no_progress) -> RestoreReport:
    """Replace the database with the backup at ``path``, re-applying every erasure first.
    ``progress`` counts the backup's bytes read and decrypted (the bulk of the work).

    ``engine`` is disposed: open new connections afterwards. ``live_database_lost`` allows a
    restore when the live database is missing or unreadable; the key file's ledger then stands
    in for the live one.

    :raises BackupKeysError: the key file is missing, another installation's, not the one the
        backup was written against, older than the backup, or unreadable.
    :raises BackupError: the daemon flag is missing, the backup does not verify, the live
        database cannot be read (without ``live_database_lost``) or is still open elsewhere.
        Nothing has changed when it raises.
    """
    if not daemon_stopped:
        raise BackupError("stop the door daemon and the panel first (e.g. `systemctl stop "
                          "accessd accessd-web`), then restore with --yes-i-stopped-the-daemon")
    db_path = sqlite_path(engine)
    header = _header(path)
    key_dir = backup_dir(settings)
    keys = check_for_restore(key_dir, provider, path, header.key_file_id,
                             header.key_file_generation)
    staged = db_path.with_name(f".{db_path.name}.restore-{secrets.token_hex(4)}.tmp")
    with _workdir(db_path) as work:
        try:
            merged, unreadable = _stage(path, provider, keys, staged, work, progress)
            live = _read_live(engine, db_path, live_database_lost)
            certificates = purge_certificates(certificate_dir(settings), provider)
            replay, since = _prepare(staged, live, provider, keys, certificates,
                                     header.created_at)
            _swap(engine, db_path, staged)
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                _unlink(Path(f"{staged}{suffix}"))
    purged = destroyed_subjects(keys.ledger)[0] | {str(c.body["customer_digest"])
                                                   for c in certificates}
    if live is not None:
        purged |= {row["customer_digest"] for row in live.kept_rows.get(
            ErasureLedgerEntry.__tablename__, []) if row["action"] == "purge_customer"}
    try:
        sync_key_file(key_dir, make_sessionmaker(engine), provider, utcnow())
    except BackupKeysError as exc:
        log.warning("restored, but the key file could not take the restored ledger (%s)", exc)
    return RestoreReport(header.created_at, since, replay, merged, len(unreadable),
                         len(set(unreadable) - purged))


# --- backup -----------------------------------------------------------------------------------


def _has_sections(*directories: Path) -> bool:
    """Whether a backup with customer sections (format 2 or 3) is in any of ``directories``."""
    for directory in directories:
        for path, _ in list_backups(directory):
            with contextlib.suppress(BackupError, OSError), path.open("rb") as stream:
                if read_header(stream, str(path)).version in SECTION_VERSIONS:
                    return True
    return False


def _person_keys(keys: BackupKeys, digests: dict[uuid.UUID, str],
                 customer: str) -> PersonKey:
    """A customer's people's keys, by public id: (digest, key), or None for the erased."""
    def person_key(public: uuid.UUID) -> tuple[str, bytes] | None:
        digest = digests[public]
        key = keys.person_key(customer, digest)
        return (digest, key) if key is not None else None
    return person_key


def _read_back(path: Path, provider: KeyProvider, keys: BackupKeys) -> None:
    """Every chunk of every section authenticates, and the bytes on disk are the bytes the
    manifest lists (decompressing is not needed: the compressed stream is what we wrote)."""
    with path.open("rb") as stream:
        reader = BackupReader(stream, provider, str(path))
        for section in reader.sections(keys.customer_key, authenticate_skipped=True):
            if not section.readable:
                raise BackupError(f"backup {path} did not read back as written; check the disk "
                                  f"holding {path.parent} and run `accessd backup` again")


def _free_name(directory: Path, now: dt.datetime) -> Path:
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = directory / f"{PREFIX}{stamp}{SUFFIX}", 1
    while candidate.exists():
        candidate, n = directory / f"{PREFIX}{stamp}-{n}{SUFFIX}", n + 1
    return candidate


# --- restore ----------------------------------------------------------------------------------


def _header(path: Path) -> BackupHeader:
    try:
        with path.open("rb") as stream:
            return read_header(stream, str(path))
    except OSError as exc:
        raise BackupError(f"cannot read backup {path}: {exc.strerror}") from exc


def _stage(path: Path, provider: KeyProvider, keys: BackupKeys, staged: Path,
           work: Path, progress: Progress = no_progress) -> tuple[MergeCounts, list[str]]:
    """Decrypt the backup into ``staged``: the installation's section, then every customer
    section whose key exists; raises before anything live is touched."""
    unreadable: list[str] = []
    merged = MergeCounts()
    try:
        with path.open("rb") as stream:
            reader = BackupReader(stream, provider, str(path))
            size = os.fstat(stream.fileno()).st_size
            progress(stream.tell(), size)
            if reader.header.version not in SECTION_VERSIONS:
                with _create_private(staged) as out:
                    _check_database(reader.whole(), str(path), out)
            else:
                merged = _merge_sections(reader, keys, staged, work, unreadable,
                                         lambda: progress(stream.tell(), size))
            progress(size, size)
    except OSError as exc:
        raise BackupError(f"cannot read backup {path} or write next to the database: "
                          f"{exc.strerror}") from exc
    with contextlib.closing(sqlite3.connect(staged, isolation_level=None)) as copy:
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check(20)")]
    if problems != ["ok"]:
        raise BackupError(f"the database in {path} fails its integrity check "
                          f"({'; '.join(problems[:3])}); use another backup")
    return merged, unreadable


def _merge_sections(reader: BackupReader, keys: BackupKeys, staged: Path, work: Path,
                    unreadable: list[str], step: Callable[[], None]) -> MergeCounts:
    merger: Merger | None = None
    try:
        for section in reader.sections(keys.customer_key):
            step()
            if section.kind is SectionKind.INSTALLATION:
                with _create_private(staged) as out:
                    _check_database(section.blocks(), reader.where, out)
                merger = Merger(staged, work / "history.sqlite3")
            elif not section.readable:
                assert section.customer is not None
                unreadable.append(section.customer)
            else:
                assert merger is not None and section.customer is not None
                customer = section.customer
                part = work / "section.sqlite3"
                with _create_private(part) as out:
                    _check_database(section.blocks(), reader.where, out)
                merger.merge(part, customer, partial(keys.person_key, customer))
                part.unlink()
        assert merger is not None  # the reader refuses a file without its first section
        return merger.finish()
    finally:
        if merger is not None:
            merger.close()


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
                      "--live-database-lost: the backup key file's copy of the ledger stands in")


def _prepare(staged: Path, live: LiveState | None, provider: KeyProvider, keys: BackupKeys,
             certificates: list[PurgeCertificate], created_at: dt.datetime
             ) -> tuple[ReplayReport, int]:
    staged_engine = create_db_engine(f"sqlite:///{staged}")
    try:
        try:
            upgrade(staged_engine)  # a backup from an older accessd gets today's schema
        except StorageError as exc:
            raise BackupError(f"the backup's schema cannot be brought up to date ({exc}); "
                              "was it made by a newer accessd?") from exc
        sessions = make_sessionmaker(staged_engine)
        replay = prepare_restored(sessions, live, provider, key_file_ledger=keys.ledger,
                                  certificates=certificates)
        with sessions() as session:
            since = session.scalar(select(func.count()).select_from(ErasureLedgerEntry).where(
                ErasureLedgerEntry.recorded_at > created_at)) or 0
        checkpoint_wal(staged_engine)
    finally:
        staged_engine.dispose()
    return replay, since


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
    fsync_dir(db_path.parent)


# --- files ------------------------------------------------------------------------------------


def _no_key(_: str) -> None:
    return None


def _check_database(blocks: Iterator[bytes], where: str, out: io.BufferedWriter | None) -> int:
    """Consume ``blocks`` (into ``out``), checking they hold a SQLite database; their size."""
    head, size = b"", 0
    for block in blocks:
        if len(head) < len(_SQLITE_MAGIC):
            head += block[: len(_SQLITE_MAGIC)]
        if out is not None:
            out.write(block)
        size += len(block)
    if not head.startswith(_SQLITE_MAGIC):
        raise BackupError(f"{where} decrypts, but does not hold a SQLite database")
    if out is not None:
        out.flush()
        os.fsync(out.fileno())
    return size


@contextlib.contextmanager
def _workdir(db_path: Path) -> Iterator[Path]:
    """A private scratch directory next to the database (the same protection, the same disk:
    plaintext sections never go near the backup directory, nor SQLite's temporary files near
    /var/tmp); removed whatever happens."""
    work = db_path.with_name(f".{db_path.name}.backup-{secrets.token_hex(4)}.tmp")
    work.mkdir(mode=0o700)
    try:
        with scratch_on(work):
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _private_dir(directory: Path) -> None:
    """``directory``, and every parent that does not exist yet, made with mode 0700."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)  # whatever the umask


def _create_private(path: Path) -> io.BufferedWriter:
    # O_EXCL: never write through a file (or a link) someone placed under our temporary name.
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _blocks(stream: io.BufferedReader) -> Iterator[bytes]:
    while block := stream.read(_BLOCK):
        yield block


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

