"""A site of many doors on one PostgreSQL: the site's version and its triggers, each door's
synchronisation, door roles and their row-level security, one chain per door and customer.

- ``event_chains``: a customer may own several chains (one per site door that recorded its
  events): ``customer_id`` is indexed, no longer unique; ``scope`` is 100 characters.
- ``access_events``: ``door_seq`` and ``refers_door_seq``, unique on ``(door_id, door_seq)``.
- ``site_version`` (one row), ``door_sync``, ``door_roles``.
- PostgreSQL only: statement triggers bump ``site_version`` and NOTIFY ``accessd_site`` on
  every change to ``TRACKED``; row-level security for door roles (``accessd site
  add-door-role``): each inserts and reads only its own door's events, chains, status, alarms,
  commands and sensor slots, and reads only the customers (people, fingers, keys) that may use
  its door. Other roles (the panel, the migrations' owner) see everything.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRACKED = ("customers", "persons", "fingers", "consents", "doors", "door_customers",
           "sensor_slots", "zones", "grants", "holidays")
"""Tables whose changes a door's snapshot must follow (and ``accessd.site.snapshot.SLICES``
copies); a new decision table joins both."""

_BUMP = """
CREATE FUNCTION accessd_bump_site_version() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    UPDATE site_version SET version = version + 1 WHERE id = 1;
    PERFORM pg_notify('accessd_site', '');
    RETURN NULL;
END $$
"""

_DOOR_OF = """
CREATE FUNCTION accessd_door_of_role() RETURNS integer LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public AS $$
    SELECT door_id FROM door_roles WHERE role_name = session_user
