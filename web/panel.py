"""What every view reaches for: the accessd database, keyring and clocks behind the panel.

One ``Panel`` per app (``app.extensions["accessd"]``), built by ``create_app``. A request gets
its own SQLAlchemy session from ``db()``; views commit what they change, and whatever is not
committed is rolled back when the request ends. ``Panel.site`` is the site's clock (its zone,
"today at the site", local times), the same ``SiteClock`` the CLI builds from its settings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

from flask import Flask, current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from accessd.clock import SiteClock
from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.staff import Clock

EXTENSION = "accessd"


@dataclass
class Panel:
    """The panel's handles on accessd: the same database and keyring as the daemon."""

    engine: Engine
    sessions: sessionmaker[Session]
    keys: KeyProvider
    clock: Clock
    insecure_http: bool
    settings: Settings | None

    def now(self) -> dt.datetime:
        """The current time (UTC, aware) from the injected clock."""
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the panel's clock must return timezone-aware datetimes (UTC)")
        return moment

    @cached_property
    def site_settings(self) -> Settings:
        """The settings the daemon runs with (the defaults when the panel was given none:
        tests)."""
        return self.settings or Settings()

    @cached_property
    def site(self) -> SiteClock:
        """The site's clock: its zone and "today at the site", on the injected clock."""
        return SiteClock.of(self.site_settings, wall=self.now)


def current_panel(app: Flask | None = None) -> Panel:
    """The ``Panel`` of ``app`` (default: the app handling this request)."""
    panel: Panel = (app or current_app).extensions[EXTENSION]
    return panel


def db() -> Session:
    """This request's database session (opened on first use, closed when the request ends)."""
    if "db" not in g:
        g.db = current_panel().sessions()
    session: Session = g.db
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """Close this request's session; anything not committed is rolled back."""
    session = g.pop("db", None)
    if session is not None:
        session.close()


def source_address() -> str | None:
    """Where the request came from (the proxy's client address when PROXY_HOPS is set)."""
    return request.remote_addr
