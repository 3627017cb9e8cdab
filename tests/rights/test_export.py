"""Exports: everything held on the subject, nothing on anyone else, JSON and CSV alike."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.errors import ExportError
from accessd.models import Customer, Person, RequestKind
from accessd.rights.actions import erase_person
from accessd.rights.export import export_customer, export_person
from accessd.rights.requests import record_request
from tests.rights.seed import World

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
CATEGORIES = ("customer", "persons", "fingers", "consents", "access_events", "requests",
              "device_commands")


def _read(path: Path) -> tuple[dict[str, list[dict[str, object]]],
                               dict[str, list[dict[str, str]]], bytes]:
    """JSON tables, CSV tables, and every byte of every entry (for greps)."""
    json_tables, csv_tables, everything = {}, {}, b""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            everything += data
            stem, _, kind = name.rpartition(".")
            if kind == "json" and stem != "manifest":
                json_tables[stem] = json.loads(data)
            elif kind == "csv":
                csv_tables[stem] = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return json_tables, csv_tables, everything


def _export_ada(sessions: sessionmaker[Session], world: World, path: Path) -> None:
    with sessions() as session:
        export_person(session, session.get_one(Person, world.ada.id), path, now=NOW)


def test_person_export_holds_everything_about_the_person(
        world: World, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions.begin() as session:
        record_request(session, RequestKind.ACCESS, dt.date(2025, 5, 20),
                       requester_name="Ada herself", person=session.get_one(Person, world.ada.id))
    path = tmp_path / "ada.zip"
    _export_ada(sessions, world, path)

    tables, csvs, _ = _read(path)
    assert set(tables) == set(csvs) == set(CATEGORIES)
    [ada] = tables["persons"]
    assert ada["name"] == world.ada.name and ada["email"] == world.ada.email
    assert ada["public_id"] == str(world.ada.public_id) and ada["pin_set"] is False
    assert {f["label"] for f in tables["fingers"]} == {"right_index", "left_index"}
    assert len(tables["consents"]) == 1 and tables["consents"][0]["witnessed_by"] == "operator1"
    assert len(tables["access_events"]) == 4
    assert {e["door"] for e in tables["access_events"]} == {"main", "cage-7"}
    assert tables["requests"][0]["kind"] == "access"
    for name in CATEGORIES:  # the CSV says the same as the JSON
        assert len(csvs[name]) == len(tables[name])
        for from_json, from_csv in zip(tables[name], csvs[name], strict=True):
            assert {k: "" if v is None else str(v) for k, v in from_json.items()
                    if not isinstance(v, bool)} == \
                {k: v for k, v in from_csv.items() if not isinstance(from_json[k], bool)}
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert "templates are not included" in archive.read("README.txt").decode().lower()
    assert manifest["subject"] == {"kind": "person", "public_id": str(world.ada.public_id)}
    assert manifest["records"]["access_events"] == 4


def test_person_export_holds_nothing_about_anyone_else(
        world: World, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "ada.zip"
    _export_ada(sessions, world, path)

    _, _, everything = _read(path)
    for other in (world.bob, world.carol):
        for canary in (other.name, other.email, str(other.public_id),
                       *(str(f) for f in other.finger_public_ids)):
            assert canary.encode() not in everything
    assert b"CANARY-GLOBEX" not in everything and str(world.globex_public_id).encode() \
        not in everything


def test_an_export_never_contains_template_bytes(
        world: World, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "acme.zip"
    with sessions() as session:
        export_customer(session, session.get_one(Customer, world.acme_id), path, now=NOW)

    _, _, everything = _read(path)
    for someone in (world.ada, world.bob):
        for secret in (*someone.templates, *someone.ciphertexts):
            assert secret not in everything
            assert secret[:32].hex().encode() not in everything
        assert b"TEMPLATE[" not in everything


def test_customer_export_holds_its_people_and_its_anonymous_events_only(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider,
        tmp_path: Path) -> None:
    with sessions.begin() as session:
        erase_person(session, session.get_one(Person, world.bob.id), "operator1", provider=keys)
    path = tmp_path / "acme.zip"
    with sessions() as session:
        summary = export_customer(session, session.get_one(Customer, world.acme_id), path,
                                  now=NOW)

    tables, _, everything = _read(path)
    assert summary.counts["access_events"] == 9  # Ada's 4, Bob's 4 (anonymised), a PIN typo
    assert [p["name"] for p in tables["persons"]] == [world.ada.name]
    anonymous = [e for e in tables["access_events"] if e["person_public_id"] is None]
    assert len(anonymous) == 5
    assert tables["customer"][0]["doors"] == "cage-7"
    assert b"CANARY-CAROL" not in everything and b"CANARY-GLOBEX" not in everything
    assert b"CANARY-BOB" not in everything


def test_an_export_is_private_and_never_replaces_a_file(
        world: World, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "ada.zip"
    _export_ada(sessions, world, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    with pytest.raises(ExportError, match="already exists"):
        _export_ada(sessions, world, path)
    assert zipfile.is_zipfile(path)


def test_an_export_can_go_to_a_stream(world: World, sessions: sessionmaker[Session]) -> None:
    buffer = io.BytesIO()
    with sessions() as session:
        summary = export_person(session, session.get_one(Person, world.carol.id), buffer)

    assert summary.path is None and summary.counts["fingers"] == 1
    assert zipfile.ZipFile(io.BytesIO(buffer.getvalue())).testzip() is None
