"""Fixtures: a keyring per test and settings pointing at it (the database: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from accessd.config import KeySettings, Settings
from accessd.crypto import FileKeyProvider


@pytest.fixture
def keyring(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(tmp_path / "keyring.json")


@pytest.fixture
def settings(tmp_path: Path, keyring: FileKeyProvider) -> Settings:
    """Defaults (site in Europe/Amsterdam), with data_dir and keyring in this test's folder."""
    return Settings(data_dir=tmp_path, keys=KeySettings(master_key_file=keyring.path))
