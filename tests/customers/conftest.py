"""Fixtures: a fresh migrated SQLite file per test, the site's settings, and the CLI on a
configuration file of its own."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.main import main
from accessd.clock import WallClock
from accessd.config import Settings, write_default_config


@pytest.fixture
def database_url(db_path: Path) -> str:
    """The URL of this test's own migrated SQLite file (``engine``: tests/conftest.py)."""
    return f"sqlite:///{db_path}"


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction, committed when the test ends normally (as a caller would)."""
    with sessions() as s, s.begin():
        yield s


@pytest.fixture
def settings() -> Settings:
    """The defaults: Europe/Amsterdam, no grace period."""
    return Settings()


@dataclass
class Run:
    """What one `accessd ...` invocation did."""

    code: int
    out: str
    err: str


def write_config(directory: Path, database_url: str, *, timezone: str | None = None) -> Path:
    """The default configuration in ``directory``, on ``database_url`` (and in ``timezone``,
    when given, instead of Europe/Amsterdam)."""
    data_dir = directory / "data"
    data_dir.mkdir()
    path = write_default_config(directory / "accessd.toml", data_dir)
    text = re.sub(r'(?m)^url = ""$', f'url = "{database_url}"', path.read_text())
    assert database_url in text
    if timezone is not None:
        text = re.sub(r'(?m)^timezone = ".*"$', f'timezone = "{timezone}"', text)
        assert f'timezone = "{timezone}"' in text
    path.write_text(text)
    return path


def cli(config_file: Path, capsys: pytest.CaptureFixture[str],
        wall: WallClock | None = None) -> Callable[..., Run]:
    """Runs `accessd --config CONFIG_FILE ARGS...` in-process; ``wall``, when given, is the
    current time as the command sees it (tests move it instead of sleeping)."""

    def run(*argv: str) -> Run:
        try:
            code = main(["--config", str(config_file), *argv], wall=wall)
        except SystemExit as exc:  # argparse refuses bad input this way
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def config_file(tmp_path: Path, database_url: str, engine: Engine) -> Path:
    """A configuration whose database is this test's migrated SQLite file."""
    return write_config(tmp_path, database_url)


@pytest.fixture
def accessd(config_file: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run `accessd --config <this test's file> ARGS...` in-process."""
    return cli(config_file, capsys)
