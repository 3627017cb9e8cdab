"""The command line's audit trail: every command that reads, changes, exports or deletes
personal data leaves exactly one record (actor ``cli:<os user>``, the command's action, its
target by public id, the outcome), refused ones as refused; every command is either declared
audited or listed as not audited, with the reason.

Each case runs the real ``accessd.cli.main.main(argv)`` on a world of its own: Acme (Ada, Bob)
and Globex (Carol) with sealed fingers and a history, an ended customer with Eve, one open
data-subject request, and doors "main" and "cage-7".
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.audit import AUDITED, NOT_AUDITED, every_command
from accessd.cli.main import build_parser, main
from accessd.crypto import FileKeyProvider
from accessd.door import command_table
from accessd.models import (
    AuditOutcome,
    AuditRecord,
    Customer,
    DataSubjectRequest,
    Door,
    Person,
    RequestKind,
)
from accessd.rights.requests import record_request
from tests.rights.seed import World, add_customer, add_person, seed_world

NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
OS_USER = "operator9"
OK, REFUSED = AuditOutcome.SUCCESS, AuditOutcome.REFUSED


@dataclass(frozen=True)
class Case:
    """One invocation: what to run first (unrecorded setup), then the command and the one
    record it must leave (``action`` ``None``: none at all)."""

    argv: tuple[str, ...]
    action: str | None
    outcome: AuditOutcome = OK
    target: str | None = None  # with {placeholders}; "person:*": some person
    setup: tuple[tuple[str, ...], ...] = ()
    stdin: str | None = None
    daemon: bool = False  # a stand-in daemon finishes door commands
    release_database: bool = False  # a restore needs every other connection closed
    id: str = field(default="", compare=False)


def case(*argv: str, action: str | None, outcome: AuditOutcome = OK, target: str | None = None,
         **options: Any) -> Any:
    made = Case(tuple(argv), action, outcome, target, **options)
    return pytest.param(made, id=f"{' '.join(argv[:2])}-{outcome.value}")


CASES = [
    case("customer", "add", "Initech", "--start", "2026-01-01", action="customer.create",
         target="customer:*"),
    case("customer", "add", "Acme Hosting CANARY-ACME", "--start", "2026-01-01",
         action="customer.create", outcome=REFUSED),
    case("customer", "show", "{acme}", action="customer.view", target="customer:{acme}"),
    case("customer", "show", "Nobody BV", action="customer.view", outcome=REFUSED),
    case("customer", "end", "{acme}", "--last-day", "2030-12-31", "--yes",
         action="customer.end_contract", target="customer:{acme}"),
    case("customer", "end", "{acme}", "--last-day", "2000-01-01", "--yes",
         action="customer.end_contract", outcome=REFUSED, target="customer:{acme}"),
    case("customer", "set-basis", "{globex}", "necessity", "--ref", "DPIA-9",
         action="customer.set_basis", target="customer:{globex}"),
    case("customer", "set-basis", "{globex}", "necessity", action="customer.set_basis",
         outcome=REFUSED, target="customer:{globex}"),
    case("person", "add", "{acme}", "Dave Example", action="person.create", target="person:*"),
    case("person", "add", "{ended}", "Frank Example", action="person.create", outcome=REFUSED,
         target="customer:{ended}"),
    case("person", "list", "--customer", "{acme}", action="person.list",
         target="customer:{acme}"),
    case("person", "list", "--customer", "Nobody BV", action="person.list", outcome=REFUSED),
    case("person", "show", "{ada}", action="person.view", target="person:{ada}"),
    case("person", "show", "Nobody", action="person.view", outcome=REFUSED),
    case("person", "restrict", "{ada}", "--reason", "accuracy contested",
         action="person.restrict", target="person:{ada}"),
    case("person", "restrict", "{ada}", "--reason", " ", action="person.restrict",
         outcome=REFUSED, target="person:{ada}"),
    case("person", "unrestrict", "{ada}", action="person.unrestrict", target="person:{ada}",
         setup=(("person", "restrict", "{ada}", "--reason", "contested"),)),
    case("person", "unrestrict", "{ada}", action="person.unrestrict", outcome=REFUSED,
         target="person:{ada}"),
    case("person", "set-pin", "{ada}", action="person.set_pin", target="person:{ada}"),
    case("person", "set-pin", "{ada}", "--pin-stdin", action="person.set_pin", outcome=REFUSED,
         target="person:{ada}", stdin="12\n"),
    case("person", "rectify", "{ada}", "--email", "ada@new.example", action="person.rectify",
         target="person:{ada}"),
    case("person", "rectify", "{ada}", "--email", "not-an-address", action="person.rectify",
         outcome=REFUSED, target="person:{ada}"),
    case("consent", "record", "{bob}", "--witness", "olga", action="consent.record",
         target="person:{bob}", setup=(("withdraw-consent", "{bob}"),)),
    case("consent", "record", "{ada}", "--witness", "olga", action="consent.record",
         outcome=REFUSED, target="person:{ada}"),
    case("events", "list", "--person", "{ada}", action="events.read", target="person:{ada}"),
    case("events", "list", "--person", "Nobody", action="events.read", outcome=REFUSED),
    case("events", "export", "--out", "{tmp}/events.csv", "--customer", "{acme}",
         action="events.export", target="customer:{acme}"),
    case("events", "export", "--out", "{tmp}", action="events.export", outcome=REFUSED),
    case("export", "person", "{ada}", "--out", "{tmp}/ada.zip", action="person.export",
         target="person:{ada}"),
    case("export", "person", "Nobody", "--out", "{tmp}/x.zip", action="person.export",
         outcome=REFUSED),
    case("export", "customer", "{acme}", "--out", "{tmp}/acme.zip", action="customer.export",
         target="customer:{acme}"),
    case("export", "customer", "Nobody BV", "--out", "{tmp}/x.zip", action="customer.export",
         outcome=REFUSED),
    case("erase", "person", "{ada}", "--yes", action="person.erase", target="person:{ada}"),
    case("erase", "person", "{ada}", action="person.erase", outcome=REFUSED,
         target="person:{ada}"),
    case("person", "remove-finger", "{ada}", "--finger", "left_index", "--yes",
         action="person.remove_finger", target="person:{ada}"),
    case("person", "remove-finger", "{ada}", "--finger", "left_thumb", "--yes",
         action="person.remove_finger", outcome=REFUSED, target="person:{ada}"),
    case("withdraw-consent", "{bob}", action="person.withdraw_consent", target="person:{bob}"),
    case("withdraw-consent", "{bob}", action="person.withdraw_consent", outcome=REFUSED,
         target="person:{bob}", setup=(("withdraw-consent", "{bob}"),)),  # nothing left
    case("withdraw-consent", "{bob}", action="person.withdraw_consent", outcome=REFUSED,
         setup=(("erase", "person", "{bob}", "--yes"),)),  # gone: no target to name
    case("requests", action="request.list"),
    case("request", "add", "access", "--received", "2026-03-09", "--person", "{ada}",
         "--requester", "Ada herself", action="request.record", target="request:*"),
    case("request", "add", "access", "--received", "2026-03-09", "--person", "{ada}",
         "--requester", " ", action="request.record", outcome=REFUSED, target="person:{ada}"),
    case("request", "extend", "{request}", "--until", "2026-05-01", "--reason", "many systems",
         action="request.extend", target="request:{request_public}"),
    case("request", "extend", "{request}", "--until", "2026-07-01", "--reason", "many systems",
         action="request.extend", outcome=REFUSED, target="request:{request_public}"),
    case("request", "close", "{request}", "--outcome", "export sent", action="request.close",
         target="request:{request_public}"),
    case("request", "close", "{request}", "--outcome", "again", action="request.close",
         outcome=REFUSED, target="request:{request_public}",
         setup=(("request", "close", "{request}", "--outcome", "export sent"),)),
    case("request", "close", "999", "--outcome", "x", action="request.close", outcome=REFUSED),
    case("backup", action="backup.create"),
    case("backup", "prune", action="backup.prune"),
    case("restore", "{backup}", "--yes-i-stopped-the-daemon", action="backup.restore",
         setup=(("backup",),), release_database=True),
    case("restore", "{backup}", action="backup.restore", outcome=REFUSED, setup=(("backup",),)),
    case("purge", "--now", action="purge.run"),
    case("purge", "--dry-run", action=None),  # a preview reads no personal data
    case("retention", "run", action="retention.run"),
    case("enroll", "{bob}", "--finger", "right_ring", "--no-wait", action="enrolment.start",
         target="person:{bob}"),
    case("enroll", "{ada}", "--finger", "right_ring", "--no-wait", action="enrolment.start",
         outcome=REFUSED, target="person:{ada}"),  # two fingers already: the most allowed
    case("enroll", "{eve}", "--finger", "right_index", "--no-wait", action="enrolment.start",
         outcome=REFUSED, target="person:{eve}"),  # the contract is over
    case("door", "unlock", "--reason", "escorted visitor", action="door.remote_unlock",
         target="door:main", daemon=True),
    case("door", "unlock", "--reason", "visitor", "--door", "nowhere",
         action="door.remote_unlock", outcome=REFUSED),
    case("resync", "--door", "cage-7", action="door.resync", target="door:cage-7", daemon=True),
    case("resync", "--door", "nowhere", action="door.resync", outcome=REFUSED),
    case("alarm", "clear", action="door.clear_alarms", target="door:main", daemon=True),
    case("alarm", "clear", "--door", "nowhere", action="door.clear_alarms", outcome=REFUSED),
    case("sensor", "approve", action="door.approve_sensor", outcome=REFUSED,
         target="door:main"),  # it refused no sensor
    case("door", "provision", action="door.provision_wire_key", outcome=REFUSED,
         target="door:main"),  # no board on the port
    case("keys", "rotate", action="keys.rotate"),
    case("zone", "add", "hall-a", "--kind", "hall", action="zone.create"),
    case("zone", "add", "site", "--kind", "hall", action="zone.create", outcome=REFUSED),
    case("zone", "move", "hall-b", "--in", "site", action="zone.move",
         setup=(("zone", "add", "hall-b", "--kind", "hall"),)),
    case("zone", "move", "site", "--in", "site", action="zone.move", outcome=REFUSED),
    case("zone", "remove", "hall-c", action="zone.delete",
         setup=(("zone", "add", "hall-c", "--kind", "hall"),)),
    case("zone", "remove", "nowhere", action="zone.delete", outcome=REFUSED),
    case("zone", "new-customers", "site", "off", action="zone.grant_new_customers"),
    case("zone", "new-customers", "nowhere", "on", action="zone.grant_new_customers",
         outcome=REFUSED),
    case("door", "place", "main", "site", action="door.place", target="door:main"),
    case("door", "place", "main", "nowhere", action="door.place", outcome=REFUSED,
         target="door:main"),
    case("door", "mode", "main", "finger_and_pin", action="door.set_mode", target="door:main"),
    case("door", "mode", "nowhere", "pin", action="door.set_mode", outcome=REFUSED),
    case("grant", "add", "{acme}", "site", action="grant.set", target="customer:{acme}"),
    case("grant", "add", "{acme}", "nowhere", action="grant.set", outcome=REFUSED,
         target="customer:{acme}"),
    case("grant", "list", "{acme}", action="grant.list", target="customer:{acme}"),
    case("grant", "list", "Nobody BV", action="grant.list", outcome=REFUSED),
    case("grant", "revoke", "{acme}", "site", action="grant.revoke", target="customer:{acme}",
         setup=(("grant", "add", "{acme}", "site"),)),
    case("grant", "revoke", "{acme}", "site", action="grant.revoke", outcome=REFUSED,
         target="customer:{acme}"),
    case("holiday", "add", "2026-12-25", "Christmas", action="holiday.add"),
    case("holiday", "add", "2026-12-25", "Christmas", action="holiday.add", outcome=REFUSED,
         setup=(("holiday", "add", "2026-12-25", "Christmas"),)),
    case("holiday", "remove", "2026-12-25", action="holiday.remove",
         setup=(("holiday", "add", "2026-12-25", "Christmas"),)),
    case("holiday", "remove", "2026-12-25", action="holiday.remove", outcome=REFUSED),
    case("site", "add-door-role", "--door", "cage-7", "--role", "door_cage_7",
         "--password-file", "{tmp}/door.password", action="site.add_door_role",
         outcome=REFUSED, target="door:cage-7"),  # SQLite: no roles (tests/site: PostgreSQL)
    case("user", "add", "zoe", "--role", "operator", action="staff.create",
         target="staff:*"),  # the staff commands write their successes themselves
    case("user", "add", "Not A Name!", "--role", "operator", action="staff.create",
         outcome=REFUSED),
    case("user", "disable", "yves", action="staff.disable", target="staff:*",
         setup=(("user", "add", "yves", "--role", "operator"),)),
    case("user", "disable", "xena", action="staff.disable", outcome=REFUSED, target="staff:*",
         setup=(("user", "add", "xena", "--role", "admin"),)),  # the last admin
    case("user", "reset-password", "yves", action="staff.reset_password", target="staff:*",
         setup=(("user", "add", "yves", "--role", "operator"),)),
    case("user", "reset-password", "nobody", action="staff.reset_password", outcome=REFUSED),
    case("user", "unlock", "yves", action="staff.unlock", target="staff:*",
         setup=(("user", "add", "yves", "--role", "operator"),)),
    case("user", "unlock", "nobody", action="staff.unlock", outcome=REFUSED),
    case("token", "add", "portal", "--role", "auditor", action="token.create",
         target="token:portal"),
    case("token", "add", "portal", "--role", "auditor", "--expires-days", "0",
         action="token.create", outcome=REFUSED),
    case("token", "revoke", "portal", action="token.revoke", target="token:portal",
         setup=(("token", "add", "portal", "--role", "auditor"),)),
    case("token", "revoke", "nothing", action="token.revoke", outcome=REFUSED,
         target="token:nothing"),
]


@pytest.fixture
def world(sessions: sessionmaker[Session], keys: FileKeyProvider) -> dict[str, str]:
    """The world of each case, by the placeholders its command lines use."""
    with sessions.begin() as session:
        made: World = seed_world(session, keys)
        ended = add_customer(session, "Ended BV", contract_end=dt.date(2026, 1, 31))
        eve = add_person(session, ended, "Eve Example", "eve@ended.example")
        request = record_request(session, RequestKind.ACCESS, dt.date(2026, 3, 1),
                                 requester_name="Carol herself")
        return {"acme": str(made.acme_public_id), "globex": str(made.globex_public_id),
               "ada": str(made.ada.public_id), "bob": str(made.bob.public_id),
               "ended": str(ended.public_id), "eve": str(eve.public_id),
               "request": str(request.id), "request_public": str(request.public_id)}


@pytest.fixture
def config(tmp_path: Path, db_url: str, keys: FileKeyProvider) -> Path:
    path = tmp_path / "accessd.toml"
    (tmp_path / "data").mkdir()
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n'
                    f'[database]\nurl = "{db_url}"\n'
                    f'[keys]\nmaster_key_file = "{keys.path}"\n'
                    f'[backup]\ndir = "{tmp_path / "backups"}"\n')
    return path


def _fake_daemon(sessions: sessionmaker[Session], stop: threading.Event) -> None:
    """Finishes every door command, as a running daemon would."""
    with sessions() as session:
        doors = session.scalars(select(Door.id)).all()
    while not stop.is_set():
        for door_id in doors:
            claimed = command_table.claim_next(sessions, door_id)
            if claimed is not None:
                command_table.finish(sessions, claimed.id, ok=True, message="done")
        stop.wait(0.05)


def _records(sessions: sessionmaker[Session]) -> list[AuditRecord]:
    with sessions() as session:
        rows = list(session.scalars(select(AuditRecord).order_by(AuditRecord.id)))
        session.expunge_all()
        return rows


@pytest.mark.parametrize("given", CASES)
def test_each_command_leaves_exactly_one_record_with_its_outcome(
        given: Case, world: dict[str, str], config: Path, tmp_path: Path,
        sessions: sessionmaker[Session], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, OS_USER)
    values = {**world, "tmp": str(tmp_path)}

    def run(argv: tuple[str, ...]) -> int:
        if "{backup}" in argv:
            values["backup"] = str(next((tmp_path / "backups").glob("*.backup")))
        filled = [word.format(**values) for word in argv]
        try:
            return main(["--config", str(config), *filled], wall=lambda: NOW)
        except SystemExit as exc:
            return int(exc.code or 0)

    for argv in given.setup:
        assert run(argv) == 0, capsys.readouterr().err
    before = {(r.id, r.action, r.outcome) for r in _records(sessions)}
    if given.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(given.stdin))
    if given.release_database:
        engine: Engine = sessions.kw["bind"]
        engine.dispose()
    stop = threading.Event()
    daemon = threading.Thread(target=_fake_daemon, args=(sessions, stop), daemon=True)
    if given.daemon:
        daemon.start()
    try:
        code = run(given.argv)
    finally:
        stop.set()
        if given.daemon:
            daemon.join(timeout=10)
    err = capsys.readouterr().err
    assert (code == 0) == (given.outcome is OK or given.action is None), err
    # By content, not position: a restore brings back the backup's older audit log.
    new = [r for r in _records(sessions) if (r.id, r.action, r.outcome) not in before]
    if given.action is None:
        assert new == []
        return
    assert len(new) == 1, [(r.action, r.outcome) for r in new]
    (record,) = new
    assert (record.action, record.outcome) == (given.action, given.outcome), record.details
    assert record.actor == f"cli:{OS_USER}" and record.source_address == "local"
    expected = None if given.target is None else given.target.format(**values)
    if expected is not None and expected.endswith(":*"):
        assert record.target is not None and record.target.startswith(expected[:-1])
    else:
        assert record.target == expected
    if given.outcome is REFUSED:
        assert record.details is not None and record.details["error"].endswith("Error")


def test_every_command_is_declared_audited_or_not_with_a_reason() -> None:
    commands = set(every_command(build_parser()))
    assert not set(AUDITED) & set(NOT_AUDITED)
    assert set(AUDITED) | set(NOT_AUDITED) == commands, (
        "declare new commands in accessd.cli.audit: "
        f"{sorted(commands - set(AUDITED) - set(NOT_AUDITED))}; "
        f"stale: {sorted(set(AUDITED) | set(NOT_AUDITED) - commands)}")
    assert all(reason.strip() for reason in NOT_AUDITED.values())


def test_every_audited_command_is_exercised_above() -> None:
    exercised = {_words(p.values[0].argv) for p in CASES}
    assert set(AUDITED) <= exercised, sorted(set(AUDITED) - exercised)


def _words(argv: tuple[str, ...]) -> str:
    commands = set(every_command(build_parser()))
    for length in (2, 1):
        words = " ".join(argv[:length])
        if words in commands:
            return words
    raise AssertionError(argv)


def test_an_audited_command_whose_record_cannot_be_written_says_so(
        world: dict[str, str], config: Path, sessions: sessionmaker[Session],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("accessd.staff.record_audit", broken)
    code = main(["--config", str(config), "person", "show", world["ada"]], wall=lambda: NOW)
    assert code == 0
    err = capsys.readouterr().err
    assert "audit record of `person show` (success) could not be written: disk full" in err
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 0
        assert session.scalar(select(func.count()).select_from(Person)) == 4
        assert session.scalar(select(func.count()).select_from(Customer)) == 3
        assert session.scalar(select(func.count()).select_from(DataSubjectRequest)) == 1
