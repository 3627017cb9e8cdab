"""`accessd zone|grant|holiday` and `accessd door list|place|mode` on a real configuration:
a site laid out from the command line, and every mistake refused in words."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.door.doors import register_door
from accessd.models import AuditRecord, CommandKind, DeviceCommand
from tests.customers.conftest import Run

Accessd = Callable[..., Run]
START = (dt.date.today() - dt.timedelta(days=10)).isoformat()


@pytest.fixture
def site(accessd: Accessd, sessions: sessionmaker[Session]) -> None:
    """The migration's zone "site" around hall-a > cage-7; doors front (first, so in
    "site") and cage-7-door; Acme with Ada."""
    with sessions.begin() as session:
        register_door(session, "front")
        register_door(session, "cage-7-door")
    for argv in (("zone", "add", "hall-a", "--kind", "hall", "--in", "site"),
                 ("zone", "add", "cage-7", "--kind", "cage", "--in", "hall-a"),
                 ("door", "place", "cage-7-door", "cage-7"),
                 ("customer", "add", "Acme", "--start", START, "--lawful-basis", "consent"),
                 ("person", "add", "Acme", "Ada", "--credential", "finger")):
        run = accessd(*argv)
        assert run.code == 0, run.err


def test_a_site_is_laid_out_and_listed(accessd: Accessd, site: None) -> None:
    zones = accessd("zone", "list")
    assert [line.split() for line in zones.out.splitlines()] == [
        ["ZONE", "KIND", "DOORS", "GRANTS", "NEW", "CUSTOMERS"],
        ["site", "site", "front", "1", "yes"],
        ["hall-a", "hall", "-", "0", "no"],
        ["cage-7", "cage", "cage-7-door", "0", "no"],
    ]
    assert zones.out.splitlines()[3].startswith("    cage-7")  # indented by depth
    doors = json.loads(accessd("door", "list", "--json").out)
    assert {d["name"]: d["zone_path"] for d in doors} == {
        "cage-7-door": ["site", "hall-a", "cage-7"], "front": ["site"]}


def test_new_customers_get_the_site_zone_and_grants_change_by_command(
        accessd: Accessd, site: None, sessions: sessionmaker[Session]) -> None:
    assert accessd("grant", "list", "Acme").out.splitlines()[1] == "site  24/7"
    run = accessd("grant", "add", "Acme", "cage-7", "--schedule", "Mon-Fri 7:00-19:00",
                  "--closed-on-holidays", "--until", "2030-12-31")
    assert run.code == 0, run.err
    assert run.out == ("Granted zone 'cage-7' to 'Acme': mon-fri 07:00-19:00, closed on "
                       "holidays, until 2030-12-31.\n")
    assert accessd("grant", "add", "Acme", "cage-7", "--person", "1").code == 0
    assert "cage-7" in accessd("grant", "list", "Acme", "--person", "1").out
    # Ada's cage stays inside what Acme still holds...
    assert accessd("grant", "revoke", "Acme", "site").out == "Revoked zone 'site'.\n"
    # ...until Acme loses the cage too.
    assert accessd("grant", "revoke", "Acme", "cage-7").out == (
        "Revoked zone 'cage-7' (and 1 of its people's grants inside it).\n")
    with sessions() as session:
        actions = session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)).all()
    assert actions[-5:] == ["grant.set", "grant.set", "grant.list", "grant.revoke",
                            "grant.revoke"]


@pytest.mark.parametrize(("argv", "says"), [
    (("zone", "move", "site", "--in", "cage-7"),
     "'site' cannot go inside 'cage-7': 'cage-7' is itself inside 'site'"),
    (("zone", "add", "hall-a", "--kind", "hall"), "a zone named 'hall-a' exists already"),
    (("zone", "remove", "hall-a"), "still used by 1 zone"),
    (("door", "place", "front", "hall-b"), "no zone named 'hall-b' (known: cage-7, hall-a"),
    (("grant", "add", "Acme", "cage-7", "--schedule", "mon 9-5"), "is not a window"),
    (("grant", "add", "Acme", "cage-7", "--from", "2030-01-02", "--until", "2030-01-01"),
     "--until: 2030-01-01 is before the first valid day"),
    (("grant", "revoke", "Acme", "cage-7"), "holds no grant of zone 'cage-7'"),
    (("holiday", "remove", "2030-01-01"), "2030-01-01 is not a site holiday"),
])
def test_mistakes_are_refused_in_words(accessd: Accessd, site: None, argv: tuple[str, ...],
                                       says: str) -> None:
    run = accessd(*argv)
    assert run.code != 0
    assert says in run.err
    assert "Traceback" not in run.err


def test_each_change_of_grants_asks_every_door_to_reconcile_its_library(
        accessd: Accessd, site: None, sessions: sessionmaker[Session]) -> None:
    def resyncs() -> int:
        with sessions() as session:
            return len(session.scalars(select(DeviceCommand).where(
                DeviceCommand.kind == CommandKind.RESYNC)).all())

    before = resyncs()
    assert accessd("grant", "add", "Acme", "cage-7").code == 0
    assert resyncs() == before + 2  # both doors: each reconciles only what changed for it
    assert accessd("grant", "list", "Acme").code == 0
    assert resyncs() == before + 2  # reading changes nothing


def test_a_door_mode_is_set_and_shown(accessd: Accessd, site: None) -> None:
    assert accessd("door", "mode", "cage-7-door", "finger_and_pin").code == 0
    doors = json.loads(accessd("door", "list", "--json").out)
    assert {d["name"]: d["auth_mode"] for d in doors} == {
        "cage-7-door": "finger_and_pin", "front": "finger_or_pin"}
    assert accessd("door", "mode", "cage-7-door", "retina").code == 2


def test_holidays_are_added_listed_and_removed(accessd: Accessd, site: None) -> None:
    assert accessd("holiday", "add", "2026-12-25", "Christmas").code == 0
    assert "already" in accessd("holiday", "add", "2026-12-25", "Xmas").err
    assert accessd("holiday", "list").out.splitlines()[1] == "2026-12-25  Christmas"
    assert accessd("holiday", "remove", "2026-12-25").code == 0
    assert accessd("holiday", "list").out == "no holidays recorded\n"
