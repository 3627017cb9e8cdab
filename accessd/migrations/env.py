"""Alembic's entry point, configured in code by ``accessd.db.alembic_config`` (no alembic.ini).

The engine comes from ``config.attributes["engine"]`` or is built from ``sqlalchemy.url`` with
``accessd.db.create_db_engine``, so migrations run with the same SQLite settings as the daemon:
every migration is one ``BEGIN IMMEDIATE`` transaction (SQLite can roll back DDL), and SQLite
gets batch mode, because it cannot alter most things in place.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from accessd.db import create_db_engine
from accessd.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Write the SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=bool(url and url.startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the configured engine."""
    engine = config.attributes.get("engine")
    owned = not isinstance(engine, Engine)
    if owned:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no engine and no sqlalchemy.url: use accessd.db.alembic_config")
        engine = create_db_engine(url)
    assert isinstance(engine, Engine)
    is_sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=is_sqlite,
                # Our BEGIN hook makes SQLite's DDL transactional: a failed migration rolls back.
                transactional_ddl=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
