"""Migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from accessd.crypto import FileKeyProvider
from accessd.db import MIGRATIONS_DIR, alembic_config, create_db_engine, current_revision, upgrade
from accessd.models import Base, EventKind


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def test_the_migrated_schema_equals_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


def test_downgrade_to_nothing_and_upgrade_again(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert schema_differences(engine) == []


def test_upgrade_from_a_url_needs_no_alembic_ini(sqlite_url: str, tmp_path: Path) -> None:
    assert not (MIGRATIONS_DIR / "alembic.ini").exists()
    upgrade(sqlite_url)
    engine = create_db_engine(sqlite_url)
    try:
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_every_migration_is_shipped_as_package_data() -> None:
    # pyproject: package-data "migrations/*.mako" and "migrations/**/*.py"; the migrations
    # folders are packages so setuptools installs their modules in any case.
    for name in ("env.py", "script.py.mako", "__init__.py", "versions/__init__.py"):
        assert (MIGRATIONS_DIR / name).is_file(), name
    from alembic.script import ScriptDirectory

    files = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("0*.py"))
    revisions = list(ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions())
    assert len(revisions) == len(files)  # one linear history, every file part of it


def test_event_times_survive_the_move_to_integers_exactly(sqlite_url: str) -> None:
    # 0003 rewrites every stored event time; the hash chain covers them to the microsecond.
    from sqlalchemy import select, text

    from accessd.db import make_sessionmaker
    from accessd.history.chain import verify_chains
    from accessd.models import AccessEvent
    from tests.customers import seed

    moments = [dt.datetime(2025, 3, 30, 0, 59, 59, 999_999, tzinfo=dt.UTC),
               dt.datetime(1999, 12, 31, 23, 0, tzinfo=dt.UTC),
               dt.datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=dt.UTC)]
    upgrade(sqlite_url)
    engine = create_db_engine(sqlite_url)
    try:
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            ada = seed.person(session, seed.customer(session))
            for moment in moments:
                seed.event(session, EventKind.GRANTED, moment, who=ada)
        command.downgrade(alembic_config(engine), "0002")
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT at FROM access_events ORDER BY id")).scalars()
            # What SQLAlchemy itself writes for a DateTime on SQLite, as 0001/0002 had it.
            assert list(stored) == [m.replace(tzinfo=None).isoformat(" ", "microseconds")
                                    for m in moments]
        upgrade(engine)
        assert schema_differences(engine) == []
        with sessions() as session:
            assert list(session.scalars(select(AccessEvent.at).order_by(AccessEvent.id))) == (
                moments)
            assert list(verify_chains(session)) == []
            assert session.scalar(select(AccessEvent.id).where(
                AccessEvent.at > moments[1], AccessEvent.at < moments[2])) is not None
        with engine.connect() as conn:
            assert conn.execute(text("SELECT typeof(at) FROM access_events")).scalars().all() == [
                "integer"] * 3
    finally:
        engine.dispose()


def test_0005_seals_older_ledger_rows_as_legacy_and_gives_every_customer_a_reference(
        engine: Engine, keyring: FileKeyProvider) -> None:
    # Rows as 0003's code wrote them: no seals, no references. The migration cannot reach
    # the keyring: it records the genesis, and the first run holding the key seals them.
    import re
    import uuid

    import sqlalchemy as sa

    from accessd.db import make_sessionmaker
    from accessd.models import Customer, LedgerSeal, UTCDateTime
    from accessd.privacy.ledger import check_ledger, verify_ledger

    command.downgrade(alembic_config(engine), "0003")
    moment = dt.datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    customers = sa.table("customers", sa.column("public_id", sa.Uuid()), sa.column("name"),
                         sa.column("contract_start", sa.Date()), sa.column("grace_days"),
                         sa.column("created_at", UTCDateTime()))
    entries = sa.table("erasure_ledger", sa.column("recorded_at", UTCDateTime()),
                       sa.column("action"), sa.column("customer_digest"),
                       sa.column("details", sa.JSON()))
    purges = sa.table("purge_records", sa.column("customer_digest"), sa.column("grace_days"),
                      sa.column("due_at", UTCDateTime()), sa.column("status"),
                      sa.column("counts", sa.JSON()), sa.column("started_at", UTCDateTime()))
    with engine.begin() as conn:
        for name in ("Old One BV", "Old Two NV"):
            conn.execute(sa.insert(customers).values(
                public_id=uuid.uuid4(), name=name, contract_start=dt.date(2024, 1, 1),
                grace_days=0, created_at=moment))
        for action in ("erase_person", "purge_customer"):
            conn.execute(sa.insert(entries).values(recorded_at=moment, action=action,
                                                   customer_digest="c" * 64, details={}))
        conn.execute(sa.insert(purges).values(customer_digest="c" * 64, grace_days=0,
                                              due_at=moment, status="started",
                                              counts={"persons": 2}, started_at=moment))
    upgrade(engine)
    assert schema_differences(engine) == []
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        references = session.scalars(select(Customer.reference)).all()
        assert len(set(references)) == 2
        assert all(re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{5}-){4}[0-9A-HJKMNP-TV-Z]{5}", r or "")
                   for r in references)
        before = verify_ledger(session, keyring.signing_public_key())
    assert [str(p) for p in before.problems] == [
        "ledger_seals #0: the genesis is not signed yet: the rows from before the ledger "
        "await sealing by a run holding the installation's keyring (`accessd verify-log`)"]

    sealed = check_ledger(sessions, keyring)
    assert sealed.ok, sealed.describe()
    assert (sealed.seals, sealed.legacy, sealed.entries, sealed.records) == (4, 3, 2, 1)
    with sessions() as session:
        genesis = session.get_one(LedgerSeal, 0)
        assert genesis.details is not None
        assert genesis.details["legacy_up_to"] == {"erasure_ledger": 2, "purge_records": 1}
    with engine.begin() as conn:  # a legacy row is tamper-evident from now on
        conn.execute(sa.text("UPDATE erasure_ledger SET action = 'delete_finger' WHERE id = 1"))
    with sessions() as session:
        report = verify_ledger(session, keyring.signing_public_key())
    assert str(report.problems[0]).startswith("erasure_ledger #1: altered after it was sealed")
