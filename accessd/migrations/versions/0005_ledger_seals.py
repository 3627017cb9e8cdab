"""A tamper-evident ledger, and what purge certificates anyone can check need.

- ``ledger_seals``: the hash chain over purge records and erasure-ledger entries
  (``accessd.privacy.ledger``). A migration cannot reach the keyring, so it only records the
  chain's genesis (seal 0): when it ran and the highest id of each table then. The first run
  holding the installation's key signs the genesis and seals those rows, marked ``legacy``
  (vouched for from the moment they were sealed, not from their creation); every row written
  afterwards is sealed in the transaction that writes it.
- ``customers.reference``: a random reference per customer, given to the customer; existing
  customers get one here (``accessd customer show`` and the panel show it).
- ``purge_records``: the reference's salted digest, the doors asked to confirm their sensors,
  and the evidence of what was destroyed where.

Revision ID: 0005
Revises: 0003 (to be re-pointed at 0004 when the backups branch's migration is merged)
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import: a migration must keep doing what it did when the code moves on.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ZERO = "0" * 64


def _reference() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(25))
    return "-".join(chars[i:i + 5] for i in range(0, 25, 5))


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    seals = op.create_table(
        "ledger_seals",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("legacy", sa.Boolean(), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("prev_digest", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=100), nullable=True),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_seals")),
    )
    op.create_index(op.f("ix_ledger_seals_subject_subject_id"), "ledger_seals",
                    ["subject", "subject_id"])
    now = dt.datetime.now(dt.UTC)
    legacy = {table: bind.execute(sa.text(f"SELECT max(id) FROM {table}")).scalar() or 0  # noqa: S608
              for table in ("erasure_ledger", "purge_records")}
    details = {"recorded_at": now.isoformat(), "recorded_by": "migration 0005",
               "legacy_up_to": legacy}
    content = hashlib.sha256(json.dumps(details, sort_keys=True, separators=(",", ":"))
                             .encode()).hexdigest()
    stored_at = now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now
    op.bulk_insert(seals, [{"seq": 0, "sealed_at": stored_at, "subject": "genesis",
                            "subject_id": None, "legacy": False, "content_digest": content,
                            "prev_digest": _ZERO, "digest": None, "signature": None,
                            "key_id": None, "details": details}])

    op.add_column("customers", sa.Column("reference", sa.String(length=29), nullable=True))
    customers = sa.table("customers", sa.column("id", sa.Integer()),
                         sa.column("reference", sa.String()))
    for (customer_id,) in bind.execute(sa.select(customers.c.id)).all():
        bind.execute(sa.update(customers).where(customers.c.id == customer_id)
                     .values(reference=_reference()))
    op.create_index(op.f("ix_customers_reference"), "customers", ["reference"], unique=True)

    for column in (sa.Column("reference_salt", sa.String(length=32), nullable=True),
                   sa.Column("reference_digest", sa.String(length=64), nullable=True),
                   sa.Column("doors", sa.JSON(), nullable=True),
                   sa.Column("evidence", sa.JSON(), nullable=True)):
        op.add_column("purge_records", column)


def downgrade() -> None:
    """Revert this revision (the seals, references and evidence are lost)."""
    with op.batch_alter_table("purge_records") as batch:  # nothing references purge_records
        for name in ("evidence", "doors", "reference_digest", "reference_salt"):
            batch.drop_column(name)
    op.drop_index(op.f("ix_customers_reference"), table_name="customers")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place; a batch rebuild of customers would drop the
        # table, and its cascades would delete every person.
        op.execute("ALTER TABLE customers DROP COLUMN reference")
    else:
        op.drop_column("customers", "reference")
    op.drop_index(op.f("ix_ledger_seals_subject_subject_id"), table_name="ledger_seals")
    op.drop_table("ledger_seals")
