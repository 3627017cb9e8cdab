"""An installation and its door, for real: ``accessd init``, the simulator on ptys, the daemon
with its real drivers, and a customer with people to let in or refuse."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.main import main as accessd_main
from accessd.config import Settings, load_settings
from accessd.crypto import FileKeyProvider
from accessd.customers.pins import hash_pin
from accessd.db import create_db_engine, make_sessionmaker
from accessd.door import command_table
from accessd.door.daemon import Daemon
from accessd.door.supervision import Supervisor
from accessd.models import (
    AccessEvent,
    CommandKind,
    CommandState,
    Consent,
    Credential,
    Customer,
    DeviceCommand,
    LawfulBasis,
    Person,
)
from accessd.zones.grants import grant_default_zones
from firmware_bridge.doorboard import SerialDoorBoard
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim.rig import RigOptions, SimRig
from tests.installation import provision_door, set_config

WAIT = 10.0  # seconds: only a guard against hanging; nothing here asserts speed


def eventually(check: Callable[[], object], timeout: float = WAIT, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


@dataclass
class Door:
    """What a test holds: the simulated world, the daemon, the database."""

    rig: SimRig
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: FileKeyProvider
    config: Path
    daemon: Daemon | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.start_with()

    def start_with(self, *, supervisor: Supervisor | None = None,
                   before_run: Callable[[Daemon], None] | None = None) -> None:
        """``start``, with systemd's supervisor, and ``before_run`` given the daemon first."""
        s = self.settings
        sensor = ZfmSensor(s.sensor.port, timeout=s.sensor.timeout_seconds)
        door = SerialDoorBoard(s.door.port, heartbeat_timeout=s.door.heartbeat_timeout,
                               link_key=self.keys.door_link_key())
        self.daemon = Daemon(s, self.engine, self.sessions, self.keys, sensor, door,
                             supervisor=supervisor)
        if before_run is not None:
            before_run(self.daemon)
        self.thread = threading.Thread(target=self.daemon.run, daemon=True)
        self.thread.start()
        eventually(lambda: self.daemon is not None and self.daemon.sensor_health.connected
                   and self.daemon.door_health.connected and not self.daemon.jobs,
                   what="the daemon to connect and reconcile")

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            assert self.thread is not None
            self.thread.join(timeout=15)
            self.daemon = None

    def events(self) -> list[AccessEvent]:
        with self.sessions() as session:
            return list(session.scalars(select(AccessEvent).order_by(AccessEvent.id)))

    def wait_event(self, kind: str, after: int = 0) -> AccessEvent:
        found = eventually(lambda: [e for e in self.events() if e.kind == kind and e.id > after],
                           what=f"a {kind} event")
        return found[0]  # type: ignore[index]

    def last_event_id(self) -> int:
        events = self.events()
        return events[-1].id if events else 0

    def present(self, finger: str) -> None:
        """A person puts a finger on the reader and lifts it once the door reacted."""
        self.rig.sensor.place(finger)

    def lift(self) -> None:
        """Lift the finger and wait until the reader has seen the empty glass, as a real
        person's next attempt comes well after the daemon's next poll."""
        lifted_at = time.monotonic()
        self.rig.sensor.lift()
        eventually(lambda: any(h.at > lifted_at and h.instruction == "GenImg" and h.code == 0x02
                               for h in self.rig.sensor.history[-50:]),
                   what="the reader to see the finger gone")

    def enrol(self, person_id: int, finger: str, label: str = "right_index") -> DeviceCommand:
        """Ask the daemon to enrol, and play the person following the reader's prompts."""
        with self.sessions.begin() as session:
            assert self.daemon is not None
            command_id = command_table.request(session, self.daemon.door_id, CommandKind.ENROLL,
                                          created_by="test", person_id=person_id,
                                          finger=label, by="alice-staff").id
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.sessions() as session:
                command = session.get_one(DeviceCommand, command_id)
                state, progress = command.state, command.progress or ""
            if state in (CommandState.DONE, CommandState.FAILED):
                with self.sessions() as session:
                    done = session.get_one(DeviceCommand, command_id)
                    session.expunge(done)
                return done
            step = f"{progress}"
            if step not in seen:
                seen.add(step)
                if step.startswith("place"):
                    self.rig.sensor.place(finger)
                elif step == "lift":
                    self.rig.sensor.lift()
            if progress == "lift" and self.rig.sensor.finger is not None:
                self.rig.sensor.lift()
            if progress.startswith("place") and self.rig.sensor.finger is None:
                self.rig.sensor.place(finger)
            time.sleep(0.02)
        raise AssertionError("enrolment did not finish")


