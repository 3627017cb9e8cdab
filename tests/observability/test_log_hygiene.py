"""A day at the demo door with every log at DEBUG: the daemon (JSON lines), the panel and the
CLI (key=value lines) log one event per line and never a name, an e-mail address, a PIN, a TOTP
secret, key material (hex or base64) or any 16 bytes of a template.

The day, as ``make demo`` sets it up and its banner suggests playing it: the simulator and the
daemon as processes, Initech (ended two days ago) purged at start, three fingers enrolled
through the daemon, people let in and refused by finger and PIN, an escorted visitor let in
remotely, a tamper alarm raised and cleared, a backup, a key rotation, an export, an erasure,
a consent withdrawal, Globex's contract ending and its purge, retention, a resync, and staff
using the panel (its clock injected).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import select

from accessd.cli.main import main as accessd_main
from accessd.config import load_settings, update_config_file
from accessd.crypto import FileKeyProvider
from accessd.crypto.envelope import WrappedDataKey, unwrap_data_key
from accessd.customers.pins import hash_pin
from accessd.db import create_db_engine, make_sessionmaker
from accessd.fingers.sealed import open_sealed
from accessd.logs import configure_logging
from accessd.models import Customer, DataKey, Finger, Person, StaffRole
from accessd.staff.accounts import create_staff_user
from demo.run import enrol_demo_fingers, seed
from hardware_sim.control import SimControl
from tests.installation import provision_door
from tests.observability.test_daemon_metrics import free_port
from tests.web.conftest import FakeClock, StaffMember, csrf_token, sign_in
from web import create_app
from web.panel import current_panel

pytestmark = pytest.mark.slow

ACCESSD = [sys.executable, "-m", "accessd.cli"]
EMAILS = {"Bob de Vries": "bob.devries@acme.example", "Chidi Okafor": "chidi@acme.example",
          "Dana Kowalski": "dana.k@globex.example", "Erik Lund": "erik.lund@initech.example"}
PINS = {"Alice Jansen": "739146", "Chidi Okafor": "582037"}
KEYPAD = {"Alice Jansen": "4711", "Chidi Okafor": "5150"}


class Day:
    """The day's CLI commands and every line they wrote on stderr. Each runs in this process
    (``accessd.cli.main.main``, as the ``accessd`` script does: it sets logging up at DEBUG
    on the stderr it finds, which ``capsys`` captures), on the day's clock."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = tmp_path / "accessd.toml"
        self.capsys = capsys
        self.cli_logs: list[str] = []
        self.clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))

    def cli(self, *argv: str, ok: bool = True) -> str:
        """``accessd ARGV`` at DEBUG; its stderr is kept, its stdout returned."""
        self.capsys.readouterr()
        try:
            code = accessd_main(["--config", str(self.config), "--log-level", "DEBUG", *argv],
                                wall=self.clock)
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        self.cli_logs.append(err)
        assert (code == 0) == ok, f"{argv}: {out}{err}"
        return out


