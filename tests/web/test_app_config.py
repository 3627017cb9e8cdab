"""Building the app: no real secret key, no start (outside tests); the daemon's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from accessd.config import load_settings, write_default_config
from accessd.crypto import FileKeyProvider
from accessd.errors import ConfigError
from web import create_app
from web.panel import current_panel
from web.secret import create_secret_key_file


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (None, "web secret key file"),
        ("dev", "at least 32"),
        ("change-me", "at least 32"),
        ("short-but-not-a-placeholder", "at least 32"),
    ],
)
def test_the_panel_refuses_to_start_without_a_real_secret_key(
    app_config: dict[str, Any], tmp_path: Path, secret: str | None, problem: str
) -> None:
    config = {**app_config, "TESTING": False, "SECRET_KEY": secret}
    if secret is None:
        config["ACCESSD_CONFIG"] = str(_config_file(tmp_path, with_secret=False))
    with pytest.raises(ConfigError, match=problem):
        create_app(config)


def test_tests_may_run_without_a_secret_key(app_config: dict[str, Any]) -> None:
    app = create_app({**app_config, "SECRET_KEY": None})
    assert len(app.config["SECRET_KEY"]) >= 32
    current_panel(app).engine.dispose()


def _config_file(tmp_path: Path, *, with_secret: bool = True) -> Path:
    data = tmp_path / "data"
    config = write_default_config(tmp_path / "accessd.toml", data)
    settings = load_settings(config)
    assert settings.keys.master_key_file is not None
    FileKeyProvider.create(settings.keys.master_key_file)
    if with_secret:
        create_secret_key_file(settings.web.secret_key_file)
    return config


def test_the_panel_uses_the_daemons_settings(tmp_path: Path) -> None:
    from accessd.db import create_db_engine, upgrade

    config = _config_file(tmp_path)
    settings = load_settings(config)
    engine = create_db_engine(settings.database.url)
    upgrade(engine)
    engine.dispose()
    app = create_app({"ACCESSD_CONFIG": str(config)})
    panel = current_panel(app)
    assert str(panel.engine.url) == settings.database.url
    assert panel.settings == settings
    assert app.test_client().get("/login").status_code == 200
    panel.engine.dispose()
    again = create_app({"ACCESSD_SETTINGS": settings})
    assert current_panel(again).settings is settings
    current_panel(again).engine.dispose()


def test_a_secret_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    config = _config_file(tmp_path)
    settings = load_settings(config)
    os.chmod(settings.web.secret_key_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        create_app({"ACCESSD_SETTINGS": settings})


def test_the_secret_key_file_is_created_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "web-secret.key"
    create_secret_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_bytes().strip()) >= 32
    with pytest.raises(ConfigError, match="exists already"):
        create_secret_key_file(path)


def test_importing_the_panel_reads_no_config_and_opens_nothing(tmp_path: Path) -> None:
    code = (
        "import pkgutil, importlib, web\n"
        "for m in pkgutil.walk_packages(web.__path__, 'web.'): importlib.import_module(m.name)\n"
    )
    env = {**os.environ, "ACCESSD_CONFIG": str(tmp_path / "missing.toml")}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
