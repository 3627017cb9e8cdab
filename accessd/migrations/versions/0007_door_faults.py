"""The door keeps working through faults: an event names the event it is about
(``access_events.refers_to``: a ``pulse_failed`` names its ``granted``), and each door's reserve
journal records how far it has been moved into the history (``journal_drains``).

Numbered 0007 on the branch it was written on; it follows 0005 (the signed ledger). There is
no 0004 or 0006: the backups and the audit trail needed no schema change.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # A nullable column without a default: SQLite adds it without rewriting the table.
    op.add_column("access_events", sa.Column("refers_to", sa.BigInteger(), nullable=True))
    op.create_table(
        "journal_drains",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.Column("drained_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"],
                                name=op.f("fk_journal_drains_door_id_doors"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_drains")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("journal_drains")
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite 3.35 and later): a batch rebuild would drop the person_events trigger.
        op.execute("ALTER TABLE access_events DROP COLUMN refers_to")
    else:
        op.drop_column("access_events", "refers_to")
