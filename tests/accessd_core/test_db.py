"""The SQLite engine: the pragmas the door relies on, IMMEDIATE transactions, checks, checkpoint."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from accessd.db import (
    BUSY_TIMEOUT_MS,
    bulk_delete_sessions,
    check_integrity,
    checkpoint_wal,
    create_db_engine,
    current_revision,
    make_sessionmaker,
    read_only_engine,
    session_scope,
    upgrade,
)
from accessd.errors import StorageError
from accessd.models import Door
from tests.accessd_core.test_migrations import head_revision


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [
        ("journal_mode", "wal"),
        ("foreign_keys", 1),
        ("secure_delete", 1),
        ("synchronous", 2),  # FULL
        ("busy_timeout", BUSY_TIMEOUT_MS),
    ],
)
def test_every_sqlite_connection_has_the_pragmas_the_door_relies_on(
    sqlite_engine: Engine, pragma: str, expected: object
) -> None:
    # Two connections at once: the settings are per connection, not a first-connect accident.
    # (The second reads only: two IMMEDIATE transactions in one thread would wait for each other.)
    with sqlite_engine.connect() as first, read_only_engine(sqlite_engine).connect() as second:
        for conn in (first, second):
            assert conn.execute(text(f"PRAGMA {pragma}")).scalar() == expected


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    return seen


def test_every_transaction_begins_immediate(sqlite_engine: Engine) -> None:
    seen = _statements(sqlite_engine)
    with make_sessionmaker(sqlite_engine)() as session:
        session.scalars(select(Door)).all()
    assert seen[0] == "BEGIN IMMEDIATE"


def test_read_only_work_begins_deferred(sqlite_engine: Engine) -> None:
    reader = read_only_engine(sqlite_engine)
    seen = _statements(sqlite_engine)
    with make_sessionmaker(reader)() as session:
        session.scalars(select(Door)).all()
    assert seen[0] == "BEGIN"


def _read_then_write(engine: Engine, me: str, i_read: threading.Event,
                     other_read: threading.Event, errors: list[BaseException]) -> None:  # fmt: skip
    try:
        with make_sessionmaker(engine).begin() as session:
            session.scalar(select(func.count()).select_from(Door))
            i_read.set()
            other_read.wait(timeout=0.5)  # both read before either writes, if SQLite lets them
            session.add(Door(name=me))
            session.flush()
            time.sleep(0.2)
    except BaseException as exc:
        errors.append(exc)


def _race(engines: tuple[Engine, Engine]) -> list[BaseException]:
    errors: list[BaseException] = []
    read = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_read_then_write, args=(engines[0], "a", read[0], read[1], errors)),
        threading.Thread(target=_read_then_write, args=(engines[1], "b", read[1], read[0], errors)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_two_processes_reading_then_writing_wait_instead_of_failing(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engines = create_db_engine(sqlite_url), create_db_engine(sqlite_url)  # two "processes"
    try:
        assert _race(engines) == []
        with engines[0].connect() as conn:
            assert conn.execute(select(func.count()).select_from(Door)).scalar() == 2
    finally:
        for engine in engines:
            engine.dispose()


def test_why_a_deferred_read_then_write_is_not_good_enough(sqlite_url: str) -> None:
    # The same engines with a plain (deferred) BEGIN: what read_only_engine warns against.
    upgrade(sqlite_url)
    plain = tuple(read_only_engine(create_db_engine(sqlite_url)) for _ in range(2))
    try:
        errors = _race((plain[0], plain[1]))
        assert any(isinstance(e, OperationalError) and "database is locked" in str(e)
                   for e in errors), errors  # fmt: skip
    finally:
        for engine in plain:
            engine.dispose()


def test_session_scope_commits_on_success_and_rolls_back_on_error(sqlite_engine: Engine) -> None:
    factory = make_sessionmaker(sqlite_engine)
    with session_scope(factory) as session:
        session.add(Door(name="kept"))
    with pytest.raises(RuntimeError), session_scope(factory) as session:
        session.add(Door(name="rolled-back"))
        session.flush()
        raise RuntimeError("boom")
    with factory() as session:
        assert session.scalars(select(Door.name)).all() == ["kept"]


def test_a_sound_database_passes_the_integrity_check(sqlite_engine: Engine) -> None:
    assert check_integrity(sqlite_engine).ok
    assert check_integrity(sqlite_engine, full=True).ok


def test_a_corrupted_database_file_is_reported_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "accessd.sqlite3"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    with make_sessionmaker(engine).begin() as session:
        session.add_all(Door(name=f"door-{i:05}-" + "x" * 80) for i in range(2000))
    checkpoint_wal(engine)
    engine.dispose()
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(4 * page, len(data) - page, 7 * page):  # scribble over pages, not page 1
        data[start + 8 : start + 600] = b"\xa5" * 592
    path.write_bytes(bytes(data))

    damaged = create_db_engine(f"sqlite:///{path}")
    try:
        report = check_integrity(damaged)
        assert not report.ok
        assert report.problems
        assert report.problems != ("ok",)
    finally:
        damaged.dispose()


def test_checkpoint_truncate_leaves_no_deleted_bytes_in_the_files(tmp_path: Path) -> None:
    path = tmp_path / "accessd.sqlite3"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    canary = "CANARY-7f3a9c-" * 4
    with make_sessionmaker(engine).begin() as session:
        session.add(Door(name=canary))
    with make_sessionmaker(engine).begin() as session:
        session.query(Door).delete()
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0
    result = checkpoint_wal(engine)
    assert not result.busy
    assert wal.stat().st_size == 0
    for file in (path, wal):
        assert canary.encode() not in file.read_bytes(), file
    engine.dispose()


def test_bulk_delete_batches_commit_one_by_one_and_leave_the_pool_as_it_was(
    tmp_path: Path
) -> None:
    path = tmp_path / "accessd.sqlite3"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    with make_sessionmaker(engine).begin() as session:
        session.add_all([Door(name=f"door {n}") for n in range(3)])

    def pragmas() -> tuple[int, int]:
        with engine.connect() as conn:
            return (conn.exec_driver_sql("PRAGMA cache_size").scalar_one(),
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())

    before = pragmas()
    with bulk_delete_sessions(engine, cache_kib=8192) as purging:
        for n in range(3):
            with purging.begin() as session:
                assert session.execute(text("PRAGMA cache_size")).scalar() == -8192
                assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
                session.execute(delete(Door).where(Door.name == f"door {n}"))
            # Committed: another connection sees it at once.
            with make_sessionmaker(engine)() as other:
                assert other.scalar(select(func.count()).select_from(Door)) == 2 - n
    assert pragmas() == before
    engine.dispose()


def test_checkpoint_is_refused_on_postgresql() -> None:
    engine = create_db_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="SQLite only"):
        checkpoint_wal(engine)


def test_an_unusable_database_url_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        create_db_engine("nosuchdb+driver://user:hunter2@host/db")
    assert "hunter2" not in str(caught.value)


def test_upgrade_is_idempotent_and_reports_the_revision(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with Session(engine) as session:
            assert session.execute(text("PRAGMA foreign_key_check")).all() == []
    finally:
        engine.dispose()
