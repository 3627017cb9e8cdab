"""Editing the configuration file that ``accessd init`` wrote, as an installer would."""

from __future__ import annotations

import json
from pathlib import Path


def set_config(path: Path, values: dict[str, object]) -> None:
    """Set ``section.key`` values in place (each key is present, commented or not)."""
    lines, section, done = [], "", set()
    for line in path.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        key = line.split("=", 1)[0].strip().lstrip("# ")
        name = f"{section}.{key}"
        if "=" in line and name in values and name not in done:
            line = f"{key} = {json.dumps(values[name])}"
            done.add(name)
        lines.append(line)
    missing = set(values) - done
    if missing:
        raise KeyError(f"no such keys in {path}: {sorted(missing)}")
    path.write_text("\n".join(lines) + "\n")
