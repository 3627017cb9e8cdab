"""Fixtures: a migrated SQLite file per test, a keyring, settings pointing at both, and a
seeded world of two customers whose personal data are recognisable canary strings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import BackupSettings, DatabaseSettings, KeySettings, Settings
from accessd.crypto import FileKeyProvider
from tests.rights.seed import World, seed_world


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def db_path(data_dir: Path) -> Path:
    return data_dir / "accessd.sqlite3"


@pytest.fixture
def keys(tmp_path: Path) -> FileKeyProvider:
    """The installation's keyring (mode 0600)."""
    return FileKeyProvider.create(tmp_path / "keyring.json")


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path, db_path: Path) -> Settings:
    return Settings(data_dir=data_dir, database=DatabaseSettings(url=f"sqlite:///{db_path}"),
                    keys=KeySettings(master_key_file=tmp_path / "keyring.json"),
                    backup=BackupSettings(dir=tmp_path / "backups"))


@pytest.fixture
def world(sessions: sessionmaker[Session], keys: FileKeyProvider) -> World:
    """Two customers, three people with sealed fingers, two doors, chained access events."""
    with sessions.begin() as session:
        return seed_world(session, keys)
