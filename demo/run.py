"""``make demo``: a whole door on this machine, with people to let in and refuse.

Starts the simulator, initialises a throwaway installation in ``demo-data/``, seeds customers
and people, starts the daemon and the panel, enrols three fingers through the daemon exactly as
staff would (the script plays the person at the reader), then prints the panel's URL, a login,
and how to play the person at the door. Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from accessd.cli.main import main as accessd_main
from accessd.config import Settings, load_settings, update_config_file
from accessd.crypto import FileKeyProvider
from accessd.customers.pins import generate_pin, hash_pin
from accessd.db import create_db_engine, make_sessionmaker
from accessd.door import command_table
from accessd.door.doors import register_door
from accessd.history.chain import append_event
from accessd.models import (
    CommandKind,
    CommandState,
    Consent,
    Credential,
    Customer,
    DeviceCommand,
    Door,
    EventKind,
    EventMethod,
    LawfulBasis,
    Person,
    StaffRole,
)
from accessd.zones.grants import grant_default_zones
from hardware_sim.control import SimControl

ROOT = Path("demo-data")
PANEL = os.environ.get("ACCESSD_DEMO_PANEL", "127.0.0.1:8080")
"""Where the panel listens; ``make demo ACCESSD_DEMO_PANEL=127.0.0.1:8081`` when 8080 is taken."""
FINGERS = (("Alice Jansen", "alice", "right_index"), ("Bob de Vries", "bob", "left_index"),
           ("Dana Kowalski", "dana", "right_index"))


def seed(settings: Settings) -> dict[str, str]:
    """Three customers (running, ending soon, ended), their people, a week of history."""
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    today = dt.date.today()
    pins: dict[str, str] = {}
    with sessions.begin() as session:
        acme = Customer(name="Acme Hosting B.V.", contract_start=today - dt.timedelta(days=200),
                        contract_end=today + dt.timedelta(days=300), grace_days=0,
                        lawful_basis=LawfulBasis.CONSENT)
        globex = Customer(name="Globex Datacenter Services",
                          contract_start=today - dt.timedelta(days=400),
                          contract_end=today + dt.timedelta(days=5), grace_days=14,
                          lawful_basis=LawfulBasis.NECESSITY,
                          necessity_reference="DPIA-2026-07, section 4 (cage with payment data)")
        initech = Customer(name="Initech", contract_start=today - dt.timedelta(days=700),
                           contract_end=today - dt.timedelta(days=2), grace_days=0,
                           lawful_basis=LawfulBasis.CONSENT)
        session.add_all([acme, globex, initech])
        session.flush()
        for customer in (acme, globex, initech):
            grant_default_zones(session, customer)  # the site's zone, as `customer add` does
        people = {
            "Alice Jansen": Person(customer_id=acme.id, name="Alice Jansen",
                                   email="alice@acme.example", credential=Credential.FINGER_OR_PIN,
                                   keypad_code="4711"),
            "Bob de Vries": Person(customer_id=acme.id, name="Bob de Vries",
                                   credential=Credential.FINGER),
            "Chidi Okafor": Person(customer_id=acme.id, name="Chidi Okafor",
                                   credential=Credential.PIN, keypad_code="5150",
                                   notes="declined biometrics: PIN only"),
            "Dana Kowalski": Person(customer_id=globex.id, name="Dana Kowalski",
                                    credential=Credential.FINGER),
            "Erik Lund": Person(customer_id=initech.id, name="Erik Lund",
                                credential=Credential.FINGER),
        }
        session.add_all(people.values())
        session.flush()
        for name in ("Alice Jansen", "Chidi Okafor"):
            pins[name] = generate_pin()
            people[name].pin_hash = hash_pin(pins[name])
        for person in people.values():
            customer = session.get_one(Customer, person.customer_id)
            if customer.lawful_basis is LawfulBasis.CONSENT:
                session.add(Consent(person_id=person.id, customer_id=customer.id,
                                    text_version=settings.enrollment.consent_text_version,
                                    witnessed_by="demo"))
        door = session.get_one(Door, register_door(session, settings.door.name))
        door.location = "Amsterdam AMS-1, hall 2, main entrance"
        session.flush()
        now = dt.datetime.now(dt.UTC)
        for day in range(7, 0, -1):
            for hour, person in ((8, people["Alice Jansen"]), (9, people["Bob de Vries"]),
                                 (14, people["Dana Kowalski"]), (22, people["Erik Lund"])):
                customer = session.get_one(Customer, person.customer_id)
                append_event(session, kind=EventKind.GRANTED, customer=customer, person=person,
                             door_id=door.id, method=EventMethod.FINGER, reason="allowed",
                             at=now - dt.timedelta(days=day, hours=-hour + now.hour))
            append_event(session, kind=EventKind.UNKNOWN_FINGER, door_id=door.id,
                         method=EventMethod.FINGER, at=now - dt.timedelta(days=day, hours=3))
    engine.dispose()
    return pins


def add_admin(settings: Settings) -> tuple[str, str, str]:
    from accessd.staff.accounts import create_staff_user

    engine = create_db_engine(settings.database.url)
    provider = FileKeyProvider(settings.keys.master_key_file)  # type: ignore[arg-type]
    with make_sessionmaker(engine).begin() as session:
        issued = create_staff_user(session, "admin", StaffRole.ADMIN, provider=provider,
                                   now=dt.datetime.now(dt.UTC))
        assert issued.password is not None and issued.totp_secret is not None
        credentials = ("admin", issued.password, issued.totp_secret)
    engine.dispose()
    return credentials


def enrol_demo_fingers(settings: Settings, control: SimControl) -> None:
    """Enrol through the daemon as staff would, playing each person at the reader."""
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        door_id = session.scalars(select(Door.id).where(Door.name == settings.door.name)).one()
        ids = {p.name: p.id for p in session.scalars(select(Person))}
    for name, finger, label in FINGERS:
        with sessions.begin() as session:
            command_id = command_table.request(session, door_id, CommandKind.ENROLL,
                                          created_by="demo", person_id=ids[name],
                                          finger=label, by="demo").id
        print(f"  enrolling {name} ({label.replace('_', ' ')}) ...", end="", flush=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                command = session.get_one(DeviceCommand, command_id)
                state, progress = command.state, command.progress or ""
            if state in (CommandState.DONE, CommandState.FAILED):
                print(f" {progress}")
                break
            on_glass = control.send("state")["finger"]
            if progress.startswith("place") and on_glass is None:
                control.send("place", finger=finger)
            elif progress == "lift" and on_glass is not None:
                control.send("lift")
            time.sleep(0.05)
    engine.dispose()


def main() -> int:
    """Run the demo until Ctrl-C (or SIGTERM); 0 when stopped so, 1 when a part failed."""
    if ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir()
    children: list[subprocess.Popen[str]] = []
    terminal = _take_terminal()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(children)
    except KeyboardInterrupt:
        print("\ndemo stopped", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut the clean-up
        _stop(children)
        _give_back(terminal)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _start(children: list[subprocess.Popen[str]], argv: list[str],
           **options: Any) -> subprocess.Popen[str]:
    # Each part in a session of its own: the terminal's Ctrl-C reaches only this supervisor,
    # which then stops the parts in order (a part that saw Ctrl-C itself would stop on its own
    # and look like a crash).
    child = subprocess.Popen(argv, start_new_session=True, text=True, **options)
    children.append(child)
    return child


def _stop(children: list[subprocess.Popen[str]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _take_terminal() -> tuple[int, int] | None:
    """Make this process the terminal's foreground on its own, so that Ctrl-C interrupts it and
    not ``make`` (which would report "Interrupt" or "Error" however cleanly the demo stops);
    returns what to give back. Nothing to do without a terminal (CI, a pipe)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        previous = os.tcgetpgrp(fd)
        if previous != os.getpgrp() or os.getpid() == os.getsid(0):
            os.close(fd)
            return None  # in the background, or a session leader: leave the terminal be
        os.setpgid(0, 0)
        _quietly_set_foreground(fd, os.getpgrp())
    except OSError:
        os.close(fd)
        return None
    return fd, previous