@contextmanager
def installed(tmp_path: Path, data_dir: Path | None = None,
              options: RigOptions | None = None, capacity: int = 100) -> Iterator[Door]:
    """``accessd init`` (its data directory in ``data_dir``, default ``tmp_path/data``), the
    simulator (a sensor of ``capacity`` slots unless ``options`` say otherwise), and a daemon
    ready to start."""
    rig = SimRig(tmp_path / "sim",
                 options or RigOptions(capacity=capacity, heartbeat_timeout_ms=3000))
    rig.start()
    config = tmp_path / "accessd.toml"
    assert accessd_main(["--config", str(config), "init", "--data-dir",
                         str(data_dir or tmp_path / "data")]) == 0
    set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path,
                        "access.release_seconds": 3, "sensor.timeout_seconds": 0.5})
    provision_door(config)
    settings = load_settings(config)
    engine = create_db_engine(settings.database.url)
    assert settings.keys.master_key_file is not None
    installation = Door(rig, settings, engine, make_sessionmaker(engine),
                        FileKeyProvider(settings.keys.master_key_file), config)
    try:
        yield installation
    finally:
        installation.stop()
        engine.dispose()
        rig.stop()


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    with installed(tmp_path) as installation:
        yield installation


@dataclass(frozen=True)
class People:
    acme: int
    alice: int  # consent given; finger and PIN
    bob: int  # consent given; finger only
    alice_code: str
    alice_pin: str


@pytest.fixture
def people(door: Door) -> People:
    return add_people(door)


def add_people(door: Door) -> People:
    """Acme Hosting, its contract running, and two of its people who gave consent."""
    today = dt.date.today()
    with door.sessions.begin() as session:
        acme = Customer(name="Acme Hosting B.V.", contract_start=today - dt.timedelta(days=30),
                        contract_end=today + dt.timedelta(days=300), grace_days=0,
                        lawful_basis=LawfulBasis.CONSENT)
        session.add(acme)
        session.flush()
        grant_default_zones(session, acme)  # the site's zone, as `accessd customer add` does
        alice = Person(customer_id=acme.id, name="Alice Jansen",
                       credential=Credential.FINGER_OR_PIN, keypad_code="4711",
                       pin_hash=hash_pin("285714"))
        bob = Person(customer_id=acme.id, name="Bob de Vries", credential=Credential.FINGER)
        session.add_all([alice, bob])
        session.flush()
        for person in (alice, bob):
            session.add(Consent(person_id=person.id, customer_id=acme.id, text_version="1",
                                witnessed_by="alice-staff"))
        return People(acme.id, alice.id, bob.id, "4711", "285714")


class Traffic:
    """A finger presented again and again, every ``every`` seconds (on the glass for half of
    it), on a thread of its own: people keep coming while a test breaks things."""

    def __init__(self, door: Door, finger: str, every: float = 0.5) -> None:
        self.door, self.finger, self.every = door, finger, every
        self.presented = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.door.rig.sensor.lift()

    def _run(self) -> None:
        sensor = self.door.rig.sensor
        while not self._stop.is_set():
            sensor.place(self.finger)
            self.presented += 1
            if self._stop.wait(self.every / 2):
                return
            sensor.lift()
            self._stop.wait(self.every / 2)


def unlocked_since(door: Door, since: float) -> list[float]:
    """When the relay unlocked after ``since`` (monotonic seconds), per the simulator."""
    return [c.at for c in door.rig.door.history
            if c.what == "relay_locked" and not c.value and c.at > since]
