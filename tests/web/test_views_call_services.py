"""The panel queries no model itself: its views call the services of ``accessd``, the same
ones the CLI calls (STYLE.md: "No business rule in a view"), so a rule has one home.

A source scan of every module under ``web/``: a query is a call of ``select(...)``,
``.scalars(...)``, ``.scalar(...)`` or ``.execute(...)``, or a ``.get(Model, ...)`` /
``.get_one(Model, ...)`` whose first argument is a model class.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import web
from accessd.models import Base

WEB = Path(web.__file__).parent
QUERY_METHODS = frozenset({"scalars", "scalar", "execute"})
LOOKUP_METHODS = frozenset({"get", "get_one"})
MODELS = frozenset(mapper.class_.__name__ for mapper in Base.registry.mappers)

NOT_YET_MOVED: dict[str, frozenset[str] | None] = {}  # every page calls services now


def queries_in(source: str) -> list[tuple[int, str, str]]:
    """Each query call in ``source``: (line, enclosing top-level function or "", the call)."""
    found: list[tuple[int, str, str]] = []
    for top in ast.parse(source).body:
        owner = top.name if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else ""
        for node in ast.walk(top):
            if isinstance(node, ast.Call) and _is_query(node):
                found.append((node.lineno, owner, ast.unparse(node.func)))
    return found


def _is_query(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "select"
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "select" or func.attr in QUERY_METHODS:
        return True
    first = call.args[0] if call.args else None
    return (func.attr in LOOKUP_METHODS and isinstance(first, ast.Name)
            and first.id in MODELS)


def _allowed(module: str, owner: str) -> bool:
    if module not in NOT_YET_MOVED:
        return False
    functions = NOT_YET_MOVED[module]
    return functions is None or owner in functions


@pytest.mark.parametrize(
    "snippet",
    [
        "def view():\n    return db().scalars(select(Customer)).all()",
        "def view():\n    return db().get(Person, 1)",
        "def view(session):\n    return session.get_one(DataSubjectRequest, 1)",
        "def view():\n    return db().execute(text)",
        "def view():\n    return db().scalar(query)",
        "def view():\n    return sqlalchemy.select(Door.id)",
    ],
)
def test_the_scan_finds_a_query(snippet: str) -> None:
    assert len(queries_in(snippet)) >= 1


@pytest.mark.parametrize(
    "snippet",
    [
        "def view():\n    return session.get(SESSION_KEY)",  # Flask's cookie session
        "def view():\n    return request.args.get('before', '')",
        "def view():\n    return get_customer_by_public_id(db(), public_id)",
    ],
)
def test_the_scan_lets_service_calls_and_dictionaries_be(snippet: str) -> None:
    assert queries_in(snippet) == []


def test_no_module_of_the_panel_queries_a_model() -> None:
    offending = []
    for path in sorted(WEB.rglob("*.py")):
        module = path.relative_to(WEB).as_posix()
        for line, owner, call in queries_in(path.read_text(encoding="utf-8")):
            if not _allowed(module, owner):
                offending.append(f"web/{module}:{line} {call}(...) in {owner or 'module'}")
    assert offending == [], ("views must call a service of accessd instead of querying: "
                             + "; ".join(offending))