def _give_back(terminal: tuple[int, int] | None) -> None:
    if terminal is None:
        return
    fd, previous = terminal
    try:
        _quietly_set_foreground(fd, previous)
    except OSError:
        pass  # make has gone: nothing to give back to
    finally:
        os.close(fd)


def _quietly_set_foreground(fd: int, group: int) -> None:
    # A background group changing the foreground gets SIGTTOU: ignored for this call only.
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, group)
    finally:
        signal.signal(signal.SIGTTOU, old)


def _run(children: list[subprocess.Popen[str]]) -> int:
    sim = _start(children, [sys.executable, "-m", "hardware_sim.cli", "--dir", str(ROOT / "sim")],
                 stdout=subprocess.PIPE)
    assert sim.stdout is not None
    paths = json.loads(sim.stdout.readline())
    config = ROOT / "accessd.toml"
    with contextlib.redirect_stdout(io.StringIO()) as said:
        # `accessd init` tells an installer to edit the ports; here they are the simulator's.
        failed = accessd_main(["--config", str(config), "init", "--data-dir", str(ROOT / "data")])
    if failed:
        print(said.getvalue(), end="", file=sys.stderr)
        return 1
    update_config_file(config, {"sensor.port": paths["sensor"], "door.port": paths["door"],
                                "web.bind": PANEL})
    print(f"installation in {ROOT}/: simulated sensor and door board, SQLite, a new keyring")
    settings = load_settings(config)
    keyring = settings.keys.master_key_file
    assert keyring is not None
    if FileKeyProvider(keyring).door_link_key() is None:
        # A new board and keyring: give the wire its key, as an installer does once.
        with contextlib.redirect_stdout(io.StringIO()) as said:
            failed = accessd_main(["--config", str(config), "door", "provision"])
        if failed:
            print(said.getvalue(), end="", file=sys.stderr)
            return 1
    pins = seed(settings)
    user, password, totp = add_admin(settings)
    secret_file = ROOT / "admin-totp-secret"
    secret_file.touch(mode=0o600)
    secret_file.write_text(totp)
    _start(children, [sys.executable, "-m", "accessd.cli", "--config", str(config), "run"],
           stderr=(ROOT / "daemon.log").open("w"))
    _start(children, [sys.executable, "-m", "accessd.cli", "--config", str(config), "web",
                      "--insecure-http"], stderr=(ROOT / "web.log").open("w"))
    control = SimControl(paths["control"])
    deadline = time.monotonic() + 30
    while not control.send("state").get("door_plugged") or not _daemon_up(settings):
        if time.monotonic() > deadline:
            print(f"the daemon did not start; see {ROOT}/daemon.log", file=sys.stderr)
            return 1
        time.sleep(0.2)
    enrol_demo_fingers(settings, control)
    control.close()
    _banner(config, user, password, totp, pins)
    while True:
        for child, name in zip(children, ("simulator", "daemon", "panel"), strict=True):
            if child.poll() is not None:
                print(f"the {name} stopped (exit status {child.returncode}); see "
                      f"{ROOT}/*.log", file=sys.stderr)
                return 1
        time.sleep(0.5)


