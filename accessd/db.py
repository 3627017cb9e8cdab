"""Opening the database: engines with the settings the door relies on, sessions, checks, migrations.

SQLite (the embedded default) gets, on every connection: WAL (the panel is a second process
on the same file), ``foreign_keys`` (cascades are how a purge reaches everything),
``secure_delete`` (deleted rows are zeroed, not left in free pages), ``synchronous=FULL``
(an acknowledged access event survives a power cut) and a busy timeout. Every transaction
starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes fails with
"database is locked" whatever the busy timeout, while an immediate one waits its turn.
PostgreSQL URLs (``postgresql+psycopg://``) work through the same models unchanged.

Alembic is imported only by ``upgrade``: the door daemon runs on a Pi Zero 2 W.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from accessd.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config

BUSY_TIMEOUT_MS = 5000
MAX_PROBLEMS = 100  # integrity problems reported at most
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Execution option: a connection (or an engine derived with ``read_only_engine``) whose
# transactions only read may begin DEFERRED, so history pages never queue behind writers.
_READ_ONLY_OPTION = "accessd_read_only"


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What ``PRAGMA quick_check`` / ``integrity_check`` found: ``ok``, or the problems."""

    ok: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """The three numbers of ``PRAGMA wal_checkpoint``: busy flag, WAL frames, frames copied."""

    busy: bool
    log_frames: int
    checkpointed_frames: int


def create_db_engine(
    url: str | URL, *, echo: bool = False, autocheckpoint: bool = True,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS, **kwargs: Any
) -> Engine:
    """An engine for ``url`` with the SQLite settings above applied to every connection.

    :param autocheckpoint: False for the door daemon: SQLite would otherwise copy the WAL into
        the database inside whichever commit crosses 1000 pages, a stall of tens of
        milliseconds on the door's hot path; the daemon checkpoints from its idle thread
        instead (``checkpoint_wal(engine, passive=True)``).
    :param busy_timeout_ms: how long a SQLite statement waits for another writer. The door's
        events wait far less than everyone else (``accessd.door.recorder``): they have a
        reserve journal to go to.
    :raises StorageError: the URL cannot be parsed or names a driver that is not installed.
    """
    try:
        parsed = make_url(url)
        # Bound values (names, e-mails, ciphertexts) never reach a log line or an error's
        # text: SQLAlchemy leaves them out of both.
        kwargs.setdefault("hide_parameters", True)
        engine = create_engine(parsed, echo=echo, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"cannot use database URL {_masked(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _private_file(parsed.database)
        _configure_sqlite(engine, autocheckpoint, busy_timeout_ms)
    return engine


def _private_file(database: str | None) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use 0644 and the umask), and
    take group and other bits off one that exists: it holds personal data. SQLite gives the
    ``-wal`` and ``-shm`` files the main file's mode."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
        return
    except FileNotFoundError:
        return  # no such directory: SQLite's own error says so on connect
    os.close(fd)