$$
"""

# A customer may use a door bound to it, or every door when bound to none (the one-door rule of
# ``accessd.door.directory``).
_CUSTOMER_AT_DOOR = """(
    EXISTS (SELECT 1 FROM door_customers dc WHERE dc.customer_id = {col}
            AND dc.door_id = accessd_door_of_role())
    OR NOT EXISTS (SELECT 1 FROM door_customers dc WHERE dc.customer_id = {col}))"""

_NOT_A_DOOR = "accessd_door_of_role() IS NULL"

# table -> the door's own rows (None: read-only, by customer)
_OWN_ROWS = {
    "access_events": "door_id = accessd_door_of_role()",
    "event_chains": "scope LIKE '%@door:' || accessd_door_of_role()",
    "door_sync": "door_id = accessd_door_of_role()",
    "door_status": "door_id = accessd_door_of_role()",
    "alarms": "door_id = accessd_door_of_role()",
    "device_commands": "door_id = accessd_door_of_role()",
    "sensor_slots": "door_id = accessd_door_of_role()",
    "journal_drains": "door_id = accessd_door_of_role()",
}
_BY_CUSTOMER = {  # qualified: inside the policy's subqueries a bare name is door_customers'
    "customers": "customers.id",
    "persons": "persons.customer_id",
    "fingers": "fingers.customer_id",
    "data_keys": "data_keys.customer_id",
    "grants": "grants.customer_id",
    "consents": "(SELECT p.customer_id FROM persons p WHERE p.id = consents.person_id)",
}


def upgrade() -> None:
    """Apply this revision."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _rebuild_sqlite_chains()
    else:
        op.drop_constraint("uq_event_chains_customer_id", "event_chains", type_="unique")
        op.alter_column("event_chains", "scope", type_=sa.String(length=100),
                        existing_type=sa.String(length=50), existing_nullable=False)
        op.create_index("ix_event_chains_customer_id", "event_chains", ["customer_id"])
    op.add_column("access_events", sa.Column("door_seq", sa.BigInteger(), nullable=True))
    op.add_column("access_events", sa.Column("refers_door_seq", sa.BigInteger(), nullable=True))
    # A unique index (SQLite cannot add a constraint in place); the models' UniqueConstraint
    # compares equal to it.
    op.create_index("uq_access_events_door_id_door_seq", "access_events",
                    ["door_id", "door_seq"], unique=True)
    op.create_table(
        "site_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_version")),
    )
    op.execute("INSERT INTO site_version (id, version) VALUES (1, 0)")
    op.create_table(
        "door_sync",
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.Column("delivered_seq", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_version", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spool_depth", sa.BigInteger(), nullable=False),
        sa.Column("contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"],
                                name=op.f("fk_door_sync_door_id_doors"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("door_id", name=op.f("pk_door_sync")),
    )
    op.create_table(
        "door_roles",
        sa.Column("role_name", sa.String(length=63), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"],
                                name=op.f("fk_door_roles_door_id_doors"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("role_name", name=op.f("pk_door_roles")),
        sa.UniqueConstraint("door_id", name=op.f("uq_door_roles_door_id")),
    )
    if sqlite:
        return
    op.execute(_BUMP)
    for table in TRACKED:
        op.execute(f"CREATE TRIGGER accessd_site_version AFTER INSERT OR UPDATE OR DELETE "
                   f"OR TRUNCATE ON {table} FOR EACH STATEMENT "
                   "EXECUTE FUNCTION accessd_bump_site_version()")
    op.execute(_DOOR_OF)
    for table, own in _OWN_ROWS.items():
        _secure(table, f"{_NOT_A_DOOR} OR ({own})", f"{_NOT_A_DOOR} OR ({own})")
    for table, column in _BY_CUSTOMER.items():
        # What a door role may write here at all is its grants' business (fingers, for
        # enrolment at its reader): rows it may see are the rows it may write.
        condition = f"{_NOT_A_DOOR} OR {_CUSTOMER_AT_DOOR.format(col=column)}"
        _secure(table, condition, condition)


def _secure(table: str, using: str, check: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY accessd_door ON {table} USING ({using}) WITH CHECK ({check})")


def _rebuild_sqlite_chains() -> None:
    """SQLite cannot drop a table's UNIQUE constraint: the table is rebuilt. Dropping it with
    foreign keys on would delete every event (their ``ON DELETE CASCADE``), so foreign keys are
    switched off around the rebuild, which SQLite allows only outside a transaction."""
    conn = op.get_bind()
    conn.exec_driver_sql("COMMIT")
    conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    conn.exec_driver_sql("""
        CREATE TABLE event_chains_new (
            id INTEGER NOT NULL,
            scope VARCHAR(100) NOT NULL,
            customer_id INTEGER,
            head_digest BLOB NOT NULL,
            last_seq BIGINT NOT NULL,
            anchor_digest BLOB NOT NULL,
            anchor_seq BIGINT NOT NULL,
            updated_at DATETIME NOT NULL,
            CONSTRAINT pk_event_chains PRIMARY KEY (id),
            CONSTRAINT uq_event_chains_scope UNIQUE (scope),
            CONSTRAINT fk_event_chains_customer_id_customers FOREIGN KEY(customer_id)
                REFERENCES customers (id) ON DELETE CASCADE
        )""")
    conn.exec_driver_sql("INSERT INTO event_chains_new SELECT id, scope, customer_id, "
                         "head_digest, last_seq, anchor_digest, anchor_seq, updated_at "
                         "FROM event_chains")
    conn.exec_driver_sql("DROP TABLE event_chains")
    conn.exec_driver_sql("ALTER TABLE event_chains_new RENAME TO event_chains")
    conn.exec_driver_sql("CREATE INDEX ix_event_chains_customer_id ON event_chains (customer_id)")
    problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"rebuilding event_chains broke foreign keys: {problems[:5]}")
    conn.exec_driver_sql("COMMIT")
    conn.exec_driver_sql("PRAGMA foreign_keys = ON")
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def downgrade() -> None:
    """Revert this revision (refused while a customer owns more than one chain)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        for table in (*_OWN_ROWS, *_BY_CUSTOMER):
            op.execute(f"DROP POLICY accessd_door ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute("DROP FUNCTION accessd_door_of_role()")
        for table in TRACKED:
            op.execute(f"DROP TRIGGER accessd_site_version ON {table}")
        op.execute("DROP FUNCTION accessd_bump_site_version()")
    op.drop_table("door_roles")
    op.drop_table("door_sync")
    op.drop_table("site_version")
    op.drop_index("uq_access_events_door_id_door_seq", "access_events")
    if sqlite:
        # In place (SQLite 3.35 and later): a batch rebuild would drop the person_events trigger.
        op.execute("ALTER TABLE access_events DROP COLUMN refers_door_seq")
        op.execute("ALTER TABLE access_events DROP COLUMN door_seq")
        op.execute("DROP INDEX ix_event_chains_customer_id")
        op.execute("CREATE UNIQUE INDEX uq_event_chains_customer_id "
                   "ON event_chains (customer_id)")
    else:
        op.drop_column("access_events", "refers_door_seq")
        op.drop_column("access_events", "door_seq")
        op.drop_index("ix_event_chains_customer_id", "event_chains")
        op.alter_column("event_chains", "scope", type_=sa.String(length=50),
                        existing_type=sa.String(length=100), existing_nullable=False)
        op.create_unique_constraint("uq_event_chains_customer_id", "event_chains",
                                    ["customer_id"])
