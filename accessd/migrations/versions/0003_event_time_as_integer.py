"""Access-event times as integer microseconds since the epoch on SQLite (``CompactUTCDateTime``);
on both databases, (at) and (kind, at) merged into one (at, kind), and the per-person index moved
out of the events table into ``person_events``, which a trigger fills (see ``PersonEvent``).

The time is in the row and in five indexes; as SQLite text it takes 26 bytes. The table is
rebuilt in one pass (create, copy converting each time exactly, drop, rename, re-index): the
hash chain covers the times to the microsecond, so the conversion is integer arithmetic on
the stored text, never floating point (``julianday`` would be off by microseconds).
PostgreSQL already stores ``timestamptz`` in 8 bytes: only its indexes change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "access_events"
_NEW = "_access_events_rebuilt"
_COLUMNS = ("id", "chain_id", "seq", "customer_id", "person_id", "door_id", "at", "kind",
            "method", "reason", "subject_salt", "subject_digest", "prev_digest", "digest")
_OLD_INDEXES = (["at"], ["customer_id", "at"], ["door_id", "at"], ["kind", "at"],
                ["person_id", "at"])
# (at) and (kind, at) become one (at, kind): a seek less per event written or purged; and
# (person_id, at) becomes the person_events table.
_NEW_INDEXES = (["at", "kind"], ["customer_id", "at"], ["door_id", "at"])
_PERSON_FK = "fk_access_events_person_id_persons"
_TRIGGER = "person_events_on_insert"
_SQLITE_TRIGGER = """
CREATE TRIGGER person_events_on_insert AFTER INSERT ON access_events WHEN NEW.person_id IS NOT NULL
BEGIN
    INSERT INTO person_events (person_id, at, event_id) VALUES (NEW.person_id, NEW.at, NEW.id);
END"""
_PG_FUNCTION = """
CREATE FUNCTION person_events_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.person_id IS NOT NULL THEN
        INSERT INTO person_events (person_id, at, event_id)
        VALUES (NEW.person_id, NEW.at, NEW.id);
    END IF;
    RETURN NULL;
END $$"""
_PG_TRIGGER = (f"CREATE TRIGGER {_TRIGGER} AFTER INSERT ON access_events "
               f"FOR EACH ROW EXECUTE FUNCTION {_TRIGGER}()")
# "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC, as SQLAlchemy stores it) -> microseconds, exactly.
_TEXT_TO_MICROS = ("CASE typeof(at) WHEN 'text' THEN "
                   "CAST(strftime('%s', substr(at, 1, 19)) AS INTEGER) * 1000000 "
                   "+ CAST(substr(at || '.000000', 21, 6) AS INTEGER) ELSE at END")
_MICROS_TO_TEXT = ("CASE typeof(at) WHEN 'integer' THEN "
                   "strftime('%Y-%m-%d %H:%M:%S', at / 1000000, 'unixepoch') "
                   "|| printf('.%06d', at % 1000000) ELSE at END")


def upgrade() -> None:
    """Apply this revision."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _rebuild(sa.BigInteger(), _TEXT_TO_MICROS, _OLD_INDEXES, _NEW_INDEXES,
                 person_fk=False)
    else:
        op.drop_constraint(_PERSON_FK, TABLE, type_="foreignkey")
        _reindex(_OLD_INDEXES, _NEW_INDEXES)
    op.create_table(
        "person_events",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger() if sqlite else sa.DateTime(timezone=True),
                  nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"],
                                name="fk_person_events_person_id_persons", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id", "at", "event_id", name="pk_person_events"),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO person_events (person_id, at, event_id) "
               "SELECT person_id, at, id FROM access_events WHERE person_id IS NOT NULL")
    if sqlite:
        op.execute(_SQLITE_TRIGGER)
    else:
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)


def downgrade() -> None:
    """Revert this revision."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(f"DROP TRIGGER {_TRIGGER}" + ("" if sqlite else f" ON {TABLE}"))
    if not sqlite:
        op.execute(f"DROP FUNCTION {_TRIGGER}()")
    op.drop_table("person_events")
    if sqlite:
        _rebuild(sa.DateTime(timezone=True), _MICROS_TO_TEXT, _NEW_INDEXES, _OLD_INDEXES,
                 person_fk=True)
    else:
        _reindex(_NEW_INDEXES, _OLD_INDEXES)
        op.create_foreign_key(_PERSON_FK, TABLE, "persons", ["person_id"], ["id"],
                              ondelete="SET NULL")


def _reindex(dropped: Sequence[list[str]], created: Sequence[list[str]]) -> None:
    for columns_of in dropped:
        if columns_of not in created:
            op.drop_index(_index_name(columns_of), table_name=TABLE)
    for columns_of in created:
        if columns_of not in dropped:
            op.create_index(_index_name(columns_of), TABLE, columns_of)


def _rebuild(at_type: sa.types.TypeEngine[Any], convert: str,
             dropped: Sequence[list[str]], created: Sequence[list[str]], *,
             person_fk: bool) -> None:
    person = ([sa.ForeignKeyConstraint(["person_id"], ["persons.id"], name=_PERSON_FK,
                                       ondelete="SET NULL")] if person_fk else [])
    op.create_table(
        _NEW,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("door_id", sa.Integer(), nullable=True),
        sa.Column("at", at_type, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("subject_salt", sa.LargeBinary(), nullable=True),
        sa.Column("subject_digest", sa.LargeBinary(), nullable=True),
        sa.Column("prev_digest", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        # Named for the table they end up in (SQLite keeps constraint names through a rename).
        sa.ForeignKeyConstraint(["chain_id"], ["event_chains.id"],
                                name="fk_access_events_chain_id_event_chains",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name="fk_access_events_customer_id_customers",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"],
                                name="fk_access_events_door_id_doors"),
        *person,
        sa.PrimaryKeyConstraint("id", name="pk_access_events"),
        sa.UniqueConstraint("chain_id", "seq", name="uq_access_events_chain_id_seq"),
    )
    columns = ", ".join(_COLUMNS)
    selected = ", ".join(convert if c == "at" else c for c in _COLUMNS)
    # Built from this module's constants only.
    op.execute(f"INSERT INTO {_NEW} ({columns}) SELECT {selected} FROM {TABLE} ORDER BY id")  # noqa: S608
    for columns_of in dropped:
        op.drop_index(_index_name(columns_of), table_name=TABLE)
    # Nothing references access_events, so dropping it runs no implicit foreign-key DELETE.
    op.drop_table(TABLE)
    op.rename_table(_NEW, TABLE)
    for columns_of in created:
        op.create_index(_index_name(columns_of), TABLE, columns_of)


def _index_name(columns: list[str]) -> str:
    return f"ix_{TABLE}_{'_'.join(columns)}"
