"""A door's own PostgreSQL role (``accessd site add-door-role``): enough to deliver its events
and copy its snapshot, and nothing of other doors or of the facility's own records."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from accessd.cli.main import main as accessd_main
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine
from accessd.door.doors import register_door
from accessd.history.chain import verify_chains
from accessd.models import AccessEvent, DoorSync, Person, door_customers
from accessd.site.snapshot import Snapshot
from accessd.site.spool import EventSpool
from accessd.site.sync import SiteSync
from tests.accessd_core.factories import add_customer, add_person_with_finger
from tests.installation import set_config

pytestmark = pytest.mark.postgres
AT = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)


def _as(url: str, role: str) -> str:
    head, tail = url.split("://", 1)
    return f"{head}://{role}@{tail.split('@', 1)[1]}"


def test_a_door_role_delivers_and_copies_its_own_and_nothing_else(
        site_url: str, site_engine: Engine, tmp_path: Path, keyring: FileKeyProvider) -> None:
    with Session(site_engine, expire_on_commit=False) as session, session.begin():
        cage = register_door(session, "cage-7")
        other = register_door(session, "cage-9")
        acme = add_customer(session, keyring)
        ada, _ = add_person_with_finger(session, keyring, acme, "Ada Lovelace")
        globex = add_customer(session, keyring, "Globex")
        add_person_with_finger(session, keyring, globex, "Hank Scorpio")
        session.execute(insert(door_customers).values(customer_id=globex.id, door_id=other))
    config = tmp_path / "accessd.toml"
    assert accessd_main(["--config", str(config), "init", "--data-dir",
                         str(tmp_path / "data")]) == 0
    set_config(config, {"database.url": site_url})
    role = f"door_cage_7_{uuid.uuid4().hex[:8]}"
    password_file = tmp_path / "door.password"
    assert accessd_main(["--config", str(config), "site", "add-door-role", "--door", "cage-7",
                         "--role", role, "--password-file", str(password_file)]) == 0
    assert password_file.stat().st_mode & 0o077 == 0

    door = create_db_engine(_as(site_url, role))
    try:
        spool = EventSpool.open(tmp_path / "spool.sqlite3", cage)
        snapshot = Snapshot.open(tmp_path / "snapshot.sqlite3", cage, now=lambda: AT,
                                 max_staleness=dt.timedelta(hours=24))
        sync = SiteSync(door, cage, spool, snapshot, now=lambda: AT, poll_seconds=1)
        sync.sync_now()  # seeds the spool and copies the snapshot as the door's role
        spool.append(kind="granted", at=AT, method="finger", customer_public_id=acme.public_id,
                     person_public_id=ada.public_id)
        sync.sync_now()
        assert spool.depth == 0
        assert snapshot.customers() == {acme.public_id}  # Globex uses another door only

        with Session(door) as session:
            names = set(session.scalars(select(Person.name)))
            assert names == {"Ada Lovelace"}
        with pytest.raises(ProgrammingError, match="row-level security"), door.begin() as conn:
            conn.execute(insert(DoorSync).values(door_id=other, delivered_seq=0,
                                                 snapshot_version=0, spool_depth=0))
        for table in ("staff_users", "audit_records", "purge_records"):
            with pytest.raises(ProgrammingError, match="permission denied"), \
                    door.connect() as conn:
                conn.execute(text(f"SELECT count(*) FROM {table}"))
        with pytest.raises(ProgrammingError, match="permission denied"), door.begin() as conn:
            conn.execute(text("DELETE FROM access_events"))
    finally:
        door.dispose()
    with Session(site_engine) as session:
        assert session.scalar(select(AccessEvent.door_id)) == cage
        assert not list(verify_chains(session))

