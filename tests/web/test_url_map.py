"""Walks the whole URL map: every route declares access and enforces it, carries the
security headers, refuses a POST without a CSRF token, and no GET changes state.

New pages are covered the moment they are registered: nothing here lists routes by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, MetaData, select
from werkzeug.routing import Rule
from werkzeug.routing.converters import NumberConverter

from accessd.db import create_db_engine
from accessd.models import StaffRole
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in
from web import create_app
from web.security import Access, access_of, login_required

IGNORED_METHODS = {"HEAD", "OPTIONS"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Columns that reading a page may touch without changing state: session bookkeeping.
BOOKKEEPING = {("staff_sessions", "last_seen_at"), ("api_tokens", "last_used_at")}
LOGS = {"audit_records", "login_attempts"}


def _sample_value(rule: Rule, argument: str) -> str:
    converter = rule._converters[argument]
    name = type(converter).__name__
    if name == "UUIDConverter":
        return str(uuid.uuid4())
    if isinstance(converter, NumberConverter):  # web.routing's row ids too
        return "1"
    return "sample"


def _routes(app: Flask) -> Iterator[tuple[str, str, str]]:
    """(endpoint, method, concrete URL) for every route but static files."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        url = rule.rule
        for argument in rule.arguments:
            url = url.replace(f"<{argument}>", _sample_value(rule, argument))
            for prefix in ("uuid", "int", "string", "path", "float"):
                url = url.replace(f"<{prefix}:{argument}>", _sample_value(rule, argument))
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            yield rule.endpoint, method, url


def _access(app: Flask, endpoint: str) -> Access:
    access = access_of(app.view_functions[endpoint])
    assert access is not None, endpoint
    return access


def _request(client: FlaskClient, method: str, url: str, **kwargs: Any) -> Any:
    return client.open(url, method=method, **kwargs)


def test_the_walk_sees_every_area(app: Flask) -> None:
    endpoints = {endpoint for endpoint, _, _ in _routes(app)}
    assert {"auth.login", "auth.logout", "dashboard.index", "staff_admin.index",
            "api.whoami"} <= endpoints  # fmt: skip


def test_every_view_declares_its_access(app: Flask) -> None:
    for endpoint, _method, _url in _routes(app):
        assert access_of(app.view_functions[endpoint]) is not None, endpoint


def test_an_app_with_an_undeclared_view_refuses_to_start(
    app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import web.pages.dashboard as dashboard

    original = dashboard.bp
    bare = type(original)("dashboard", "web.pages.dashboard")
    bare.add_url_rule("/", "index", lambda: "open to all")
    monkeypatch.setattr(dashboard, "bp", bare)
    with pytest.raises(RuntimeError, match=r"dashboard\.index"):
        create_app(app_config)


def test_every_route_refuses_anonymous_visitors(app: Flask, client: FlaskClient) -> None:
    token = csrf_token(client)  # a valid form, so the refusal is about who, not CSRF
    checked = 0
    for endpoint, method, url in _routes(app):
        access = _access(app, endpoint)
        if access.kind == "public":
            continue
        data = {"csrf_token": token} if method == "POST" else None
        response = _request(client, method, url, data=data)
        if access.kind == "token":
            assert response.status_code == 401, (method, url)
            assert response.is_json
        else:
            assert response.status_code == 302, (method, url, response.status_code)
            assert response.headers["Location"].startswith("/login"), (method, url)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("role", [StaffRole.OPERATOR, StaffRole.AUDITOR])
def test_every_route_refuses_the_wrong_role(
    app: Flask, make_staff: Any, clock: FakeClock, role: StaffRole
) -> None:
    member: StaffMember = make_staff(f"someone-{role.value}", role)
    client = app.test_client()
    assert sign_in(client, member, clock).status_code == 302
    token = csrf_token(client, "/")
    refused = 0
    for endpoint, method, url in _routes(app):
        access = _access(app, endpoint)
        if access.kind != "staff" or not access.roles or role in access.roles:
            continue
        data = {"csrf_token": token} if method == "POST" else None
        response = _request(client, method, url, data=data)
        assert response.status_code == 403, (method, url, response.status_code)
        assert "Not allowed" in response.get_data(as_text=True)
        refused += 1
    assert refused >= 5  # the staff pages at least


def test_every_route_admits_the_right_role(
    app: Flask, signed_in: FlaskClient
) -> None:
    for endpoint, method, url in _routes(app):
        if _access(app, endpoint).kind != "staff" or method != "GET":
            continue
        response = signed_in.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)


