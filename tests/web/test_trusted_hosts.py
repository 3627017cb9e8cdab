"""The panel answers only to the host names of ``[web] trusted_hosts`` (issue 11, 12).

Werkzeug's trailing-slash redirects are absolute URLs built from the Host header: with no list
of trusted hosts, ``GET /history`` with ``Host: evil.example`` redirected to
``http://evil.example/history/`` (a poisoned cache or password-reset-style link away from
phishing). Now such a request is a 400 before routing, and the host is not echoed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from accessd.config import ConfigError, Settings, WebSettings, load_settings
from tests.web.conftest import FakeClock, StaffMember, sign_in

EVIL = "evil.example"


@pytest.mark.parametrize("path", ["/history", "/customers", "/audit", "/privacy"])
def test_an_untrusted_host_gets_a_400_not_a_redirect_to_itself(app: Flask, path: str) -> None:
    response = app.test_client().get(path, headers={"Host": EVIL})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert EVIL not in response.get_data(as_text=True)
    assert "does not answer to the host name" in response.get_data(as_text=True)


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:8080"])
def test_the_demo_hosts_are_trusted_by_default(app: Flask, host: str) -> None:
    response = app.test_client().get("/history", headers={"Host": host})
    assert response.status_code == 308
    assert response.headers["Location"] in (f"http://{host}/history/", "/history/")


@pytest.mark.parametrize("host", [EVIL, "localhost.evil.example", "evil.example:80", "[::1]",
                                  "127.0.0.2", "localhost\\@evil.example", "x" * 300])
def test_every_other_host_is_refused(app: Flask, host: str) -> None:
    assert app.test_client().get("/login", headers={"Host": host}).status_code == 400


def test_the_configured_host_works_and_the_demo_hosts_then_do_not(make_app: Any) -> None:
    app = make_app(ACCESSD_SETTINGS=Settings(web=WebSettings(
        trusted_hosts="panel.example.net, .staff.example.net")))
    client = app.test_client()
    redirect = client.get("/history", headers={"Host": "panel.example.net"})
    assert redirect.status_code == 308
    assert redirect.headers["Location"] in ("http://panel.example.net/history/", "/history/")
    assert client.get("/login", headers={"Host": "a.staff.example.net"}).status_code == 200
    assert client.get("/login", headers={"Host": "localhost"}).status_code == 400


def test_behind_a_proxy_the_forwarded_host_is_checked(make_app: Any) -> None:
    app = make_app(ACCESSD_PROXY_HOPS=1)
    client = app.test_client()
    assert client.get("/login", headers={"X-Forwarded-Host": EVIL}).status_code == 400
    assert client.get("/login", headers={"X-Forwarded-Host": "localhost"}).status_code == 200


def test_the_api_refuses_an_untrusted_host_in_json(app: Flask) -> None:
    response = app.test_client().get("/api/v1/whoami", headers={"Host": EVIL})
    assert response.status_code == 400 and response.is_json
    assert response.json["error"]["title"] == "Unknown host name"


def test_signing_in_works_on_a_trusted_host(
        app: Flask, admin: StaffMember, clock: FakeClock) -> None:
    assert sign_in(app.test_client(), admin, clock).status_code == 302


@pytest.mark.parametrize("value", ["https://panel.example.net", "panel.example.net:8443",
                                   "panel.example.net/staff", "[::1]", "::1", "a b", "*",
                                   "panel.example.net,", "-bad.example"])
def test_a_trusted_host_that_cannot_be_matched_is_a_config_error(
        tmp_path: Path, value: str) -> None:
    path = tmp_path / "accessd.toml"
    path.write_text(f'[web]\ntrusted_hosts = "{value}"\n')
    with pytest.raises(ConfigError, match=r"web\.trusted_hosts"):
        load_settings(path, env={})


def test_trusted_hosts_come_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "accessd.toml"
    path.write_text('[web]\ntrusted_hosts = "panel.example.net, Localhost"\n')
    assert load_settings(path, env={}).web.host_names() == ["panel.example.net", "localhost"]
    env = {"ACCESSD_WEB_TRUSTED_HOSTS": ".example.org"}
    assert load_settings(path, env=env).web.host_names() == [".example.org"]
