"""Each device of a door apart in its status: what is wrong with the sensor, the door board
and the database (a ``DeviceProblem`` value) and when each last answered, so that the
dashboard and ``accessd status`` say the same about every device (issue 12).

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("sensor_problem", sa.String(length=20)),
    ("sensor_seen_at", sa.DateTime(timezone=True)),
    ("board_problem", sa.String(length=20)),
    ("board_seen_at", sa.DateTime(timezone=True)),
    ("database_problem", sa.String(length=20)),
    ("database_seen_at", sa.DateTime(timezone=True)),
    ("journal_pending", sa.Integer()),
)


def upgrade() -> None:
    """Apply this revision."""
    # Nullable columns without a default: SQLite adds them without rewriting the table.
    for name, type_ in COLUMNS:
        op.add_column("door_status", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, _type in reversed(COLUMNS):
        if sqlite:  # in place (SQLite 3.35 and later), as 0007 does
            op.execute(f"ALTER TABLE door_status DROP COLUMN {name}")
        else:
            op.drop_column("door_status", name)
