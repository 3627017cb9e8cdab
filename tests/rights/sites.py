"""Installations made the way an operator makes them (``accessd init``), driven through the real
command line, with a canary world seeded into them: for the backup and disaster-recovery tests.

Every personal value is a canary found nowhere else, so a test can grep a backup's plaintext
for it: names (looked for in UTF-8 and UTF-16), e-mails, notes, PIN hashes, requesters, and
fingerprint characteristics of 512 bytes made by the simulator's finger model.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from accessd.cli.main import main as accessd_main
from accessd.config import Settings, load_settings
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker
from accessd.fingers.sealed import seal
from accessd.history.chain import append_event
from accessd.models import (
    Customer,
    Door,
    EventKind,
    EventMethod,
    Finger,
    FingerLabel,
    Person,
    new_public_id,
)
from hardware_sim import fingers
from tests.installation import set_config


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Site:
    """One installation: its config file, settings and keyring, and a way to run accessd."""

    config: Path
    settings: Settings
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    @property
    def keyring(self) -> Path:
        assert self.settings.keys.master_key_file is not None
        return self.settings.keys.master_key_file

    def keys(self) -> FileKeyProvider:
        return FileKeyProvider(self.keyring)

    def run(self, *argv: str, stdin: str | None = None) -> Run:
        self.capsys.readouterr()
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = accessd_main(["--config", str(self.config), *argv])
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def ok(self, *argv: str, stdin: str | None = None) -> str:
        done = self.run(*argv, stdin=stdin)
        assert done.code == 0, f"accessd {' '.join(argv)}: {done.err}"
        return done.out


def make_site(root: Path, backups: Path, capsys: pytest.CaptureFixture[str],
              monkeypatch: pytest.MonkeyPatch, **config: object) -> Site:
    """``accessd init`` in ``root/data``, its backups in ``backups`` (another medium)."""
    config_file = root / "accessd.toml"
    assert accessd_main(["--config", str(config_file), "init", "--data-dir",
                         str(root / "data")]) == 0
    set_config(config_file, {"backup.dir": str(backups), **config})
    monkeypatch.setenv("USER", "operator1")
    return Site(config_file, load_settings(config_file), capsys, monkeypatch)


def replace_keyring(site: Site, offline_copy: Path) -> None:
    """Put the keyring's offline copy in place of the one ``accessd init`` made."""
    shutil.copyfile(offline_copy, site.keyring)
    site.keyring.chmod(0o600)


@dataclass
class Canary:
    """One seeded person, with what to look for."""

    name: str
    email: str
    notes: str
    requester: str
    pin: str
    customer: str
    template: bytes = b""
    finger: str = ""  # the simulator's name for the finger
    pin_hash: str = ""
    keypad: str = ""

    def strings(self) -> list[str]:
        return [self.name, self.email, self.notes, self.requester, self.pin_hash]


@dataclass
class CanaryWorld:
    """Acme (Ada, Alan) leaves; Globex (Carol, Bob) stays, Bob asks to be erased."""

    acme: str = "Acme Hosting CANARY-ACME-7f3"
    globex: str = "Globex Colo CANARY-GLOBEX-2b9"
    people: dict[str, Canary] = field(default_factory=dict)

    def of(self, customer: str) -> list[Canary]:
        return [c for c in self.people.values() if c.customer == customer]


def template_of(finger: str) -> bytes:
    """The 512-byte template the simulated sensor makes of two placements of ``finger``."""
    made = fingers.combine(fingers.characteristics(fingers.impression(finger, 0)),
                           fingers.characteristics(fingers.impression(finger, 1)))
    assert made is not None and len(made) == 512
    return made


def seed_canaries(site: Site) -> CanaryWorld:
    """The world, through the command line where it has a command: customers, people, PINs,
    notes, consents, requests; fingers sealed and events chained by the services (enrolment
    needs a reader: ``tests/daemon`` does it for real)."""
    world = CanaryWorld()
    site.ok("customer", "add", world.acme, "--start", "2024-01-01", "--lawful-basis",
            "consent")
    site.ok("customer", "add", world.globex, "--start", "2024-01-01", "--lawful-basis",
            "consent")
    for key, customer, name, pin in (
            ("ada", world.acme, "Ada CANARY-ADA-Lovelace", "285714"),
            ("alan", world.acme, "Alan CANARY-ALAN-Turing", "428571"),
            ("carol", world.globex, "Carol CANARY-CAROL-Shaw", "571428"),
            ("bob", world.globex, "Bob CANARY-BOB-Kahn", "714285")):
        canary = Canary(name, f"{key}.canary-mail@example.test", f"Notes CANARY-NOTES-{key}",
                        f"Requester CANARY-REQ-{key}", pin, customer, finger=f"{key}-right-index")
        world.people[key] = canary
        site.ok("person", "add", customer, name, "--email", canary.email, "--credential",
                "finger_or_pin")
        site.ok("person", "rectify", name, "--notes", canary.notes)
        canary.keypad = site.ok("person", "set-pin", name, "--pin-stdin",
                                stdin=f"{pin}\n").split(": ")[1].split("*")[0]
        site.ok("consent", "record", name, "--witness", "operator1")
        site.ok("request", "add", "access", "--received", "2025-01-10", "--person", name,
                "--requester", canary.requester, "--contact", canary.email)
    _fingers_and_history(site, world)
    return world


def _fingers_and_history(site: Site, world: CanaryWorld) -> None:
    engine = create_db_engine(site.settings.database.url)
    sessions = make_sessionmaker(engine)
    keys = site.keys()
    try:
        with sessions.begin() as session:
            door = Door(name="canary-door")
            session.add(door)
            session.flush()
            start = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
            for n, canary in enumerate(world.people.values()):
                person = session.scalars(select(Person).where(Person.name == canary.name)).one()
                customer = session.get_one(Customer, person.customer_id)
                canary.pin_hash = person.pin_hash or ""
                canary.template = template_of(canary.finger)
                finger = Finger(public_id=new_public_id(), customer_id=customer.id,
                                person_id=person.id, label=FingerLabel.RIGHT_INDEX,
                                sensor_slot=n + 1, enrolled_by="operator1")
                seal(session, keys, finger, person, customer, canary.template)
                session.add(finger)
                for i, kind in enumerate((EventKind.GRANTED, EventKind.DENIED, EventKind.GRANTED)):
                    append_event(session, kind=kind, customer=customer, person=person,
                                 door_id=door.id, method=EventMethod.FINGER,
                                 reason=None if kind is EventKind.GRANTED else "outside schedule",
                                 at=start + dt.timedelta(hours=n, minutes=i))
    finally:
        engine.dispose()


def contract_ended(site: Site, customer: str, last_day: dt.date) -> None:
    """The contract's last day is behind us (the command line only takes days to come: here
    time passed, as it does while a Pi is switched off)."""
    engine = create_db_engine(site.settings.database.url)
    try:
        with make_sessionmaker(engine).begin() as session:
            session.scalars(select(Customer).where(Customer.name == customer)).one(
            ).contract_end = last_day
    finally:
        engine.dispose()


def public_id(site: Site, name: str) -> uuid.UUID:
    engine = create_db_engine(site.settings.database.url)
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalars(select(Person.public_id).where(Person.name == name)).one()
    finally:
        engine.dispose()
