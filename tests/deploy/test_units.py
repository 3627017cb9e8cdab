"""The systemd units pass ``systemd-analyze verify`` and say what issue 14 asks of them; the
udev rules name the ports the units allow and the install configures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from accessd.config.settings import KeySettings, SensorSettings
from tests.deploy.conftest import (
    DEPLOY,
    UNITS,
    unit_settings,
    values,
    verify,
    with_executable,
)

VENV_ACCESSD = Path(sys.executable).parent / "accessd"


def daemon_unit() -> str:
    return (DEPLOY / "systemd" / "accessd.service").read_text()


def _copies(tmp_path: Path, edit: dict[str, str] | None = None) -> list[Path]:
    copies = []
    for unit in UNITS:
        text = with_executable((DEPLOY / "systemd" / unit).read_text(), VENV_ACCESSD)
        for old, new in (edit or {}).items():
            text = text.replace(old, new)
        (tmp_path / unit).write_text(text)
        copies.append(tmp_path / unit)
    return copies


def test_the_units_pass_systemd_analyze_verify(systemd_analyze: str, tmp_path: Path) -> None:
    result = verify(systemd_analyze, _copies(tmp_path))
    assert result.returncode == 0 and not result.stdout + result.stderr, result.stderr


@pytest.mark.parametrize("mistake", [
    {"WatchdogSec=30s": "WatchdogSec=half a minute"},
    {"DevicePolicy=closed": "DevicePolicy=shut"},
    {"ProtectSystem=strict": "ProtectSytem=strict"},
])
def test_verify_would_catch_a_mistake(systemd_analyze: str, tmp_path: Path,
                                      mistake: dict[str, str]) -> None:
    result = verify(systemd_analyze, _copies(tmp_path, mistake))
    assert result.stdout + result.stderr


def test_verify_needs_the_command_installed(systemd_analyze: str, tmp_path: Path) -> None:
    """Why the test points ExecStart at this virtualenv: as shipped, the unit names the Pi's."""
    unit = tmp_path / "accessd.service"
    unit.write_text(daemon_unit())
    assert "is not executable" in verify(systemd_analyze, [unit]).stderr


@pytest.mark.parametrize("unit", UNITS)
def test_the_units_are_hardened(systemd_analyze: str, tmp_path: Path, unit: str) -> None:
    """systemd's own exposure score stays "OK" (under 2 of 10), serial ports and all."""
    copy = next(p for p in _copies(tmp_path) if p.name == unit)
    result = subprocess.run([systemd_analyze, "security", "--offline=yes", "--threshold=20",
                             "--no-pager", str(copy)], capture_output=True, text=True,
                            check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]


def test_the_daemon_is_supervised_as_the_issue_asks() -> None:
    text = daemon_unit()
    assert values(text, "Type") == ["notify"]
    assert values(text, "NotifyAccess") == ["main"]
    assert values(text, "Restart") == ["always"]
    assert values(text, "User") == ["accessd"]
    assert values(text, "ExecStartPre") == ["/opt/accessd/venv/bin/accessd migrate"]
    assert values(text, "ExecStart") == ["/opt/accessd/venv/bin/accessd run"]
    (watchdog,) = values(text, "WatchdogSec")
    seconds = int(watchdog.removesuffix("s"))
    # The sensor loop may go this long without turning (4 driver deadlines): the watchdog
    # must not take a slow sensor at its default deadline for a hung loop.
    assert seconds > 4 * SensorSettings().timeout_seconds


def test_the_daemon_reaches_its_two_ports_and_nothing_else_of_the_hardware() -> None:
    text = daemon_unit()
    assert values(text, "DevicePolicy") == ["closed"]
    assert "PrivateDevices" not in [k for _, k, _ in unit_settings(text)]
    allowed = values(text, "DeviceAllow")
    assert "/dev/accessd-sensor rw" in allowed and "/dev/accessd-door rw" in allowed
    assert all(a.startswith(("/dev/accessd-", "char-tty")) for a in allowed), allowed
    assert values(text, "ProtectSystem") == ["strict"]
    assert values(text, "NoNewPrivileges") == ["yes"]
    assert values(text, "PrivateTmp") == ["yes"]
    assert "/var/lib/accessd" in values(text, "ReadWritePaths")
    assert "dialout" in values(text, "SupplementaryGroups")


@pytest.mark.parametrize("unit", UNITS)
def test_the_keyring_is_a_credential_by_the_name_the_config_expects(unit: str) -> None:
    text = (DEPLOY / "systemd" / unit).read_text()
    (credential,) = values(text, "LoadCredentialEncrypted")
    name, _, path = credential.partition(":")
    assert name == KeySettings().credential_name
    assert path == "/etc/accessd/keyring.cred"


def test_the_udev_rules_give_the_names_the_unit_allows() -> None:
    rules = (DEPLOY / "udev" / "70-accessd.rules").read_text()
    active = [line for line in rules.splitlines() if line and not line.startswith("#")]
    names = {m for line in active for m in re.findall(r'SYMLINK\+="([^"]+)"', line)}
    assert names == {"accessd-sensor", "accessd-door"}
    for line in active:  # every rule: a tty, readable by dialout only
        assert 'SUBSYSTEM=="tty"' in line and 'GROUP="dialout"' in line
        assert 'MODE="0660"' in line
        for pair in line.split(", "):
            assert re.fullmatch(r'[A-Z]+(\{\w+\})?(==|\+=|=)"[^"]*"', pair), pair
    assert any('KERNEL=="ttyAMA0"' in line for line in active)  # the Pi's UART
    assert any('ATTRS{serial}=="@DOOR_SERIAL@", SYMLINK+="accessd-door"' in line
               for line in active)
