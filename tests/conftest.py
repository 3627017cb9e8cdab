"""Suite-wide fixtures: a migrated SQLite database of each test's own.

Areas keep their other fixtures in their own folder's conftest.py, and may override
``db_path`` to put the file elsewhere.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from accessd.db import checkpoint_wal, create_db_engine, make_sessionmaker, upgrade


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head per test run; each test gets a copy (migrating is slow)."""
    path = tmp_path_factory.mktemp("migrated") / "accessd.sqlite3"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    checkpoint_wal(engine)  # everything in the main file, so one copy is the whole database
    engine.dispose()
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "accessd.sqlite3"


@pytest.fixture
def engine(db_path: Path, migrated_database: Path) -> Iterator[Engine]:
    """An engine on a migrated SQLite file of this test's own."""
    shutil.copyfile(migrated_database, db_path)
    eng = create_db_engine(f"sqlite:///{db_path}")
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)