def wait_for(check: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def logging_restored() -> Any:
    """The CLI sets the root logger up anew at each command: put back what was there."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ours = {name: logging.getLogger(name).level for name in ("accessd", "web")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in ours.items():
        logging.getLogger(name).setLevel(old)


def test_a_day_at_the_door_logs_no_personal_data_no_secret_and_no_template(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], logging_restored: None) -> None:
    day = Day(tmp_path, capsys)
    sim = subprocess.Popen([sys.executable, "-m", "hardware_sim.cli", "--dir",
                            str(tmp_path / "sim")], stdout=subprocess.PIPE, text=True)
    daemon: subprocess.Popen[str] | None = None
    panel_lines: list[str] = []
    try:
        assert sim.stdout is not None
        paths = json.loads(sim.stdout.readline())
        assert accessd_main(["--config", str(day.config), "init", "--data-dir",
                             str(tmp_path / "data")]) == 0
        update_config_file(day.config, {
            "sensor.port": paths["sensor"], "door.port": paths["door"],
            "log.format": "json", "log.level": "DEBUG",
            "metrics.daemon_bind": f"127.0.0.1:{free_port()}",
            "access.release_seconds": 3})
        provision_door(day.config)
        settings = load_settings(day.config)
        seed(settings)
        engine = create_db_engine(settings.database.url)
        sessions = make_sessionmaker(engine)
        assert settings.keys.master_key_file is not None
        keys = FileKeyProvider(settings.keys.master_key_file)
        with sessions.begin() as db:
            people = {p.name: p for p in db.scalars(select(Person))}
            for name, email in EMAILS.items():
                people[name].email = email
            for name, pin in PINS.items():
                people[name].pin_hash = hash_pin(pin)
            ids = {name: str(p.public_id) for name, p in people.items()}
            customers = [c.name for c in db.scalars(select(Customer))]
            staff = create_staff_user(db, "olga", StaffRole.ADMIN, provider=keys,
                                      now=dt.datetime.now(dt.UTC),
                                      password="a long and careful passphrase 42")
            assert staff.totp_secret is not None
            olga = StaffMember("olga", StaffRole.ADMIN, "a long and careful passphrase 42",
                               staff.totp_secret)

        with (tmp_path / "daemon.log").open("w") as log_file:
            daemon = subprocess.Popen([*ACCESSD, "--config", str(day.config), "run"],
                                      stderr=log_file, text=True)
        control = SimControl(paths["control"])
        wait_for(lambda: control.send("state")["door_plugged"], "the simulator")
        wait_for(lambda: _door_online(sessions), "the daemon", 120)

        # Morning: staff enrol three fingers at the reader, as the demo does.
        enrol_demo_fingers(settings, control)
        secrets = _secrets(sessions, keys, settings.keys.master_key_file)

        def play(finger: str) -> None:
            before = _events(sessions)
            control.send("place", finger=finger)
            wait_for(lambda: _events(sessions) > before, "a decision")
            control.send("lift")
            time.sleep(0.2)

        play("alice")  # granted
        play("mallory")  # an unknown finger
        play("bob")  # granted
        control.send("keys", digits=f"{KEYPAD['Alice Jansen']}*{PINS['Alice Jansen']}#")
        control.send("keys", digits=f"{KEYPAD['Chidi Okafor']}*000000#")  # a wrong PIN
        before = _events(sessions)
        control.send("keys", digits=f"{KEYPAD['Chidi Okafor']}*{PINS['Chidi Okafor']}#")
        wait_for(lambda: _events(sessions) >= before + 1, "the PIN decisions")
        day.cli("door", "unlock", "--reason", "escorted visitor Zoe Visser for Acme, "
                "zoe@visitor.example", "--by", "olga")
        control.send("tamper")
        wait_for(lambda: _alarms(sessions), "the tamper alarm")
        day.cli("alarm", "clear", "--by", "olga")

        # Midday: the back office.
        day.cli("backup")
        day.cli("keys", "rotate")
        secrets |= _secrets(sessions, keys, settings.keys.master_key_file)
        day.cli("export", "person", ids["Alice Jansen"], "--out", str(tmp_path / "alice.zip"))
        day.cli("verify-log")
        day.cli("erase", "person", ids["Bob de Vries"], "--yes", "--by", "olga")
        day.cli("withdraw-consent", ids["Alice Jansen"], "--by", "olga")
        day.cli("resync")

        # The panel, on its own injected clock.
        panel_lines = _panel_day(settings, olga, ids)

        # Evening: a month later by the CLI's clock, Globex's contract and grace are over.
        day.clock.advance(days=30)
        day.cli("purge", "--now")
        day.cli("retention", "run")
        day.cli("status")
        day.cli("person", "show", ids["Bob de Vries"], ok=False)  # erased: not found
        control.close()
        engine.dispose()
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=10)
        if sim.stdout is not None:
            sim.stdout.close()

    daemon_lines = (tmp_path / "daemon.log").read_text().splitlines()
    cli_lines = [line for text in day.cli_logs for line in text.splitlines()]
    # One event per line: JSON from the daemon (as configured), key=value from the others.
    events = [json.loads(line) for line in daemon_lines]
    assert all({"ts", "level", "logger", "msg"} <= set(event) for event in events)
    decisions = [e for e in events if e["msg"] == "decision"]
    assert {(e["result"], e["method"]) for e in decisions} >= {
        ("granted", "finger"), ("unknown_finger", "finger"), ("granted", "pin"),
        ("denied", "pin"), ("granted", "remote")}
    assert ids["Alice Jansen"] in {e["person"] for e in decisions}  # named by public id
    assert any(e["level"] == "debug" for e in events) or any(
        "level=debug" in line for line in cli_lines + panel_lines)
    kv = [line for line in cli_lines + panel_lines if line.startswith("ts=")]
    assert kv and all(re.match(r"ts=\S+ level=\w+ logger=\S+ msg=", line) for line in kv)
    assert any("endpoint=" in line for line in panel_lines)

    every = "\n".join(daemon_lines + cli_lines + panel_lines)
    canaries = _canaries([*people_names(ids), *customers],
                         [*EMAILS.values(), "alice@acme.example", "zoe@visitor.example"],
                         list(PINS.values()), secrets)
    canaries.append(("TOTP secret of olga", re.compile(re.escape(olga.totp_secret), re.I)))
    found = {label for label, pattern in canaries if pattern.search(every)}
    assert not found, f"log lines hold: {sorted(found)}"


def _door_online(sessions: Any) -> bool:
    from accessd.models import DoorStatus

    with sessions() as db:
        status = db.scalars(select(DoorStatus)).first()
        return bool(status and status.online and status.sensor_online)


def _events(sessions: Any) -> int:
    from accessd.models import AccessEvent

    with sessions() as db:
        return len(db.scalars(select(AccessEvent.id)).all())


def _alarms(sessions: Any) -> bool:
    from accessd.models import Alarm

    with sessions() as db:
        return db.scalars(select(Alarm.id)).first() is not None


def people_names(ids: dict[str, str]) -> list[str]:
    return [*ids, "Zoe Visser"]


def _secrets(sessions: Any, keys: FileKeyProvider, keyring: Path) -> dict[str, bytes | str]:
    """Key material and templates as they are now: master keys, the signing key, the sensor
    password, every customer's data key, every staff TOTP secret, every template."""
    found: dict[str, bytes | str] = {}
    data = json.loads(keyring.read_text())
    for item in data["master_keys"]:
        found[f"master key {item['id']}"] = base64.b64decode(item["key"])
    found["signing key"] = base64.b64decode(data["signing_key"])
    found["sensor password"] = str(data["sensor_password"])
    if data.get("door_link_key"):
        found["door wire key"] = base64.b64decode(data["door_link_key"])
    with sessions() as db:
        for row, customer in db.execute(select(DataKey, Customer.public_id).join(
                Customer, Customer.id == DataKey.customer_id)):
            found[f"data key of {customer}"] = unwrap_data_key(
                keys, WrappedDataKey(row.master_key_id, row.wrapped_key), customer_id=customer)
        for finger, person, customer, key in db.execute(
                select(Finger, Person, Customer, DataKey)
                .join(Person, Person.id == Finger.person_id)
                .join(Customer, Customer.id == Finger.customer_id)
                .join(DataKey, DataKey.id == Finger.data_key_id)):
            found[f"template {finger.public_id}"] = open_sealed(keys, finger, person, customer,
                                                               key)
    return found


def _canaries(names: list[str], emails: list[str], pins: list[str],
              secrets: dict[str, bytes | str]) -> list[tuple[str, re.Pattern[str]]]:
    out: list[tuple[str, re.Pattern[str]]] = []
    for label, texts in (("name", names), ("e-mail", emails)):
        for text in texts:  # as typed, and as a URL or a form would carry it
            for form in {text, quote(text), quote_plus(text)}:
                out.append((f"{label} {form}", re.compile(re.escape(form), re.I)))
    for pin in pins:
        out.append((f"PIN {pin}", re.compile(rf"(?<!\d){pin}(?!\d)")))
    for label, value in secrets.items():
        if isinstance(value, str):  # the sensor password: a number
            out.append((label, re.compile(rf"(?<!\d){value}(?!\d)")))
            continue
        if label.startswith("template"):
            for i in range(0, len(value) - 15, 8):
                window = value[i:i + 16]
                out.append((f"{label} bytes {i}", re.compile(re.escape(window.hex()), re.I)))
                out.append((f"{label} repr {i}", re.compile(re.escape(repr(window)[2:-1]))))
            for i in range(0, len(value) - 14, 3):  # base64 of any 15 aligned bytes
                out.append((f"{label} b64 {i}", re.compile(
                    re.escape(base64.b64encode(value[i:i + 15]).decode()))))
            continue
        out.append((f"{label} hex", re.compile(re.escape(value.hex()[:32]), re.I)))
        out.append((f"{label} b64", re.compile(re.escape(base64.b64encode(value).decode()[:20]))))
        out.append((f"{label} urlsafe", re.compile(
            re.escape(base64.urlsafe_b64encode(value).decode()[:20]))))
    return out


def _panel_day(settings: Any, olga: StaffMember, ids: dict[str, str]) -> list[str]:
    """Staff at the panel (its clock injected): a failed and a good sign-in, the dashboard,
    customers, a person, a history search by name, the register; every log line at DEBUG."""
    import io

    buffer = io.StringIO()
    handler = configure_logging("kv", "DEBUG", stream=buffer)
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    app = create_app({"ACCESSD_SETTINGS": settings, "ACCESSD_CLOCK": clock,
                      "SECRET_KEY": "a-test-secret-key-long-enough-0123456789abcdef",
                      "TESTING": True})
    try:
        client = app.test_client()
        token = csrf_token(client, "/login")
        client.post("/login", data={"csrf_token": token, "username": "olga",
                                    "password": "wrong " + olga.password, "code": "000000"})
        assert sign_in(client, olga, clock).status_code == 302
        for path in ("/", "/dashboard/state.json", "/customers/",
                     f"/privacy/persons/{ids['Chidi Okafor']}",
                     "/history/?q=Chidi+Okafor", "/history/?person=Dana+Kowalski",
                     f"/customers/persons/{ids['Dana Kowalski']}", "/privacy/register", "/audit/",
                     "/staff/"):
            client.get(path)
    finally:
        current_panel(app).engine.dispose()
        handler.flush()
        import logging

        logging.getLogger().removeHandler(handler)
    return buffer.getvalue().splitlines()
