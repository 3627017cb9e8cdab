"""The API ships an OpenAPI description (``web/openapi.json``, served at /api/v1/openapi.json)
that is complete and true: schemathesis generates requests from it, valid and invalid, and every
answer is no 5xx and conforms to the document (status, content type, headers, body schema).

Bounded for ``make test``: 25 examples per operation and kind (valid, invalid, valid with the
ids of the seeded site), no deadline per example (the suite shares a small machine). Checks:
no 5xx, documented status codes, content types, headers and bodies, invalid data refused,
no answer without a token, 405 for undocumented methods. Not "valid data accepted": the
document cannot say every rule (a real calendar day, until after since, a non-blank reason),
so some valid-looking requests are rightly refused with a 400 that names the parameter.

The document itself is checked against the app: every route of the API blueprint is in it with
the same methods and parameters, nothing else is, and every enum in it lists exactly the values
the code has.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from sqlalchemy.orm import Session, sessionmaker

import web
from accessd.customers.contracts import ContractState
from accessd.db import session_scope
from accessd.history.query import REFUSED
from accessd.models import (
    AlarmKind,
    AuthMode,
    Credential,
    EventKind,
    EventMethod,
    FingerLabel,
    LawfulBasis,
    StaffRole,
)
from accessd.staff import create_api_token
from tests.web.conftest import FakeClock
from tests.web.test_api_v1 import Site, seed_site

DOCUMENT = Path(web.__file__).parent / "openapi.json"
SPEC: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
EXAMPLES_PER_OPERATION = 25
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance, checks.negative_data_rejection,
          checks.ignored_auth, checks.unsupported_method]


@pytest.fixture
def admin_token(sessions: sessionmaker[Session], clock: FakeClock) -> str:
    with session_scope(sessions) as db:
        _row, token = create_api_token(db, "schemathesis", StaffRole.ADMIN, created_by="t",
                                       now=clock())
    return token


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> Site:
    return seed_site(sessions)


OPERATIONS = [(path, method.upper()) for path, item in SPEC["paths"].items()
              for method in item if method != "parameters"]
MODES = ["valid", "invalid", "valid, real ids"]


def _real_ids(site: Site, path: str) -> dict[str, Any]:
    """Path parameters and query values naming what the seeded site has (random UUIDs only
    find 404s; these reach the 200s, whose bodies are then checked against the schemas)."""
    fixed = {"/customers/{public_id}": {"public_id": site.acme},
             "/customers/{public_id}/persons": {"public_id": site.acme},
             "/persons/{public_id}": {"public_id": site.alice},
             "/doors/{name}/unlock": {"name": "main"}}
    query = {"/events": {"customer": site.acme}}
    return {"path_parameters": fixed.get(path), "query": query.get(path)}


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
@pytest.mark.parametrize("mode", MODES)
def test_every_answer_is_no_5xx_and_as_documented(
        app: Flask, seeded: Site, admin_token: str, path: str, method: str, mode: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    # The document as the app serves it, so serving it is under test too.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth)
    operation = schema[path][method]
    if mode == "invalid":
        strategy = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    elif mode == "valid":
        strategy = operation.as_strategy()
    else:
        strategy = operation.as_strategy(**_real_ids(seeded, path))

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def examples(case: Any) -> None:
        case.call_and_validate(headers=auth, checks=CHECKS)

    examples()


# --- the document against the code ---------------------------------------------------------------


def _api_routes(app: Flask) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            routes.setdefault(path, set()).update(
                m.lower() for m in (rule.methods or set()) - {"HEAD", "OPTIONS"})
    return routes


def test_the_document_lists_exactly_the_api_routes_and_their_methods(app: Flask) -> None:
    documented = {path: {m for m in item if m != "parameters"}
                  for path, item in SPEC["paths"].items()}
    assert documented == _api_routes(app)


def test_every_path_parameter_is_documented() -> None:
    for path, item in SPEC["paths"].items():
        names = set(re.findall(r"{([a-z_]+)}", path))
        declared = {_resolve(p)["name"] for p in item.get("parameters", [])
                    if _resolve(p)["in"] == "path"}
        assert names == declared, path


def test_the_event_parameters_are_the_ones_the_api_reads() -> None:
    from web.pages.api import EVENT_PARAMETERS

    documented = {p["name"] for p in SPEC["paths"]["/events"]["get"]["parameters"]}
    assert documented == EVENT_PARAMETERS


@pytest.mark.parametrize(("where", "values"), [
    (("Customer", "state"), [s.value for s in ContractState]),
    (("Customer", "lawful_basis"), [b.value for b in LawfulBasis]),
    (("Person", "credential"), [c.value for c in Credential]),
    (("Person", "fingers", "items"), [f.value for f in FingerLabel]),
    (("Event", "kind"), [k.value for k in EventKind]),
    (("Event", "method"), [m.value for m in EventMethod]),
    (("Door", "alarms", "items"), [a.value for a in AlarmKind]),
    (("Door", "auth_mode"), [m.value for m in AuthMode]),
    (("Token", "role"), [r.value for r in StaffRole]),
])
def test_every_enum_in_the_document_is_the_codes(where: tuple[str, ...],
                                                 values: list[str]) -> None:
    node = SPEC["components"]["schemas"][where[0]]["properties"][where[1]]
    for step in where[2:]:
        node = node[step]
    assert node["enum"] == values


def test_the_kind_filter_takes_every_kind_and_refused() -> None:
    [kind] = [p for p in SPEC["paths"]["/events"]["get"]["parameters"] if p["name"] == "kind"]
    assert kind["schema"]["items"]["enum"] == [REFUSED, *(k.value for k in EventKind)]


def test_the_document_needs_a_token_like_every_endpoint(app: Flask, admin_token: str) -> None:
    client = app.test_client()
    assert client.get("/api/v1/openapi.json").status_code == 401
    served = client.get("/api/v1/openapi.json",
                        headers={"Authorization": f"Bearer {admin_token}"})
    assert served.status_code == 200 and served.is_json
    assert served.json == SPEC


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return dict(target)
