"""Per-door record of what each sensor holds, so reconciling never trusts a reused slot.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "sensor_slots",
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("finger_id", sa.Integer(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"],
                                name=op.f("fk_sensor_slots_door_id_doors"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["finger_id"], ["fingers.id"],
                                name=op.f("fk_sensor_slots_finger_id_fingers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("door_id", "slot", name=op.f("pk_sensor_slots")),
    )
    op.create_index(op.f("ix_sensor_slots_finger_id"), "sensor_slots", ["finger_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_sensor_slots_finger_id"), table_name="sensor_slots")
    op.drop_table("sensor_slots")
