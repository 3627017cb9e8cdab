"""The shipped units and rules (``deploy/``), read as systemd and udev read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("accessd.service", "accessd-web.service")
INSTALLED_ACCESSD = "/opt/accessd/venv/bin/accessd"


def unit_settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting of a unit file, in order (keys repeat)."""
    settings, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.append((section, key.strip(), value.strip()))
    return settings


def values(text: str, key: str) -> list[str]:
    return [v for _, k, v in unit_settings(text) if k == key]


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is missing: run scripts/install-system-deps (Debian's "
                    "systemd package; systemd need not be running)")
    return path


def verify(systemd_analyze: str, units: list[Path]) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify``: it exits 0 even on a setting it ignores, so what counts is
    that it said nothing."""
    return subprocess.run([systemd_analyze, "verify", *map(str, units)], capture_output=True,
                          text=True, check=False, cwd=units[0].parent)


def with_executable(text: str, accessd: Path) -> str:
    """The unit as it would be with accessd installed at ``accessd`` (verify checks that every
    command it starts exists and is executable)."""
    return text.replace(INSTALLED_ACCESSD, str(accessd))
