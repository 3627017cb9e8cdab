"""After a purge the raw database file and its WAL hold none of the customer's data."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.privacy.purge import run_due_purges
from tests.privacy.seed import access, add_customer, add_door, enrol


def _raw(db_path: Path) -> bytes:
    """Every byte SQLite keeps for this database: the main file and the write-ahead log."""
    parts = [db_path, db_path.with_name(db_path.name + "-wal"),
             db_path.with_name(db_path.name + "-journal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def _seed(sessions: sessionmaker[Session], keyring: FileKeyProvider, name: str,
          end: dt.date | None, people: int) -> list[bytes]:
    """A customer whose people's names and template ciphertexts are canaries; returns them."""
    canaries: list[bytes] = []
    with sessions.begin() as session:
        customer = add_customer(session, f"{name} Hosting", contract_end=end)
        add_door(session, f"door-{name}", [customer])
        for i in range(people):
            who = f"Canary{name}{i:03d} {secrets.token_hex(4)}"
            person, finger = enrol(session, keyring, customer, who)
            for j in range(10):
                access(session, customer, person, dt.datetime(2025, 3, 1, 8, j, tzinfo=dt.UTC))
            canaries += [who.encode(), finger.template_ciphertext[:48],
                         finger.template_ciphertext[-48:]]
    return canaries


def test_purged_names_and_ciphertexts_are_in_neither_the_database_file_nor_its_wal(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        db_path: Path) -> None:
    gone = _seed(sessions, keyring, "Gone", dt.date(2025, 4, 30), people=40)
    kept = _seed(sessions, keyring, "Kept", None, people=40)
    before = _raw(db_path)
    assert all(c in before for c in gone + kept)  # the canaries are really written

    [record] = run_due_purges(sessions, keyring, engine, dt.datetime(2025, 6, 1, tzinfo=dt.UTC))

    after = _raw(db_path)
    found = [c for c in gone if c in after]
    assert found == [], f"{len(found)} canaries of the purged customer survived, e.g. {found[0]!r}"
    assert all(c in after for c in kept), "the other customer's data must be intact"
    assert record.counts["persons"] == 40
