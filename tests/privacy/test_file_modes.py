"""What holds personal data is readable by accessd's own user only: files 0600, folders 0700."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker, upgrade
from tests.privacy.seed import access, add_customer, add_door, enrol, purge_completely


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The umask a careless shell or unit file might leave: 0022 (files 0644, folders 0755)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_database_and_its_wal_are_private_whatever_the_umask(
        tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "fresh.sqlite3"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
            assert _mode(Path(f"{path}-wal")) == 0o600
    finally:
        engine.dispose()
    assert _mode(path) == 0o600


def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    path.touch()
    path.chmod(0o644)
    create_db_engine(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600


def test_purge_certificates_are_private_whatever_the_umask(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path, loose_umask: None) -> None:
    with sessions.begin() as session:
        door = add_door(session)
        leaving = add_customer(session, "Leaving BV", contract_end=dt.date(2025, 6, 30))
        person, _finger = enrol(session, keyring, leaving, "Pat Leaving")
        access(session, leaving, person, dt.datetime(2025, 6, 1, tzinfo=dt.UTC), door_id=door.id)
    certs = tmp_path / "certs"
    [_record] = purge_completely(sessions, keyring, engine,
                                 dt.datetime(2025, 8, 1, tzinfo=dt.UTC), certificate_dir=certs)
    assert _mode(certs) == 0o700
    files = list(certs.iterdir())
    assert files and all(_mode(f) == 0o600 for f in files)


def test_sessions_on_a_private_database_still_work(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
