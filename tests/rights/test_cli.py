"""The commands, run in-process against this test's database and keyring."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.main import main
from accessd.config import Settings
from accessd.models import Customer, DataSubjectRequest, Finger, Person
from tests.rights.seed import World


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def accessd(tmp_path: Path, settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``accessd --config <this test's file> ARGS...``."""
    config = tmp_path / "accessd.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\n'
        f'[database]\nurl = "{settings.database.url}"\n'
        f'[keys]\nmaster_key_file = "{settings.keys.master_key_file}"\n'
        f'[backup]\ndir = "{settings.backup.dir}"\n')
    monkeypatch.setenv("USER", "operator9")

    def run(*argv: str) -> Run:
        try:
            code = main(["--config", str(config), *argv])
        except SystemExit as exc:  # argparse refuses bad input this way
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def test_backup_verify_and_restore(accessd: Callable[..., Run], settings: Settings,
                                   engine: Engine, sessions: sessionmaker[Session]) -> None:
    made = accessd("backup")
    assert made.code == 0, made.err
    [path] = settings.backup.dir.glob("accessd-*.backup")
    assert accessd("backup", "verify", str(path)).code == 0

    refused = accessd("restore", str(path))
    assert refused.code == 1 and "--yes-i-stopped-the-daemon" in refused.err
    held = accessd("restore", str(path), "--yes-i-stopped-the-daemon")
    assert held.code == 1 and "still open in another process" in held.err  # this test's pool
    engine.dispose()
    restored = accessd("restore", str(path), "--yes-i-stopped-the-daemon")
    assert restored.code == 0, restored.err
    assert "re-applied 0 ledger entries" in restored.out
    assert "no backup older than 12 months" in accessd("backup", "prune").out
    with sessions() as session:
        assert len(session.scalars(select(Person)).all()) == 3


def test_backup_into_another_directory(accessd: Callable[..., Run], tmp_path: Path) -> None:
    assert accessd("backup", "--out", str(tmp_path / "elsewhere")).code == 0
    assert len(list((tmp_path / "elsewhere").glob("*.backup"))) == 1


def test_export_person_and_customer(accessd: Callable[..., Run], world: World,
                                   tmp_path: Path) -> None:
    person = accessd("export", "person", str(world.ada.public_id), "--out",
                     str(tmp_path / "ada.zip"))
    assert person.code == 0, person.err
    assert "4 access_events" in person.out
    customer = accessd("export", "customer", "Globex CANARY-GLOBEX", "--out",
                       str(tmp_path / "globex.zip"))
    assert customer.code == 0, customer.err
    assert "persons.csv" in zipfile.ZipFile(tmp_path / "globex.zip").namelist()


def test_erase_needs_yes(accessd: Callable[..., Run], world: World,
                         sessions: sessionmaker[Session]) -> None:
    refused = accessd("erase", "person", str(world.ada.id))
    assert refused.code == 1 and "--yes" in refused.err
    done = accessd("erase", "person", str(world.ada.id), "--yes")
    assert done.code == 0, done.err
    assert "2 fingers" in done.out and "4 access events anonymised" in done.out
    with sessions() as session:
        assert session.get(Person, world.ada.id) is None


def test_withdraw_consent(accessd: Callable[..., Run], world: World,
                          sessions: sessionmaker[Session]) -> None:
    done = accessd("withdraw-consent", str(world.bob.public_id))
    assert done.code == 0, done.err
    assert "1 fingers deleted" in done.out and "credential now pin" in done.out
    with sessions() as session:
        assert session.scalars(select(Finger).where(Finger.person_id == world.bob.id)).all() \
            == []


def test_request_lifecycle(accessd: Callable[..., Run], world: World,
                           sessions: sessionmaker[Session]) -> None:
    assert "no open data-subject requests" in accessd("requests").out
    added = accessd("request", "add", "access", "--received", "2025-01-31", "--person",
                    str(world.ada.id), "--requester", "Ada herself")
    assert added.code == 0, added.err
    assert "answer it by 2025-02-28" in added.out
    with sessions() as session:
        request_id = session.scalars(select(DataSubjectRequest.id)).one()
    listing = accessd("requests")
    assert "OVERDUE" in listing.out and "1 open, 1 overdue" in listing.out
    late = accessd("request", "extend", str(request_id), "--until", "2025-04-30", "--reason",
                   "complex")
    assert late.code == 1 and "first month" in late.err
    assert accessd("request", "close", str(request_id), "--outcome", "export sent").code == 0
    assert "no open data-subject requests" in accessd("requests").out
    with sessions() as session:
        assert session.get_one(DataSubjectRequest, request_id).handled_by == "operator9"


def test_request_for_a_customer_and_bad_input(accessd: Callable[..., Run], world: World,
                                              sessions: sessionmaker[Session]) -> None:
    added = accessd("request", "add", "erasure", "--received", "2030-01-10", "--customer",
                    str(world.acme_public_id), "--requester", "Acme HR")
    assert added.code == 0, added.err
    with sessions() as session:
        request = session.scalars(select(DataSubjectRequest)).one()
        assert request.customer_id == session.scalars(select(Customer.id).where(
            Customer.public_id == world.acme_public_id)).one()
    extended = accessd("request", "extend", str(request.id), "--until", "2030-03-01",
                       "--reason", "many systems")
    assert extended.code == 0, extended.err
    bad_date = accessd("request", "add", "access", "--received", "31-01-2025", "--person", "1",
                       "--requester", "X")
    assert bad_date.code == 2 and "YYYY-MM-DD" in bad_date.err
    missing = accessd("export", "person", "nobody-like-this", "--out", "x.zip")
    assert missing.code == 1
