"""The dashboard says so when the door cannot write to its database (issue 12, finding 1):
the door's data directory on a small file system of the test's own, filled up while the
daemon runs; the door keeps deciding into its reserve journal, and the dashboard, which only
reads, shows the database as failing beside a working daemon, reader and board, then as
online again once space is freed.

(A write lock held by another process is no way to show it: every page of the panel waits
for the same lock, so the panel cannot answer at all then.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from accessd.db import checkpoint_wal
from tests.daemon.conftest import Door, installed
from tests.daemon.test_database_faults import fill, small_disk
from tests.web.pages_fixtures import screenshot
from tests.web.test_dashboard_devices_browser import (
    app_config,
    clock,
    dashboard,
    db_url,
    expect_device,
    keys,
    running,
)

__all__ = ["app_config", "clock", "dashboard", "db_url", "keys", "running", "small_disk"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def door(tmp_path: Path, small_disk: Path) -> Iterator[Door]:
    """The installation with its data directory (database, journal) on the small disk."""
    with installed(tmp_path, small_disk / "data") as installation:
        yield installation


def test_a_database_the_door_cannot_write_is_said_so(
    dashboard: Page, running: Door, small_disk: Path,
) -> None:
    checkpoint_wal(running.engine)  # an empty WAL: the next writes need new space
    filler = fill(small_disk)
    expect_device(dashboard, "database", "failing", "The door cannot write to its database",
                  "the door keeps deciding", "What to do: Free disk space")
    expect_device(dashboard, "daemon", "running")
    expect_device(dashboard, "sensor", "online")
    expect_device(dashboard, "board", "online")
    screenshot(dashboard, "dashboard-database-failing.png")
    filler.unlink()
    expect_device(dashboard, "database", "online")
