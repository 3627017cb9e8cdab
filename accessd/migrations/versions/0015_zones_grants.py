"""Zones, grants and holidays; each door's zone and authentication mode.

Existing installations keep working with no action: this creates one zone, "site" (kind
``site``, granted to new customers), places every existing door in it, and grants every
existing customer that zone, 24/7 with no end. Doors keep "finger or PIN", what every door did
before modes existed. The old per-door customer list (``door_customers``) is left as it is
and still applies.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ZONE = "site"


def upgrade() -> None:
    """Apply this revision."""
    zones = op.create_table(
        "zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("grant_new_customers", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id",
                           name=op.f("ck_zones_not_own_parent")),
        sa.ForeignKeyConstraint(["parent_id"], ["zones.id"],
                                name=op.f("fk_zones_parent_id_zones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zones")),
        sa.UniqueConstraint("name", name=op.f("uq_zones_name")),
    )
    op.create_index(op.f("ix_zones_parent_id"), "zones", ["parent_id"], unique=False)
    grants = op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("closed_on_holidays", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from",
            name=op.f("ck_grants_validity")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_grants_customer_id_customers"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id", "customer_id"],
                                ["persons.id", "persons.customer_id"],
                                name=op.f("fk_grants_person_id_persons"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], name=op.f("fk_grants_zone_id_zones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
    )
    op.create_index(op.f("ix_grants_customer_id"), "grants", ["customer_id"], unique=False)
    op.create_index(op.f("ix_grants_person_id"), "grants", ["person_id"], unique=False)
    op.create_index(op.f("ix_grants_zone_id"), "grants", ["zone_id"], unique=False)
    op.create_table(
        "holidays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holidays")),
        sa.UniqueConstraint("day", name=op.f("uq_holidays_day")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # In place: a batch rebuild of ``doors`` would drop it, and its sensor slots with it.
        op.execute("ALTER TABLE doors ADD COLUMN zone_id INTEGER "
                   "CONSTRAINT fk_doors_zone_id_zones REFERENCES zones (id)")
    else:
        op.add_column("doors", sa.Column("zone_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_doors_zone_id_zones"), "doors", "zones",
                              ["zone_id"], ["id"])
    op.add_column("doors", sa.Column("auth_mode", sa.String(length=16), nullable=False,
                                     server_default="finger_or_pin"))
    op.create_index(op.f("ix_doors_zone_id"), "doors", ["zone_id"], unique=False)

    now = dt.datetime.now(dt.UTC)
    bind.execute(zones.insert().values(name=DEFAULT_ZONE, kind="site", parent_id=None,
                                       grant_new_customers=True, created_at=now))
    zone_id = bind.execute(sa.select(zones.c.id).where(zones.c.name == DEFAULT_ZONE)).scalar_one()
    bind.execute(sa.text("UPDATE doors SET zone_id = :zone"), {"zone": zone_id})
    customers = sa.table("customers", sa.column("id"))
    bind.execute(grants.insert().from_select(
        ["customer_id", "zone_id", "closed_on_holidays", "created_at", "created_by"],
        sa.select(customers.c.id, sa.literal(zone_id), sa.false(),
                  sa.literal(now, sa.DateTime(timezone=True)), sa.literal("migration 0015"))))


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_doors_zone_id"), table_name="doors")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE doors DROP COLUMN auth_mode")
        op.execute("ALTER TABLE doors DROP COLUMN zone_id")
    else:
        op.drop_constraint(op.f("fk_doors_zone_id_zones"), "doors", type_="foreignkey")
        op.drop_column("doors", "auth_mode")
        op.drop_column("doors", "zone_id")
    op.drop_table("holidays")
    op.drop_index(op.f("ix_grants_zone_id"), table_name="grants")
    op.drop_index(op.f("ix_grants_person_id"), table_name="grants")
    op.drop_index(op.f("ix_grants_customer_id"), table_name="grants")
    op.drop_table("grants")
    op.drop_index(op.f("ix_zones_parent_id"), table_name="zones")
    op.drop_table("zones")
