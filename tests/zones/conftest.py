"""The zones tests run on the customers suite's fixtures: a migrated SQLite file, the CLI."""

from tests.customers.conftest import (  # noqa: F401 (fixtures pytest finds by name)
    accessd,
    config_file,
    database_url,
    session,
    settings,
)
