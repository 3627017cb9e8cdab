"""Keeping the backup directory honest: old backups deleted, keys of destroyed subjects gone.

What the daemon's hourly reconciliation calls (``backup_housekeeping``, the default of
``accessd.privacy.scheduler.PrivacyScheduler``'s ``prune_backups``), what a purge calls before
it counts as complete (``backup_destruction``), and what ``accessd doctor`` reports
(``check_backups``). Each reads the backup directory only: a missing directory is no error
here (no backup was taken yet), a key file that exists but cannot be read or written is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from accessd.backup.format import OLD_FORMAT_VERSION, read_header
from accessd.backup.keys import (
    KeySync,
    backup_dir,
    forget_customer,
    fsync_dir,
    key_file_path,
    load,
    reseal,
    sync_key_file,
)
from accessd.config import RetentionPeriod, Settings
from accessd.crypto import KeyProvider
from accessd.errors import BackupError, BackupKeysError
from accessd.models import utcnow
from accessd.privacy.certificate import BackupDestruction

SUFFIX = ".backup"
PREFIX = "accessd-"


def list_backups(directory: Path) -> list[tuple[Path, dt.datetime]]:
    """The backups in ``directory``, oldest first, with the time each says it was made (the
    file's modification time when its header is unreadable)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        try:
            with path.open("rb") as stream:
                created = read_header(stream, str(path)).created_at
        except (BackupError, OSError):
            created = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        found.append((path, created))
    return sorted(found, key=lambda item: item[1])


def newest_backup_age(settings: Settings, now: dt.datetime) -> float | None:
    """Seconds since the newest backup in ``backup.dir`` was made; None without one (the
    daemon's ``accessd_backup_age_seconds``)."""
    backups = list_backups(backup_dir(settings))
    return (now - backups[-1][1]).total_seconds() if backups else None


def backups_past_age(settings: Settings, now: dt.datetime) -> list[tuple[Path, dt.datetime]]:
    """The backups older than ``backup.max_age_months`` calendar months, oldest first."""
    cutoff = RetentionPeriod(settings.backup.max_age_months, "month").cutoff(now)
    assert cutoff is not None  # a number of months always has a cutoff
    return [(path, made) for path, made in list_backups(backup_dir(settings)) if made < cutoff]


def prune_backups(settings: Settings, now: dt.datetime) -> list[Path]:
    """Delete the backups older than ``backup.max_age_months`` calendar months; returns them.
    The key file stays: it holds the keys of the backups that remain."""
    deleted = []
    for path, _ in backups_past_age(settings, now):
        path.unlink(missing_ok=True)
        deleted.append(path)
    if deleted:
        fsync_dir(backup_dir(settings))
    return deleted


@dataclass
class Housekeeping:
    """What one run of ``backup_housekeeping`` did."""

    pruned: list[Path] = field(default_factory=list)
    keys: KeySync = field(default_factory=KeySync)


def backup_housekeeping(settings: Settings, sessions: sessionmaker[Session],
                        provider: KeyProvider, now: dt.datetime) -> Housekeeping:
    """The daemon's part: delete backups past their age, then drop from the key file every key
    the erasure ledger says was destroyed (and copy the ledger into it).

    :raises BackupKeysError: the key file exists but cannot be read or written (old backups
        were deleted all the same).
    """
    done = Housekeeping(prune_backups(settings, now))
    done.keys = sync_key_file(backup_dir(settings), sessions, provider, now)
    return done


def sync_backup_keys(settings: Settings, sessions: sessionmaker[Session],
                     provider: KeyProvider) -> str | None:
    """After an erasure or a withdrawal of consent: drop the person's backup key and copy the
    ledger into the key file now. Returns a warning to show when the key file cannot be
    reached (the daemon's hourly reconciliation retries), else None."""
    try:
        sync_key_file(backup_dir(settings), sessions, provider, utcnow())
    except BackupKeysError as exc:
        return (f"{exc}; until it can be updated (the daemon retries hourly), backups taken "
                "before still open for this person")
    return None


def backup_destruction(settings: Settings, sessions: sessionmaker[Session],
                       provider: KeyProvider,
                       clock: Callable[[], dt.datetime] = utcnow) -> BackupDestruction:
    """The purge's ``destroy_backups`` hook (``accessd.privacy.certificate.BackupDestruction``):
    destroys a purged customer's backup keys, and its people's, in the backup key file, and
    says so for the certificate. Raises ``BackupKeysError`` when the key file cannot be
    reached, which leaves the purge ``started``, to be resumed. Idempotent."""
    directory = backup_dir(settings)

    def destroy(customer: str, data_key_destroyed_at: dt.datetime) -> dict[str, Any]:
        forget_customer(directory, sessions, provider, customer, clock())
        return {
            "method": "backup_keys_destroyed",
            "data_key_destroyed_at": _iso(data_key_destroyed_at),
            "keys_destroyed_at": _iso(clock()),
            "templates": "unreadable in every backup: the customer's data key and its backup "
                         "keys no longer exist",
            "other_data": "unreadable in every backup ever taken: each backup holds the "
                          "customer's section and its people's records only under their "
                          "backup keys, which were kept in one key file beside the backups "
                          "(never versioned, never inside a backup) and are now destroyed",
        }

    return destroy


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def key_resealer(settings: Settings, provider: KeyProvider,
                 clock: Callable[[], dt.datetime] = utcnow) -> Callable[[], object]:
    """For ``rotate_master_key(before_retire=...)``: the key file under the new master key."""
    directory = backup_dir(settings)
    return lambda: reseal(directory, provider, clock())


def check_backups(settings: Settings, provider: KeyProvider, now: dt.datetime) -> str:
    """What ``accessd doctor`` says about the backups: a summary when all is well.

    :raises BackupError: naming the backups past ``backup.max_age_months``, backups of format 1
        (a purge cannot reach those), or a key file that is missing or does not open.
    """
    directory = backup_dir(settings)
    backups = list_backups(directory)
    if not backups:
        return f"no backups in {directory} yet"
    problems = []
    old = backups_past_age(settings, now)
    if old:
        names = ", ".join(f"{p.name} ({made:%Y-%m-%d})" for p, made in old)
        problems.append(f"{len(old)} backup(s) older than {settings.backup.max_age_months} "
                        f"months: {names}; the daemon deletes them within the hour, `accessd "
                        "backup prune` now")
    first = [p.name for p, _ in backups if _version(p) == OLD_FORMAT_VERSION]
    if first:
        problems.append(f"{len(first)} backup(s) of format 1 ({', '.join(first)}) hold every "
                        "customer readable under the keyring alone, so a purge cannot reach "
                        "them: take a backup now, then delete them")
    path = key_file_path(directory)
    generation = None
    if len(first) < len(backups):
        try:
            generation = load(path, provider).generation
        except BackupError as exc:
            problems.append(f"{exc} (the backups' customer sections need it)")
    if problems:
        raise BackupError("; ".join(problems))
    newest = backups[-1]
    return (f"{len(backups)} backup(s) in {directory}, newest {newest[0].name}; key file "
            f"generation {generation}")


def _version(path: Path) -> int | None:
    try:
        with path.open("rb") as stream:
            return read_header(stream, str(path)).version
    except (BackupError, OSError):
        return None
