"""The commented configuration file ``accessd init`` writes, generated from the settings' own
documentation so that the file, the defaults and the validation never disagree."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from accessd.config.settings import SECTIONS, RetentionPeriod, number
from accessd.errors import ConfigError

HEADER = """\
# accessd configuration.
# Precedence: command-line options > ACCESSD_<SECTION>_<KEY> environment variables > this file.
# Unknown keys are errors. Relative paths are inside data_dir.
"""


def render_default_config(data_dir: Path) -> str:
    """The text of a default configuration file for ``data_dir``, every key explained."""
    lines = [HEADER, f"data_dir = {json.dumps(str(data_dir))}", ""]
    for section, cls in SECTIONS.items():
        lines.append(f"[{section}]")
        doc = (cls.__doc__ or "").strip()
        if doc:
            lines += [f"# {line.strip()}" for line in doc.splitlines()]
        for field in dataclasses.fields(cls):
            if field.metadata.get("derived"):
                continue
            lines.append(f"# {_describe(field)}")
            value = _toml_value(field.default)
            if value is None:
                lines.append(f"# {field.name} = (unset)")
            else:
                lines.append(f"{field.name} = {value}")
        lines.append("")
    return "\n".join(lines)


def write_default_config(path: Path, data_dir: Path) -> Path:
    """Write the default configuration to ``path`` (refused if it exists), for ``accessd init``.

    :raises ConfigError: the file exists or cannot be written.
    """
    text = render_default_config(data_dir.absolute())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Exclusive create: `accessd init` never overwrites a configuration someone edited.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigError(
            f"config file {path} already exists; edit it, or remove it to start over"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot write config file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _describe(field: dataclasses.Field[Any]) -> str:
    meta = field.metadata
    text = str(meta.get("doc", ""))
    limits = []
    if meta.get("min") is not None:
        limits.append(f"at least {number(meta['min'])}")
    if meta.get("max") is not None:
        limits.append(f"at most {number(meta['max'])}")
    if meta.get("choices"):
        limits.append("one of " + ", ".join(json.dumps(c) for c in meta["choices"]))
    return f"{text} ({'; '.join(limits)})" if limits else text


def _toml_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path | RetentionPeriod):
        return json.dumps(str(value))
    raise TypeError(f"no TOML form for {value!r}")


def update_config_file(path: Path, values: dict[str, Any]) -> None:
    """Set ``section.key`` values in a configuration file written by ``accessd init``, keeping
    its comments (for installers' scripts, the demo and the tests).

    :raises ConfigError: a key is not in the file.
    """
    lines, section, done = [], "", set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        key = line.split("=", 1)[0].strip().lstrip("# ")
        name = f"{section}.{key}"
        if "=" in line and name in values and name not in done:
            line = f"{key} = {_toml_value(values[name])}"
            done.add(name)
        lines.append(line)
    missing = sorted(set(values) - done)
    if missing:
        raise ConfigError(f"{path} has no keys {', '.join(missing)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
