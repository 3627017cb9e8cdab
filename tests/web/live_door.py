"""Fixtures for browser tests of the panel beside a real door daemon on the simulator: the
panel reads the door's own database and keyring, with the daemon's settings, on a clock that
starts at the real time (the daemon lives in real time). Import them by name."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from accessd.crypto import FileKeyProvider
from tests.daemon.conftest import Door, door
from tests.web.conftest import FakeClock


@pytest.fixture
def db_url(door: Door) -> str:
    """The panel and the staff fixtures use the door's own database."""
    return str(door.settings.database.url)


@pytest.fixture
def keys(door: Door) -> FileKeyProvider:
    """...and its keyring."""
    return door.keys


@pytest.fixture
def clock() -> FakeClock:
    """The daemon lives in real time; the panel's clock starts there too."""
    return FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def app_config(app_config: dict[str, Any], door: Door) -> dict[str, Any]:
    """The daemon's settings (time zone, consent text version, finger limit)."""
    return {**app_config, "ACCESSD_SETTINGS": door.settings}


__all__ = ["app_config", "clock", "db_url", "door", "keys"]
