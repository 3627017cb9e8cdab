"""The production server: waitress serves the panel with its headers, naming no software."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accessd.config import Settings, load_settings, write_default_config
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, upgrade
from web.panel import current_panel
from web.secret import create_secret_key_file
from web.wsgi import make_server, panel_app, split_bind


@pytest.fixture
def installed(tmp_path: Path) -> Settings:
    """An installation as `accessd init` leaves it: config, keyring, web key, database."""
    config = write_default_config(tmp_path / "accessd.toml", tmp_path / "data")
    settings = load_settings(config)
    assert settings.keys.master_key_file is not None
    FileKeyProvider.create(settings.keys.master_key_file)
    create_secret_key_file(settings.web.secret_key_file)
    engine = create_db_engine(settings.database.url)
    upgrade(engine)
    engine.dispose()
    return settings


def _get(settings: Settings, headers: dict[str, str], proxy_hops: int = 0) -> Iterator[Any]:
    app = panel_app(settings, proxy_hops=proxy_hops)
    server: Any = make_server(app, "127.0.0.1:0", threads=2, proxy_hops=proxy_hops)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        connection.request("GET", "/login", headers=headers)
        response = connection.getresponse()
        body = response.read().decode()
        connection.close()
        yield response, body
    finally:
        server.close()
        thread.join(timeout=10)
        current_panel(app).engine.dispose()


def test_bind_addresses_split_into_host_and_port() -> None:
    assert split_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert split_bind("[::1]:8443") == ("::1", 8443)


def test_waitress_serves_the_panel_from_the_daemons_settings(installed: Settings) -> None:
    for response, body in _get(installed, {}):
        assert response.status == 200
        assert "Sign in" in body
        assert "frame-ancestors 'none'" in response.getheader("Content-Security-Policy", "")
        assert response.getheader("Server") is None
        assert response.getheader("Strict-Transport-Security") is None


def test_behind_a_proxy_https_is_recognised(installed: Settings) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    for response, _body in _get(installed, forwarded, proxy_hops=1):
        assert response.getheader("Strict-Transport-Security")


def test_without_a_proxy_forwarded_headers_are_ignored(installed: Settings) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    for response, _body in _get(installed, forwarded):
        assert response.getheader("Strict-Transport-Security") is None
