"""Fixtures: a migrated SQLite file and a keyring per test, settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import KeySettings, Settings
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker, upgrade


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "accessd.sqlite3"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    """An engine on a migrated SQLite file of this test's own."""
    eng = create_db_engine(f"sqlite:///{db_path}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def keyring(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(tmp_path / "keyring.json")


@pytest.fixture
def settings(tmp_path: Path, keyring: FileKeyProvider) -> Settings:
    """Defaults (site in Europe/Amsterdam), with data_dir and keyring in this test's folder."""
    return Settings(data_dir=tmp_path, keys=KeySettings(master_key_file=keyring.path))
