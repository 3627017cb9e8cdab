"""A site's database on the real PostgreSQL server the suite starts (``tests.accessd_core``),
migrated, with doors and a customer; and a door's spool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from accessd.db import create_db_engine, upgrade
from tests.accessd_core.conftest import _fresh_pg_database, keyring, postgres_server

__all__ = ["keyring", "postgres_server"]


@pytest.fixture
def site_url(postgres_server: str) -> Iterator[str]:
    """A migrated database of this test's own on the PostgreSQL server."""
    with _fresh_pg_database(postgres_server) as url:
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def site_engine(site_url: str) -> Iterator[Engine]:
    engine = create_db_engine(site_url)
    yield engine
    engine.dispose()


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "door" / "spool.sqlite3"
