"""The import rules of DESIGN.md hold, and the check that guards them would catch a breach.

``make test`` runs ``lint-imports`` over the tree; these tests run it here too, once on the
tree as it is and once on a copy with one forbidden import added, so a contract that cannot
fail (a typo in a module name, a rule that matches nothing) is noticed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("accessd", "firmware_bridge", "hardware_sim", "web", "demo")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True,
                          text=True, check=False, timeout=120)


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static",
                                                      "templates"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_tree_keeps_every_import_contract() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "forbidden", "contract"), [
    ("accessd/door/logic.py", "web", "accessd never imports the panel"),
    ("accessd/customers/people.py", "hardware_sim", "accessd never imports the panel"),
    ("firmware_bridge/zfm.py", "accessd", "firmware_bridge imports nothing of ours"),
    ("hardware_sim/sensor.py", "accessd.db", "the simulator stands below the serial port"),
    ("web/pages/history.py", "hardware_sim", "the panel uses accessd's services"),
    ("accessd/door/decision.py", "accessd.privacy.purge",
     "the door's modules never import the panel's"),
])
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, forbidden: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    with (tree / module).open("a") as source:
        source.write(f"\nimport {forbidden}  # added by the test\n")
    done = _lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = done.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert f"-> {forbidden} (l." in broken