def _daemon_up(settings: Settings) -> bool:
    from accessd.models import DoorStatus

    engine = create_db_engine(settings.database.url)
    try:
        with make_sessionmaker(engine)() as session:
            status = session.scalars(select(DoorStatus)).first()
            return bool(status and status.online and status.sensor_online)
    finally:
        engine.dispose()


def _banner(config: Path, user: str, password: str, totp: str, pins: dict[str, str]) -> None:
    ctl = ".venv/bin/accessd-sim-ctl"
    cli = f".venv/bin/accessd --config {config}"
    print(f"""
accessd demo is running (Ctrl-C stops it).

  Panel      http://{PANEL}/
  Login      user {user}, password {password}
             second factor: add this secret to an authenticator app: {totp}
             or print the current code: .venv/bin/python -m demo.run code

  Play the person at the door, in another terminal (from this folder):
    {ctl} place finger=alice      Alice (Acme): the door opens
    {ctl} lift
    {ctl} place finger=mallory    an unknown finger: refused, recorded without a name
    {ctl} keys digits='4711*{pins["Alice Jansen"]}#'   Alice's PIN
    {ctl} keys digits='5150*{pins["Chidi Okafor"]}#'   Chidi, who declined biometrics
    {ctl} force_door              the door forced open: an alarm on the panel
    {ctl} state                   what the simulated sensor and door board see
    {ctl} fault device=sensor kind=unplug     (then kind=replug)
    Other requests: open_door, close_door, press_exit, tamper (README: accessd-sim)

  The command line:
    {cli} status
    {cli} events list --limit 10
    {cli} verify-log
    {cli} purge --dry-run

  Initech's contract ended two days ago: it was purged when the daemon started.
""", flush=True)


def print_code() -> int:
    """The demo admin's current second-factor code (a convenience of the demo only)."""
    import pyotp

    print(pyotp.TOTP((ROOT / "admin-totp-secret").read_text().strip()).now())
    return 0


if __name__ == "__main__":
    sys.exit(print_code() if sys.argv[1:] == ["code"] else main())
