"""`accessd ... | head -1`: the reader leaving early is not an error, and prints no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.customers.conftest import write_config


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path, db_path: Path,
                                                          engine: object) -> None:
    config = write_config(tmp_path, f"sqlite:///{db_path}")
    with subprocess.Popen(
            [sys.executable, "-m", "accessd.cli", "--config", str(config), "register",
             "--format", "md", "--lang", "both"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE) as command:
        assert command.stdout is not None and command.stderr is not None
        command.stdout.close()  # as `| head -1` does once it has its line: writes now fail
        errors = command.stderr.read().decode()
        assert command.wait(timeout=60) == 0, errors
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
