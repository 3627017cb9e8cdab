"""The CLI tests run on the panel's fixtures: one migrated database, a keyring, a moved clock."""

from tests.web.conftest import (  # noqa: F401 (fixtures pytest finds by name)
    clock,
    db_url,
    keys,
    migrated_template,
    sessions,
)
