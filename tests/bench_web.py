"""Panel figures for ``make bench``: the history page over a million events, and 20 concurrent
clients on the waitress server. Benchmark functions, not tests: each returns a small result."""

from __future__ import annotations

import datetime as dt
import http.client
import logging
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Select, insert, select

from accessd.config import Settings
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker, session_scope
from accessd.models import AccessEvent, Customer, EventChain, Person, StaffRole
from accessd.staff import create_staff_user
from tests.bench import percentile
from tests.bench_door import make_installation, seed_site
from web.secret import create_secret_key_file
from web.wsgi import make_server, panel_app

PASSWORD = "bench horse battery staple"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
KINDS = ["granted"] * 90 + ["denied"] * 7 + ["unknown_finger"] * 3


@dataclass(frozen=True)
class PageTimes:
    """p50 and p95 (ms) of one kind of history request."""

    what: str
    p50_ms: float
    p95_ms: float
    requests: int


@dataclass(frozen=True)
class HistoryBench:
    """The history page over ``events`` events: seeding time and one row per request kind."""

    events: int
    seed_s: float
    pages: list[PageTimes]


@dataclass(frozen=True)
class ConcurrencyBench:
    """Waitress under ``clients`` concurrent signed-in clients for ``seconds``."""

    clients: int
    seconds: float
    requests: int
    requests_per_s: float
    p95_ms: float
    errors: int


def _installation(directory: Path, events: int) -> tuple[Settings, float]:
    """An installation with 20 customers, 1,000 persons and ``events`` events of mixed kinds
    (inserted in core batches; chain digests are dummies: nothing here verifies them)."""
    started = time.perf_counter()
    _path, settings = make_installation(directory)
    seed_site(settings, customers=20, persons=1000, events=0)
    if settings.web.secret_key_file is not None and not settings.web.secret_key_file.exists():
        create_secret_key_file(settings.web.secret_key_file)
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as db:
        chains = {c: i for c, i in db.execute(select(EventChain.customer_id, EventChain.id))}
        people = db.execute(select(Person.id, Person.customer_id)).all()
    rng = random.Random(7)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    step = 300 * 86400 / events
    batch: list[dict[str, Any]] = []
    for i in range(events):
        person_id, customer_id = people[i % len(people)]
        kind = rng.choice(KINDS)
        batch.append({"chain_id": chains[customer_id], "seq": i + 1, "customer_id": customer_id,
                      "person_id": None if kind == "unknown_finger" else person_id,
                      "door_id": None, "at": start + dt.timedelta(seconds=i * step),
                      "kind": kind, "method": "finger", "reason": "bench",
                      "prev_digest": b"\0" * 32, "digest": b"\0" * 32})
        if len(batch) == 100_000:
            with sessions.begin() as db:
                db.execute(insert(AccessEvent), batch)
            batch = []
    if batch:
        with sessions.begin() as db:
            db.execute(insert(AccessEvent), batch)
    engine.dispose()
    return settings, time.perf_counter() - started


def _staff(settings: Settings, n: int) -> list[tuple[str, str]]:
    """``n`` operators: (user name, TOTP secret)."""
    engine = create_db_engine(settings.database.url)
    provider = FileKeyProvider(settings.keys.master_key_file)  # type: ignore[arg-type]
    made = []
    with session_scope(make_sessionmaker(engine)) as db:
        for i in range(n):
            issued = create_staff_user(db, f"bench{i}", StaffRole.OPERATOR, provider=provider,
                                       now=dt.datetime.now(dt.UTC), password=PASSWORD)
            assert issued.totp_secret is not None
            made.append((f"bench{i}", issued.totp_secret))
    engine.dispose()
    return made


