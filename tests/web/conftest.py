"""Fixtures for the panel: a migrated SQLite file per test, a keyring, a clock tests move,
staff users with known credentials, and clients that sign in the way a person does.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker, session_scope, upgrade
from accessd.models import StaffRole
from accessd.staff import create_staff_user
from web import create_app
from web.panel import current_panel

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move forward by ``timedelta(**delta)``."""
        self.now += dt.timedelta(**delta)


@dataclass(frozen=True)
class StaffMember:
    """A staff account made for a test, with what its owner knows."""

    username: str
    role: StaffRole
    password: str
    totp_secret: str

    def code(self, at: dt.datetime) -> str:
        """The code the owner's authenticator app shows at ``at``."""
        return pyotp.TOTP(self.totp_secret).at(at)


@pytest.fixture
def clock() -> FakeClock:
    """The time as the panel and the services see it."""
    return FakeClock()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated with ``accessd.db.upgrade``, copied for each test (faster
    than migrating 170 times; each test still starts from a fresh, fully migrated file)."""
    path = tmp_path_factory.mktemp("template") / "accessd.sqlite3"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def db_url(tmp_path: Path, migrated_template: Path) -> str:
    """A fresh SQLite file of this test's own, migrated."""
    path = tmp_path / "accessd.sqlite3"
    shutil.copyfile(migrated_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def keys(tmp_path: Path) -> FileKeyProvider:
    """A new keyring (mode 0600)."""
    return FileKeyProvider.create(tmp_path / "keys" / "keyring.json")


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test database, for arranging and checking rows directly."""
    engine = create_db_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def app_config(db_url: str, keys: FileKeyProvider, clock: FakeClock) -> dict[str, Any]:
    """What ``create_app`` gets in tests; a test may change it before asking for ``app``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "ACCESSD_DATABASE_URL": db_url,
        "ACCESSD_KEY_PROVIDER": keys,
        "ACCESSD_CLOCK": clock,
    }


@pytest.fixture
def make_app(app_config: dict[str, Any]) -> Iterator[Any]:
    """Builds apps on the test database (several mean several processes, or a restart)."""
    made: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        app = create_app({**app_config, **overrides})
        made.append(app)
        return app

    yield build
    for app in made:
        current_panel(app).engine.dispose()


@pytest.fixture
def app(make_app: Any) -> Flask:
    """The panel under test."""
    return make_app()  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser without cookies yet."""
    return app.test_client()


@pytest.fixture
def make_staff(sessions: sessionmaker[Session], keys: FileKeyProvider, clock: FakeClock) -> Any:
    """Creates staff accounts with a chosen password (so no forced change at sign-in)."""

    def make(username: str, role: StaffRole | str = StaffRole.ADMIN) -> StaffMember:
        with session_scope(sessions) as db:
            issued = create_staff_user(
                db, username, StaffRole(role), provider=keys, now=clock(), password=PASSWORD
            )
            assert issued.totp_secret is not None
            return StaffMember(username, StaffRole(role), PASSWORD, issued.totp_secret)

    return make


@pytest.fixture
def admin(make_staff: Any) -> StaffMember:
    """An admin account."""
    return make_staff("ada", StaffRole.ADMIN)  # type: ignore[no-any-return]


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of a form page, as a browser would read it from the HTML."""
    response = client.get(path)
    match = _CSRF.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {response.status_code})"
    return match.group(1) or match.group(2)


def sign_in(
    client: FlaskClient,
    member: StaffMember,
    clock: FakeClock,
    *,
    password: str | None = None,
    code: str | None = None,
    next_step: bool = True,
) -> TestResponse:
    """Submit the sign-in form as ``member``; by default moves to a fresh TOTP step first
    (an authenticator app shows a new code every 30 s, and a used code is refused)."""
    if next_step:
        clock.advance(seconds=30)
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={
            "csrf_token": token,
            "username": member.username,
            "password": member.password if password is None else password,
            "code": member.code(clock()) if code is None else code,
        },
    )


@pytest.fixture
def signed_in(client: FlaskClient, admin: StaffMember, clock: FakeClock) -> FlaskClient:
    """A client signed in as the admin."""
    response = sign_in(client, admin, clock)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium (``playwright install`` cannot download one here), kept offline."""
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-gpu",
        ],
    }


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The panel on a free port of 127.0.0.1 in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
