"""Long commands report counts: ``device_commands.progress_done`` and ``progress_total`` (a
resync's templates so far and in all), so the CLI and the panel draw a bar with time left.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Nullable columns without a default: SQLite adds them without rewriting the table.
    op.add_column("device_commands", sa.Column("progress_done", sa.Integer(), nullable=True))
    op.add_column("device_commands", sa.Column("progress_total", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    for column in ("progress_total", "progress_done"):
        if op.get_bind().dialect.name == "sqlite":  # in place (SQLite 3.35 and later)
            op.execute(f"ALTER TABLE device_commands DROP COLUMN {column}")
        else:
            op.drop_column("device_commands", column)
