"""Reading and validating the configuration: TOML file < ``ACCESSD_*`` environment < overrides.

Every problem is collected, then reported at once in one ``ConfigError``, each line naming the
key (and where the value came from when not from the file).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accessd.config.settings import (
    RETENTION_ADDED_LATER,
    RETENTION_CATEGORIES,
    SECTIONS,
    RetentionPeriod,
    Settings,
    number,
)
from accessd.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/accessd/accessd.toml")
CONFIG_ENV = "ACCESSD_CONFIG"
ENV_PREFIX = "ACCESSD_"
SQLITE_FILE = "accessd.sqlite3"
KEYRING_FILE = "keyring.json"

_Key = tuple[str | None, str]  # (section or None for top level, key)


@dataclasses.dataclass(frozen=True, slots=True)
class _Value:
    value: Any
    origin: str  # "" (the file), "ACCESSD_X" or "the command line"
    from_text: bool  # environment and command line give strings, converted here


def config_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The config file to read: ``path``, else ``$ACCESSD_CONFIG``, else the default."""
    if path is not None:
        return Path(path)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read, merge and validate the configuration.

    :param path: the TOML file (default: ``$ACCESSD_CONFIG`` or /etc/accessd/accessd.toml).
    :param env: the environment (default ``os.environ``); ``ACCESSD_<SECTION>_<KEY>`` and
        ``ACCESSD_DATA_DIR`` override the file.
    :param overrides: from the command line, ``{"access.release_seconds": 4}``; win over all.
    :raises ConfigError: the file is missing or unreadable, or any value is invalid.
    """
    env = os.environ if env is None else env
    file = config_path(path, env)
    raw = _read_toml(file)
    problems: list[str] = []
    values: dict[_Key, _Value] = {}
    _collect_file(raw, values, problems)
    _collect_env(env, values, problems)
    _collect_overrides(overrides or {}, values, problems)
    settings = _build(values, file, env, problems)
    if problems:
        raise ConfigError(
            f"invalid configuration in {file}:\n  " + "\n  ".join(problems), tuple(problems)
        )
    assert settings is not None
    return settings


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {file} not found; create it with `accessd init`, or name the right "
            f"one with --config PATH or {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from exc


def _fields(section: str | None) -> dict[str, dataclasses.Field[Any]]:
    cls = Settings if section is None else SECTIONS[section]
    return {
        f.name: f
        for f in dataclasses.fields(cls)
        if not f.metadata.get("derived") and (section is not None or f.name not in SECTIONS)
    }


def _all_names() -> list[str]:
    names = list(_fields(None))
    for section in SECTIONS:
        names += [f"{section}.{key}" for key in _fields(section)]
    return names


def _unknown(name: str, where: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown key {name}{where}{hint}"


def _collect_file(raw: dict[str, Any], values: dict[_Key, _Value], problems: list[str]) -> None:
    top = list(_fields(None)) + list(SECTIONS)
    for name, content in raw.items():
        if name in SECTIONS:
            if not isinstance(content, dict):
                problems.append(f"{name} must be a table ([{name}]), not a single value")
                continue
            known = _fields(name)
            for key, value in content.items():
                if key in known:
                    values[(name, key)] = _Value(value, "", from_text=False)
                else:
                    candidates = [f"{name}.{k}" for k in known] + _all_names()
                    problems.append(_unknown(f"{name}.{key}", "", candidates))
        elif name in _fields(None):
            values[(None, name)] = _Value(content, "", from_text=False)
        else:
            problems.append(_unknown(name, "", top + _all_names()))
    retention = raw.get("retention")
    if isinstance(retention, dict):
        # A register of processing activities is generated from this table: a category left
        # out by mistake must not silently take a period nobody decided on.
        for category in RETENTION_CATEGORIES:
            if category not in retention and category not in RETENTION_ADDED_LATER:
                default = getattr(Settings().retention, category)
                problems.append(
                    f"retention.{category} is missing: when [retention] is written, every data "
                    f'category needs its period (the default is "{default}")'
                )


def _collect_env(env: Mapping[str, str], values: dict[_Key, _Value], problems: list[str]) -> None:
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest in _fields(None):
            values[(None, rest)] = _Value(text, name, from_text=True)
            continue
        # Only variables naming one of our sections are ours: other tools (the simulator,
        # the hardware tests) use ACCESSD_* names of their own.
        for section in SECTIONS:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                if key in _fields(section):
                    values[(section, key)] = _Value(text, name, from_text=True)
                else:
                    candidates = [
                        f"{ENV_PREFIX}{section.upper()}_{k.upper()}" for k in _fields(section)
                    ]
                    problems.append(_unknown(name, " in the environment", candidates))
                break


def _collect_overrides(
    overrides: Mapping[str, Any], values: dict[_Key, _Value], problems: list[str]
) -> None:
    for dotted, value in overrides.items():
        section, _, key = dotted.rpartition(".")
        if (section == "" and key in _fields(None)) or (
            section in SECTIONS and key in _fields(section)
        ):
            values[(section or None, key)] = _Value(
                value, "the command line", from_text=isinstance(value, str)
            )
        else:
            problems.append(_unknown(dotted, " on the command line", _all_names()))


def _build(
    values: dict[_Key, _Value], file: Path, env: Mapping[str, str], problems: list[str]
) -> Settings | None:
    checked: dict[_Key, Any] = {}
    for (section, key), given in values.items():
        field = _fields(section)[key]
        cls = Settings if section is None else SECTIONS[section]
        kind = typing.get_type_hints(cls)[key]
        name = key if section is None else f"{section}.{key}"
        try:
            checked[(section, key)] = _check(name, kind, field, given)
        except ValueError as exc:
            origin = f" (from {given.origin})" if given.origin else ""
            problems.append(f"{name} = {_show(given.value)}{origin}: {exc}")
    if problems:
        return None

    data_dir = Path(checked.get((None, "data_dir"), file.parent)).expanduser()
    if not data_dir.is_absolute():
        data_dir = (file.parent / data_dir).absolute()

    def under_data_dir(value: Any) -> Any:
        if isinstance(value, Path):
            value = value.expanduser()
            return value if value.is_absolute() else data_dir / value
        return value

    sections: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        chosen = {k: under_data_dir(v) for (s, k), v in checked.items() if s == section}
        defaults = {
            f.name: under_data_dir(f.default)
            for f in dataclasses.fields(cls)
            if f.name not in chosen and isinstance(f.default, Path)
        }
        sections[section] = {**defaults, **chosen}

    url = sections["database"].get("url", "")
    sections["database"]["url"] = _sqlite_under(url, data_dir)
    keys = sections["keys"]
    if keys.get("master_key_file") is None:
        credentials = env.get("CREDENTIALS_DIRECTORY")
        if credentials:
            name = keys.get("credential_name", "accessd-keyring")
            keys["master_key_file"] = Path(credentials) / name
            keys["from_credential"] = True
        else:
            keys["master_key_file"] = data_dir / KEYRING_FILE
    return Settings(data_dir=data_dir, **{s: SECTIONS[s](**kw) for s, kw in sections.items()})


def _sqlite_under(url: str, data_dir: Path) -> str:
    """Empty: the default file; a relative SQLite path is inside ``data_dir``, not the cwd."""
    if not url:
        return f"sqlite:///{data_dir / SQLITE_FILE}"
    prefix, sep, rest = url.partition(":///")
    if prefix.startswith("sqlite") and sep and rest and not rest.startswith(("/", ":memory:")):
        return f"{prefix}:///{data_dir / rest}"
    return url


def _check(name: str, kind: Any, field: dataclasses.Field[Any], given: _Value) -> Any:
    """The value converted to ``kind`` and within its limits; ``ValueError`` says what is wrong."""
    value = _convert(kind, given.value, given.from_text)
    meta = field.metadata
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = meta.get("min"), meta.get("max")
        if low is not None and value < low:
            why = f" ({meta['why']})" if meta.get("why") else ""
            raise ValueError(f"must be at least {number(low)}{why}")
        if high is not None and value > high:
            why = f" ({meta['why_max']})" if meta.get("why_max") else ""
            raise ValueError(f"must be at most {number(high)}{why}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ValueError("must be one of " + ", ".join(json.dumps(c) for c in meta["choices"]))
    if isinstance(value, str) and not value.strip() and name != "database.url":
        raise ValueError("must not be empty")
    _check_specific(name, value)
    return value


def _check_specific(name: str, value: Any) -> None:
    if name == "sensor.baud" and value % 9600:
        raise ValueError("must be a multiple of 9600 (what the sensor supports)")
    if name == "database.url" and value and not value.startswith(("sqlite", "postgresql")):
        raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
    if name == "web.bind":
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError('must be "host:port", e.g. "127.0.0.1:8080"')
    if name == "web.trusted_hosts":
        names = [part.strip() for part in value.split(",")]
        bad = [part for part in names if not _TRUSTED_HOST.fullmatch(part)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not a host name; give names such as "
                '"panel.example.net, localhost" (no scheme, port or path; a leading dot admits '
                "subdomains; IPv6 literals cannot be matched, so give the panel a name)")
    if name == "access.timezone":
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError('must be a time zone name such as "Europe/Amsterdam"') from None
    if name.startswith("retention.") and isinstance(value, RetentionPeriod):
        if value.until_contract_end and name != "retention.access_history":
            raise ValueError('"contract_end" applies to access_history only; give a period')


# A DNS name or an IPv4 address, optionally with a leading dot (subdomains too).
_TRUSTED_HOST = re.compile(r"\.?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                           r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")

_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def _convert(kind: Any, value: Any, from_text: bool) -> Any:
    optional = typing.get_origin(kind) in (typing.Union, _UnionType) and type(None) in (
        typing.get_args(kind)
    )
    if optional:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if value is None or (from_text and value == ""):
            return None
    if kind is Path:
        if isinstance(value, str | Path) and str(value).strip():
            return Path(value)
        raise ValueError("must be a path (a non-empty string)")
    if kind is RetentionPeriod:
        if isinstance(value, RetentionPeriod):
            return value
        if not isinstance(value, str):
            raise ValueError('must be a string such as "6 months"')
        return RetentionPeriod.parse(value)
    if from_text and isinstance(value, str):
        return _from_text(kind, value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, kind):
        return value
    raise ValueError(f"must be {_TYPE_WORDS.get(kind, kind.__name__)}")


def _from_text(kind: Any, text: str) -> Any:
    text = text.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"must be {_TYPE_WORDS[kind]}") from None
    return text


_UnionType = type(int | None)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
