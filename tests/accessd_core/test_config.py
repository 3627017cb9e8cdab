"""Configuration: one TOML file, validated at load, overridden by environment and command line."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from accessd.config import (
    MASK,
    RETENTION_CATEGORIES,
    AccessSettings,
    ConfigError,
    RetentionPeriod,
    RetentionSettings,
    Settings,
    load_settings,
    write_default_config,
)

FULL_RETENTION = """
[retention]
access_history = "contract_end"
unknown_finger_events = "6 months"
staff_audit_log = "1 year"
login_history = "1 year"
data_subject_requests = "1 year"
"""


def utc(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accessd.toml"
    path.write_text(text)
    return path


def test_default_config_written_by_init_loads_as_the_documented_defaults(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "etc" / "accessd.toml", tmp_path / "data")
    settings = load_settings(path, env={})
    defaults = Settings()
    for section in ("sensor", "door", "access", "enrollment", "retention", "purge"):
        assert getattr(settings, section) == getattr(defaults, section), section
    assert settings.data_dir == tmp_path / "data"
    assert settings.database.url == f"sqlite:///{tmp_path / 'data' / 'accessd.sqlite3'}"
    assert settings.keys.master_key_file == tmp_path / "data" / "keyring.json"
    assert settings.backup.dir == tmp_path / "data" / "backups"
    assert "# unlock time (at least 3; at most 60)" in path.read_text()


def test_init_never_overwrites_an_existing_config(tmp_path: Path) -> None:
    path = write(tmp_path, "# edited by hand\n")
    with pytest.raises(ConfigError, match="already exists"):
        write_default_config(path, tmp_path)
    assert path.read_text() == "# edited by hand\n"


def test_a_missing_config_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, env={})
    assert str(missing) in str(caught.value)
    assert "accessd init" in str(caught.value)


def test_the_config_path_comes_from_accessd_config_when_not_given(tmp_path: Path) -> None:
    path = write(tmp_path, "[door]\nname = 'loading-dock'\n")
    assert load_settings(env={"ACCESSD_CONFIG": str(path)}).door.name == "loading-dock"


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(write(tmp_path, "[access\n"), env={})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[access]\nrelease_seconds = 2",
         "access.release_seconds = 2: must be at least 3 (the lock needs time to release)"),
        ("[access]\nrelese_seconds = 5",
         "unknown key access.relese_seconds; did you mean access.release_seconds?"),
        ("[acess]\nrelease_seconds = 5", "unknown key acess; did you mean access?"),
        ("data_dri = '/tmp'", "unknown key data_dri; did you mean data_dir?"),
        ("[keys]\nfrom_credential = true", "unknown key keys.from_credential"),
        ('[access]\nrelease_seconds = "five"',
         'access.release_seconds = "five": must be a number'),
        ("[access]\nmax_failures = 2.5", "access.max_failures = 2.5: must be a whole number"),
        ("[access]\nmax_failures = true", "access.max_failures = true: must be a whole number"),
        ("[door]\nname = 7", "door.name = 7: must be a string"),
        ("[door]\nname = ''", 'door.name = "": must not be empty'),
        ("[purge]\ngrace_days = 91",
         "purge.grace_days = 91: must be at most 90 (the statements promise destruction"),
        ("[purge]\ngrace_days = -1", "purge.grace_days = -1: must be at least 0"),
        ("[backup]\nmax_age_months = 13",
         "backup.max_age_months = 13: must be at most 12 (backups are kept at most 12 months)"),
        ("[enrollment]\ncaptures = 1", "enrollment.captures = 1: must be at least 2"),
        ("[enrollment]\ncaptures = 4", "enrollment.captures = 4: must be at most 3"),
        ("[sensor]\ndriver = 'r503'", 'sensor.driver = "r503": must be one of "zfm"'),
        ("[door]\ndriver = 'gpio'", 'door.driver = "gpio": must be one of "doorboard", "lcus"'),
        ("[sensor]\nbaud = 50000", "sensor.baud = 50000: must be a multiple of 9600"),
        ("[web]\nbind = 'localhost'", 'web.bind = "localhost": must be "host:port"'),
        ("[database]\nurl = 'mysql://db/x'", "must be a sqlite:/// or postgresql+psycopg:// URL"),
        ("access = 5", "access must be a table ([access])"),
        ("[retention]\naccess_history = 'contract_end'",
         "retention.login_history is missing: when [retention] is written, every data category"),
        (FULL_RETENTION.replace('login_history = "1 year"', 'login_history = "forever"'),
         'retention.login_history = "forever": must be a period such as "90 days"'),
        (FULL_RETENTION.replace('staff_audit_log = "1 year"', 'staff_audit_log = "contract_end"'),
         '"contract_end" applies to access_history only'),
        (FULL_RETENTION.replace('"6 months"', '"0 days"'), "must be a period"),
    ],
)  # fmt: skip
def test_invalid_settings_are_refused_naming_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "[access]\nrelease_seconds = 1\nmax_failures = 0\n[web]\nbnd = 'x'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        ({}, {}, 6.0),
        ({"ACCESSD_ACCESS_RELEASE_SECONDS": "7"}, {}, 7.0),
        ({"ACCESSD_ACCESS_RELEASE_SECONDS": "7"}, {"access.release_seconds": 8}, 8.0),
        ({}, {"access.release_seconds": "9.5"}, 9.5),
    ],
)
def test_command_line_beats_environment_beats_file(
    tmp_path: Path, env: dict[str, str], overrides: dict[str, object], expected: float
) -> None:
    path = write(tmp_path, "[access]\nrelease_seconds = 6\n")
    assert load_settings(path, env=env, overrides=overrides).access.release_seconds == expected


def test_database_url_comes_from_accessd_database_url(tmp_path: Path) -> None:
    url = "postgresql+psycopg://accessd@db.example/accessd"
    settings = load_settings(write(tmp_path, ""), env={"ACCESSD_DATABASE_URL": url})
    assert settings.database.url == url


def test_an_invalid_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, ""), env={"ACCESSD_ACCESS_RELEASE_SECONDS": "2"})
    assert (
        'access.release_seconds = "2" (from ACCESSD_ACCESS_RELEASE_SECONDS): must be at least 3'
        in str(caught.value)
    )


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({"ACCESSD_ACCESS_RELEASE_SECOND": "5"}, {},
         "unknown key ACCESSD_ACCESS_RELEASE_SECOND in the environment; "
         "did you mean ACCESSD_ACCESS_RELEASE_SECONDS?"),
        ({}, {"acess.release_seconds": 5},
         "unknown key acess.release_seconds on the command line; "
         "did you mean access.release_seconds?"),
        ({"ACCESSD_PURGE_GRACE_DAYS": "many"}, {},
         'purge.grace_days = "many" (from ACCESSD_PURGE_GRACE_DAYS): must be a whole number'),
    ],
)  # fmt: skip
def test_unknown_or_invalid_overrides_are_refused(
    tmp_path: Path, env: dict[str, str], overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, ""), env=env, overrides=overrides)
    assert message in str(caught.value)


def test_other_tools_accessd_variables_are_left_alone(tmp_path: Path) -> None:
    env = {"ACCESSD_TEST_SENSOR_PORT": "/dev/pts/3", "ACCESSD_SIM_SPEED": "fast"}
    assert load_settings(write(tmp_path, ""), env=env) is not None


def test_database_password_prints_as_stars(tmp_path: Path) -> None:
    url = "postgresql+psycopg://accessd:s3cr@t@db.example:5432/accessd"
    settings = load_settings(write(tmp_path, f"[database]\nurl = '{url}'\n"), env={})
    assert settings.database.url == url
    for shown in (repr(settings), str(settings), repr(settings.database), str(settings.database)):
        assert "s3cr" not in shown
        assert f"accessd:{MASK}@db.example:5432/accessd" in shown


def test_relative_paths_are_inside_the_data_dir(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "data_dir = 'var'\n[database]\nurl = 'sqlite:///db/a.sqlite3'\n"
        "[keys]\nmaster_key_file = 'secret/keys.json'\n[backup]\ndir = '/srv/backups'\n",
    )
    settings = load_settings(path, env={})
    assert settings.data_dir == tmp_path / "var"
    assert settings.database.url == f"sqlite:///{tmp_path / 'var' / 'db' / 'a.sqlite3'}"
    assert settings.keys.master_key_file == tmp_path / "var" / "secret" / "keys.json"
    assert settings.backup.dir == Path("/srv/backups")
    assert settings.web.secret_key_file == tmp_path / "var" / "web-secret.key"


def test_keyring_comes_from_the_systemd_credential_unless_a_file_is_named(
    tmp_path: Path,
) -> None:
    env = {"CREDENTIALS_DIRECTORY": "/run/credentials/accessd.service"}
    keys = load_settings(write(tmp_path, ""), env=env).keys
    assert keys.master_key_file == Path("/run/credentials/accessd.service/accessd-keyring")
    assert keys.from_credential
    named = load_settings(write(tmp_path, "[keys]\nmaster_key_file = '/k.json'\n"), env=env).keys
    assert named.master_key_file == Path("/k.json")
    assert not named.from_credential


def test_without_a_retention_table_every_category_has_its_default(tmp_path: Path) -> None:
    retention = load_settings(write(tmp_path, ""), env={}).retention
    assert retention == RetentionSettings()
    assert {f.name for f in dataclasses.fields(RetentionSettings)} == set(RETENTION_CATEGORIES)
    assert str(retention.access_history) == "contract_end"
    assert str(retention.unknown_finger_events) == "6 months"
    assert str(retention.staff_audit_log) == "1 year"


@pytest.mark.parametrize(
    ("period", "now", "cutoff"),
    [
        ("6 months", utc(2025, 8, 31, 12), utc(2025, 2, 28, 12)),
        ("1 year", utc(2024, 2, 29), utc(2023, 2, 28)),
        ("90 days", utc(2025, 4, 1), utc(2025, 1, 1)),
        ("2 weeks", utc(2025, 1, 15), utc(2025, 1, 1)),
        ("contract_end", utc(2025, 1, 1), None),
    ],
)  # fmt: skip
def test_retention_periods_count_calendar_months(
    period: str, now: dt.datetime, cutoff: dt.datetime | None
) -> None:
    assert RetentionPeriod.parse(period).cutoff(now) == cutoff


def test_settings_cannot_be_changed_after_loading(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.access.release_seconds = 1  # type: ignore[misc]
    assert settings.access == AccessSettings()