def test_every_token_route_refuses_a_token_of_the_wrong_role(
    app: Flask, sessions: Any, clock: FakeClock
) -> None:
    from accessd.db import session_scope
    from accessd.staff import create_api_token

    with session_scope(sessions) as db:
        _row, token = create_api_token(
            db, "portal", StaffRole.AUDITOR, created_by="test", now=clock()
        )
    client = app.test_client()
    for endpoint, method, url in _routes(app):
        access = _access(app, endpoint)
        if access.kind != "token" or not access.roles or StaffRole.AUDITOR in access.roles:
            continue
        response = client.open(url, method=method, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403, url


def _assert_security_headers(response: Any, where: str) -> None:
    for header, expected in SECURITY_HEADERS.items():
        assert expected in response.headers.get(header, ""), (where, header)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_every_response_carries_the_security_headers(
    app: Flask, client: FlaskClient, admin: StaffMember, clock: FakeClock, who: str
) -> None:
    if who == "admin":
        sign_in(client, admin, clock)
    for _endpoint, method, url in _routes(app):
        # Without a CSRF token: refusals (400) must carry the headers too.
        response = _request(client, method, url)
        _assert_security_headers(response, f"{who} {method} {url} -> {response.status_code}")
    for extra in ("/no-such-page", "/static/panel.css", "/api/v1/no-such"):
        with client.get(extra) as response:  # a static file stays open until closed
            _assert_security_headers(response, extra)


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_every_post_without_a_csrf_token_is_refused(
    app: Flask, client: FlaskClient, admin: StaffMember, clock: FakeClock, who: str
) -> None:
    if who == "admin":
        sign_in(client, admin, clock)
    posts = 0
    for endpoint, method, url in _routes(app):
        if method != "POST" or _access(app, endpoint).kind == "token":
            continue
        response = client.post(url, data={})
        assert response.status_code == 400, (url, response.status_code)
        assert "This form has expired" in response.get_data(as_text=True)
        posts += 1
    assert posts >= 5


def test_a_post_with_a_forged_csrf_token_is_refused(signed_in: FlaskClient) -> None:
    response = signed_in.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert signed_in.get("/").status_code == 200  # still signed in


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    metadata = MetaData()
    metadata.reflect(engine)
    state: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name, table in sorted(metadata.tables.items()):
            if name in LOGS:
                continue
            columns = [c for c in table.columns if (name, c.name) not in BOOKKEEPING]
            rows = connection.execute(select(*columns)).all()
            state[name] = sorted(tuple(row) for row in rows)
    return state


def test_no_get_changes_state(
    app: Flask, signed_in: FlaskClient, db_url: str, make_staff: Any
) -> None:
    make_staff("someone", StaffRole.OPERATOR)
    engine = create_db_engine(db_url)
    try:
        before = _snapshot(engine)
        for _endpoint, method, url in _routes(app):
            if method == "GET":
                signed_in.get(url)
        assert _snapshot(engine) == before
    finally:
        engine.dispose()


def test_state_changing_routes_do_not_answer_get(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        methods = rule.methods or set()
        if rule.endpoint in ("auth.logout", "staff_admin.disable", "staff_admin.reset"):
            assert "GET" not in methods, rule.rule


def test_login_required_marks_any_role() -> None:
    view = login_required(lambda: "x")
    assert access_of(view) == Access("staff")