def _sign_in_test_client(app: Flask, username: str, secret: str) -> FlaskClient:
    client = app.test_client()
    token = _CSRF.search(client.get("/login").get_data(as_text=True))
    assert token
    response = client.post("/login", data={"csrf_token": token.group(1), "username": username,
                                           "password": PASSWORD,
                                           "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def _customer_id(settings: Settings) -> int:
    return _first_id(settings, select(Customer.id))


def _first_id(settings: Settings, query: Select[tuple[int]]) -> int:
    engine = create_db_engine(settings.database.url)
    with make_sessionmaker(engine)() as db:
        found = db.scalars(query.order_by(query.selected_columns[0])).first()
    engine.dispose()
    assert found is not None
    return found


def bench_history_page(directory: Path, *, events: int = 1_000_000,
                       requests: int = 200) -> HistoryBench:
    """The history page through the Flask test client (signed in): unfiltered, by customer,
    and by customer + result + period; ``requests`` each, p50/p95 in ms (target p95 < 150)."""
    settings, seed_s = _installation(directory, events)
    ((username, secret),) = _staff(settings, 1)
    app = panel_app(settings, insecure_http=True)
    client = _sign_in_test_client(app, username, secret)
    customer = _customer_id(settings)
    person = _first_id(settings, select(Person.id).where(Person.customer_id == customer))
    today = dt.date.today()
    urls = {
        "unfiltered": "/history/",
        "by customer": f"/history/?customer={customer}",
        "by person": f"/history/?customer={customer}&person={person}",
        "customer + refused + 60 days": f"/history/?customer={customer}&result=refused"
        f"&since={today - dt.timedelta(days=90)}&until={today - dt.timedelta(days=30)}",
    }
    pages = []
    for what, url in urls.items():
        client.get(url)  # warm the page cache, as a panel in use has it
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        pages.append(PageTimes(what, round(percentile(samples, 50), 1),
                               round(percentile(samples, 95), 1), requests))
    return HistoryBench(events, round(seed_s, 1), pages)


def _http_sign_in(port: int, username: str, secret: str) -> str:
    """Sign in over HTTP like a browser; returns the session cookie header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    token = _CSRF.search(response.read().decode())
    assert token
    body = urllib.parse.urlencode({"csrf_token": token.group(1), "username": username,
                                   "password": PASSWORD, "code": pyotp.TOTP(secret).now()})
    conn.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = conn.getresponse()
    response.read()
    assert response.status == 302, response.status
    conn.close()
    return response.getheader("Set-Cookie", "").split(";", 1)[0]


def bench_concurrency(directory: Path, *, clients: int = 20, seconds: float = 30.0,
                      events: int = 100_000) -> ConcurrencyBench:
    """``clients`` signed-in staff members (threads) alternating the dashboard and the history
    page on the waitress server for ``seconds``: requests/s, p95 (ms) and errors (target 0)."""
    settings, _ = _installation(directory, events)
    staff = _staff(settings, clients)
    # Waitress warns at every queued request beyond its threads: that is what is measured here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = panel_app(settings, insecure_http=True)
    server = make_server(app, "127.0.0.1:0")
    port = server.effective_port  # type: ignore[union-attr]
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    cookies = [_http_sign_in(port, name, secret) for name, secret in staff]
    samples: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(cookie: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        paths = ["/", "/history/"]
        n = 0
        while time.monotonic() < stop_at:
            path = paths[n % 2]
            n += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException) as exc:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status: Any = type(exc).__name__
            else:
                status = response.status
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                samples.append(elapsed)
                if not ok:
                    errors.append(f"{path}: {status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in cookies]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - began
    server.close()
    return ConcurrencyBench(clients, round(took, 1), len(samples),
                            round(len(samples) / took, 1), round(percentile(samples, 95), 1),
                            len(errors))


if __name__ == "__main__":  # a quick look without make bench
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as where:
        print(bench_history_page(Path(where) / "h", events=int(sys.argv[1]) if len(sys.argv) > 1
                                 else 1_000_000))
    with tempfile.TemporaryDirectory() as where:
        print(bench_concurrency(Path(where) / "c"))
