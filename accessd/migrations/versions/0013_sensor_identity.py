"""Each door remembers the fingerprint sensor it provisioned (its system parameters) and the one
it refused since, so that a swapped sensor is refused until staff approve it.

Revision ID: 0013
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Nullable columns without a default: SQLite adds them without rewriting the table. A door
    # that ran before this revision adopts the sensor it finds at its next start.
    op.add_column("doors", sa.Column("sensor_identity", sa.String(length=200), nullable=True))
    op.add_column("doors", sa.Column("sensor_refused", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    for column in ("sensor_refused", "sensor_identity"):
        if op.get_bind().dialect.name == "sqlite":  # in place: a batch rebuild drops triggers
            op.execute(f"ALTER TABLE doors DROP COLUMN {column}")
        else:
            op.drop_column("doors", column)
