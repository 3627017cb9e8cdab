"""The panel's /metrics, from a real ``accessd web``: requests counted by endpoint (never by
path) with their latency, on their own localhost port; none at all when switched off."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accessd.config import load_settings, write_default_config
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, upgrade
from tests.installation import set_config
from tests.observability.test_daemon_metrics import free_port, scrape, until, up, value
from web.secret import create_secret_key_file

pytestmark = pytest.mark.slow


def install(tmp_path: Path, **config: object) -> Path:
    path = write_default_config(tmp_path / "accessd.toml", tmp_path / "data")
    set_config(path, config)
    settings = load_settings(path)
    assert settings.keys.master_key_file is not None
    FileKeyProvider.create(settings.keys.master_key_file)
    create_secret_key_file(settings.web.secret_key_file)
    engine = create_db_engine(settings.database.url)
    upgrade(engine)
    engine.dispose()
    return path


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Host": "localhost"})
    status = connection.getresponse().status
    connection.close()
    return status


def panel(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "accessd.cli", "--config", str(config),
                             "web", "--insecure-http"], stderr=subprocess.DEVNULL)


def test_the_panel_counts_requests_by_endpoint_on_its_own_port(tmp_path: Path) -> None:
    web, metrics = free_port(), free_port()
    config = install(tmp_path, **{"web.bind": f"127.0.0.1:{web}",
                                  "metrics.panel_bind": f"127.0.0.1:{metrics}"})
    process = panel(config)
    try:
        until(lambda: up(metrics), "the panel's metrics endpoint")
        until(lambda: _answers(web), "the panel")
        before = value(scrape(metrics), "accessd_panel_requests_total", endpoint="auth.login",
                       method="GET", status="200")
        assert get(web, "/login") == 200
        assert get(web, "/login") == 200
        assert get(web, "/customers/4242/no-such-page-xyz") == 404
        after = scrape(metrics)
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert value(after, "accessd_panel_requests_total", endpoint="auth.login", method="GET",
                 status="200") == before + 2
    assert value(after, "accessd_panel_requests_total", endpoint="unmatched", method="GET",
                 status="404") >= 1
    assert value(after, "accessd_panel_request_seconds_count", endpoint="auth.login") >= 2
    assert not any("4242" in str(labels) for _name, labels in after)  # never a path


def test_metrics_switched_off_open_no_port(tmp_path: Path) -> None:
    web, metrics = free_port(), free_port()
    config = install(tmp_path, **{"web.bind": f"127.0.0.1:{web}",
                                  "metrics.panel_bind": f"127.0.0.1:{metrics}",
                                  "metrics.enabled": False})
    process = panel(config)
    try:
        until(lambda: _answers(web), "the panel")
        time.sleep(0.5)
        assert not up(metrics)
    finally:
        process.terminate()
        process.wait(timeout=15)


def _answers(port: int) -> bool:
    try:
        return get(port, "/login") == 200
    except OSError:
        return False
