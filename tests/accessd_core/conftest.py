"""Fixtures: a fresh SQLite file per test, a keyring, and a throwaway PostgreSQL server.

The PostgreSQL server is real: initdb in a temporary directory, started once per session as
the ``postgres`` user when running as root (initdb refuses root), on a free port, with fsync
off (test data only), and stopped in a ``finally`` even when the run fails. Each test gets a
fresh database on it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker, upgrade

PG_GLOB = "/usr/lib/postgresql/*/bin"


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob(f"{PG_GLOB}/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _install_postgresql() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        check=True,
        env=env,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a running throwaway PostgreSQL server (its ``postgres`` database)."""
    is_root = os.geteuid() == 0
    bindir = _pg_bindir()
    if bindir is None and is_root and shutil.which("apt-get"):
        _install_postgresql()
        bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(
            f"no PostgreSQL binaries under {PG_GLOB} and not root to install them; run as "
            "root: apt-get install -y postgresql"
        )
    run_as: dict[str, Any] = {}
    base = tempfile.mkdtemp(prefix="accessd-pg-")
    if is_root:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root but there is no postgres user to run initdb as")
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = {"user": "postgres", "group": account.pw_gid}
    data, log, port = Path(base) / "data", Path(base) / "log", _free_port()
    pg_ctl = str(bindir / "pg_ctl")
    started = False
    try:
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, cwd=base, **run_as,
        )  # fmt: skip
        started = True
        subprocess.run(
            [pg_ctl, "-D", str(data), "-l", str(log), "-w", "start", "-o",
             f"-F -k {base} -p {port} -c listen_addresses=127.0.0.1"],
            check=True, capture_output=True, cwd=base, **run_as,
        )  # fmt: skip
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text() if log.exists() else ""
        pytest.fail(f"could not start PostgreSQL: {exc.stderr!r}\n{server_log}")
    finally:
        if started:
            subprocess.run(
                [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True, cwd=base, **run_as,
            )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def _fresh_pg_database(server_url: str) -> Iterator[str]:
    name = f"accessd_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of this test's own."""
    return f"sqlite:///{tmp_path / 'accessd.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    """An empty database of this test's own, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    with _fresh_pg_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a migrated database (SQLite and PostgreSQL)."""
    eng = create_db_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine on a migrated SQLite file."""
    eng = create_db_engine(sqlite_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine``."""
    return make_sessionmaker(engine)


@pytest.fixture
def keyring(tmp_path: Path) -> FileKeyProvider:
    """A new keyring file (mode 0600) in this test's directory."""
    return FileKeyProvider.create(tmp_path / "keys" / "keyring.json")