def read_only_engine(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions begin DEFERRED, for read-only work.

    A transaction on it must not write: a deferred read-then-write is exactly what fails with
    "database is locked". On PostgreSQL this changes nothing.
    """
    return engine.execution_options(**{_READ_ONLY_OPTION: True})


def _configure_sqlite(engine: Engine, autocheckpoint: bool, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Take BEGIN away from the sqlite3 module (its legacy mode begins only before DML);
        # the "begin" hook below emits our own. SQLAlchemy's documented pysqlite recipe.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching to WAL waits for other processes.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute("PRAGMA synchronous = FULL")
            if not autocheckpoint:
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """The session factory the services use; objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def bulk_delete_sessions(engine: Engine, *, cache_kib: int) -> Iterator[sessionmaker[Session]]:
    """Sessions on one connection of their own, for a long run of committed delete batches
    (a purge); each batch is still its own transaction, so the door's writes go in between.

    On SQLite that connection keeps a larger page cache (``cache_kib``) for the whole run:
    deleting events in time order also edits the per-person index, a page or two of every
    person per batch, which the default 2 MB cache would spill and read back batch after
    batch. And SQLite's auto-checkpoint is off on it: it would copy each batch's pages from
    the WAL into the database file at every commit, and the pages the next batch changes
    again would be copied again (five times the writes, measured). The WAL grows by about
    what the run deletes until the caller checkpoints it, which a purge must do anyway to
    get the deleted pages out of the ``-wal`` file. Both settings are put back afterwards;
    a connection that cannot be put back is discarded, never returned to the pool.
    """
    with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            yield sessionmaker(connection, expire_on_commit=False)
            return
        raw = connection.connection.dbapi_connection
        assert raw is not None
        saved = {name: raw.execute(f"PRAGMA {name}").fetchone()[0]
                 for name in ("cache_size", "wal_autocheckpoint")}
        raw.execute(f"PRAGMA cache_size = {-int(cache_kib)}")
        raw.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            yield sessionmaker(connection, expire_on_commit=False)
        finally:
            try:
                for name, value in saved.items():
                    raw.execute(f"PRAGMA {name} = {int(value)}")
            except sqlite3.Error:
                connection.invalidate()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back when it raises."""
    with factory() as session, session.begin():
        yield session


def check_integrity(engine: Engine, *, full: bool = False) -> IntegrityReport:
    """Whether the database file can be trusted: ``PRAGMA quick_check`` (or ``integrity_check``).

    Run at start-up: the daemon refuses to decide on rules it cannot trust. ``full`` also
    checks that indexes match their tables (slower: it reads every index). On PostgreSQL,
    which checks its pages itself, this only checks that the server answers.
    """
    pragma = "integrity_check" if full else "quick_check"
    try:
        raw = engine.raw_connection()
    except SQLAlchemyError as exc:
        return IntegrityReport(ok=False, problems=(f"cannot open the database: {exc}",))
    try:
        cursor = raw.cursor()
        try:
            if engine.dialect.name != "sqlite":
                cursor.execute("SELECT 1")
                return IntegrityReport(ok=True)
            # At most MAX_PROBLEMS: a badly damaged file would list thousands of cells.
            cursor.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})")
            rows = [line for row in cursor.fetchall() for line in str(row[0]).splitlines()]
        finally:
            cursor.close()
    except Exception as exc:  # any driver error at all means "do not trust it"
        return IntegrityReport(ok=False, problems=(f"{pragma} failed: {exc}",))
    finally:
        raw.close()
    if rows == ["ok"]:
        return IntegrityReport(ok=True)
    return IntegrityReport(ok=False, problems=tuple(rows))


def checkpoint_wal(engine: Engine, *, passive: bool = False) -> CheckpointResult:
    """Copy the WAL into the database file and truncate it (``wal_checkpoint(TRUNCATE)``).

    ``passive`` copies what it can without waiting for readers or writers and truncates
    nothing: the door daemon's routine checkpoint, off its hot path.

    With ``secure_delete`` the main file is zeroed where rows were deleted, but in WAL mode the
    old pages survive in the ``-wal`` file until this runs: a purge calls it last. ``busy``
    means another connection kept a read open and the WAL could not be fully truncated: retry.

    :raises StorageError: not a SQLite database, or the checkpoint failed.
    """
    if engine.dialect.name != "sqlite":
        raise StorageError("wal_checkpoint applies to SQLite only")
    # A raw connection: the pragma cannot run inside the transaction SQLAlchemy would begin.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(f"PRAGMA wal_checkpoint({'PASSIVE' if passive else 'TRUNCATE'})")
            row = cursor.fetchone()
            assert row is not None  # the pragma always answers one row
        finally:
            cursor.close()
    except sqlite3.Error as exc:
        raise StorageError(f"wal_checkpoint failed: {exc}") from exc
    finally:
        raw.close()
    busy, log_frames, checkpointed = row
    return CheckpointResult(bool(busy), int(log_frames), int(checkpointed))


def alembic_config(engine_or_url: Engine | str | URL) -> Config:
    """An Alembic ``Config`` built in code (no alembic.ini), for ``upgrade`` and for developers.

    New revisions: ``alembic.command.revision(alembic_config(url), autogenerate=True,
    message="...")``, then review the file by hand (it must work on SQLite and PostgreSQL).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if isinstance(engine_or_url, Engine):
        config.attributes["engine"] = engine_or_url
    else:
        # Percent signs in a URL (escaped passwords) would be read as interpolation.
        url = engine_or_url.render_as_string(hide_password=False) if isinstance(
            engine_or_url, URL
        ) else engine_or_url
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest), as ``accessd init`` and
    start-up do. Idempotent: an up-to-date database is left alone.

    :raises StorageError: a migration failed; the database is left at the last good revision.
    """
    from alembic import command

    try:
        command.upgrade(alembic_config(engine_or_url), revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"database migration to {revision} failed: {exc}") from exc


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or ``None`` when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _masked(url: str | URL) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as nothing rather than leaked
        return "<unparsable URL>"
