"""Migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

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
