"""The staff panel's application factory (the package's map is in ``web/__init__.py``).

``create_app(config)`` builds it; nothing runs at import time. Each area is a module
``web/pages/<area>.py`` exporting a blueprint ``bp`` (and optionally ``nav``, its menu links);
``create_app`` registers every such module it finds, so a new page is one module plus its
templates. Its views must declare their access (``web.security``) or the app refuses to start.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from accessd.config import Settings, load_settings
from accessd.crypto import FileKeyProvider, KeyProvider
from accessd.db import create_db_engine, make_sessionmaker
from accessd.models import utcnow
from web import error_pages, pages
from web.i18n import init_i18n
from web.metrics import init_metrics
from web.navigation import NavLink, register_links, visible_links
from web.panel import EXTENSION, Panel, close_db, current_panel
from web.request_audit import init_audit
from web.routing import CONVERTERS
from web.secret import choose_secret_key
from web.security import check_declared_access, current_staff, init_security
from web.times import site_time, time_text

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "ACCESSD_INSECURE_HTTP": False,
    "ACCESSD_PROXY_HOPS": 0,
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # forms are small; a CSV upload page can raise it
    "TEMPLATES_AUTO_RELOAD": False,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the panel.

    ``config`` holds Flask settings and these of ours:

    - ``ACCESSD_SETTINGS``: the accessd ``Settings`` (as the daemon loaded them), or
      ``ACCESSD_CONFIG``: the path of the TOML file to load them from (default: the
      ``ACCESSD_CONFIG`` environment variable, then /etc/accessd/accessd.toml);
    - ``ACCESSD_DATABASE_URL`` / ``ACCESSD_KEY_PROVIDER``: use these instead of the settings'
      (tests); the settings are not loaded when both are given together with
      ``SECRET_KEY`` (or ``TESTING``);
    - ``ACCESSD_CLOCK``: a callable returning the current UTC time (tests move it);
    - ``ACCESSD_INSECURE_HTTP``: cookies without Secure, for the plain-HTTP demo only
      (logged as a warning and shown on every page);
    - ``ACCESSD_PROXY_HOPS``: how many reverse proxies to trust for the client address and
      scheme (0: none; 1 behind the usual TLS proxy);
    - ``TRUSTED_HOSTS``: Flask's list of host names to answer to; default: the settings'
      ``[web] trusted_hosts``. Any other Host header gets 400 before routing, so no redirect
      (Werkzeug's trailing-slash ones are absolute) and no URL can carry a stranger's host.

    :raises ConfigError: no real secret key (outside ``TESTING``), or invalid settings.
    :raises KeyFileError: the keyring cannot be read.
    """
    app = Flask("web")  # the package: its templates, static files and logger name
    app.jinja_env.trim_blocks = True  # readable HTML source without template noise
    app.jinja_env.lstrip_blocks = True
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(config or {})
    settings = _settings(app.config)
    key_file = settings.web.secret_key_file if settings is not None else None
    app.config["SECRET_KEY"] = choose_secret_key(app.config, key_file)
    app.extensions[EXTENSION] = panel = _panel(app.config, settings)
    if app.config.get("TRUSTED_HOSTS") is None:
        app.config["TRUSTED_HOSTS"] = panel.site_settings.web.host_names()
    hops = int(app.config["ACCESSD_PROXY_HOPS"])
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    app.url_map.converters.update(CONVERTERS)  # before any rule is added
    init_audit(app)  # first: every request is audited, even one refused by later hooks
    init_metrics(app)
    init_security(app)
    init_i18n(app)
    app.teardown_appcontext(close_db)
    _register_areas(app)
    check_declared_access(app)
    app.context_processor(_template_globals)
    return app


def _settings(config: Mapping[str, Any]) -> Settings | None:
    given = config.get("ACCESSD_SETTINGS")
    if given is not None:
        if not isinstance(given, Settings):
            raise TypeError("ACCESSD_SETTINGS must be an accessd.config.Settings")
        return given
    self_sufficient = all(
        config.get(key) for key in ("ACCESSD_DATABASE_URL", "ACCESSD_KEY_PROVIDER")
    ) and bool(config.get("SECRET_KEY") or config.get("TESTING"))
    if self_sufficient and not config.get("ACCESSD_CONFIG"):
        return None
    return load_settings(config.get("ACCESSD_CONFIG"))


def _panel(config: Mapping[str, Any], settings: Settings | None) -> Panel:
    url = config.get("ACCESSD_DATABASE_URL") or (settings.database.url if settings else None)
    if not url:
        raise ValueError("no database: give ACCESSD_SETTINGS or ACCESSD_DATABASE_URL")
    keys: KeyProvider | None = config.get("ACCESSD_KEY_PROVIDER")
    if keys is None:
        assert settings is not None and settings.keys.master_key_file is not None
        keys = FileKeyProvider(
            Path(settings.keys.master_key_file), read_only=settings.keys.from_credential
        )
    engine = create_db_engine(url)
    return Panel(
        engine=engine,
        sessions=make_sessionmaker(engine),
        keys=keys,
        clock=config.get("ACCESSD_CLOCK") or utcnow,
        insecure_http=bool(config.get("ACCESSD_INSECURE_HTTP")),
        settings=settings,
    )


def _register_areas(app: Flask) -> None:
    app.register_blueprint(error_pages.bp)
    for module_info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{pages.__name__}.{module_info.name}")
        blueprint = getattr(module, "bp", None)
        if not isinstance(blueprint, Blueprint):
            continue
        app.register_blueprint(blueprint)
        links: list[NavLink] = getattr(module, "nav", [])
        register_links(app, links)


def _template_globals() -> dict[str, Any]:
    staff = current_staff()
    return {
        "staff": staff,
        "nav_links": visible_links(),
        "insecure_http": current_panel().insecure_http,
        "open_alarms": _open_alarm_count() if staff is not None else 0,
        "site_time": site_time,
        "time_text": time_text,
    }


def _open_alarm_count() -> int | None:
    """The header's alarm indicator: open alarms of the whole site (a read that takes no
    lock, on every page a signed-in person sees); None when the database cannot say, so that
    an error page still renders."""
    from sqlalchemy.exc import SQLAlchemyError

    from accessd.door.alarms import open_alarm_count
    from web.pages.customers import read_only_session

    try:
        with read_only_session() as session:
            return open_alarm_count(session)
    except SQLAlchemyError as exc:
        logging.getLogger(__name__).warning("cannot count the open alarms: %s", exc)
        return None
