"""Every CSV file is written through ``accessd.csv_cells`` (issue 11, 8): a source scan finds
no other ``csv.writer`` or ``csv.DictWriter`` in the product, so a new export cannot forget
the formula-injection rule by writing cells itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PRODUCT = ("accessd", "web", "demo")
THE_ONE_WRITER = ROOT / "accessd" / "csv_cells.py"
WRITERS = frozenset({"writer", "DictWriter"})


def csv_writer_calls(source: str) -> list[int]:
    """Lines of ``source`` that build a writer of the ``csv`` module (however imported)."""
    tree = ast.parse(source)
    aliases = {"csv"}
    direct = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name == "csv"}
        elif isinstance(node, ast.ImportFrom) and node.module == "csv":
            direct |= {a.asname or a.name for a in node.names if a.name in WRITERS}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in WRITERS
                and isinstance(func.value, ast.Name) and func.value.id in aliases):
            found.append(node.lineno)
        elif isinstance(func, ast.Name) and func.id in direct:
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("snippet", [
    "import csv\ncsv.writer(out)",
    "import csv as c\nc.DictWriter(out, fields)",
    "from csv import writer\nwriter(out)",
])
def test_the_scan_finds_a_csv_writer(snippet: str) -> None:
    assert csv_writer_calls(snippet)


def test_only_accessd_csv_cells_builds_csv_writers() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}"
                 for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))
                 if path != THE_ONE_WRITER
                 for line in csv_writer_calls(path.read_text(encoding="utf-8"))]
    assert offenders == [], "write CSV through accessd.csv_cells.csv_writer: " + ", ".join(
        offenders)
    assert csv_writer_calls(THE_ONE_WRITER.read_text(encoding="utf-8"))
