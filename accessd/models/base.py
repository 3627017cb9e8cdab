"""What every model shares: the declarative base, constraint names, UTC time and enum columns."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
import uuid
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Enum, Integer, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeEngine

# Named constraints: Alembic's SQLite batch mode can only drop or alter a constraint it can
# name, and names that do not depend on the backend keep migrations identical on PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one;
# PostgreSQL gets BIGINT for the tables that grow to millions of rows.
BigIntegerPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC: the only kind of datetime the models accept."""
    return dt.datetime.now(dt.UTC)


def new_public_id() -> uuid.UUID:
    """A random public identifier: unguessable, stable across backups, never reused."""
    return uuid.uuid4()


REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
REFERENCE_GROUPS = 5  # of five characters: 125 random bits


def new_customer_reference() -> str:
    """A random customer reference, ``7K3QX-M2D9A-...`` (29 characters, 125 bits).

    Given to the customer at contract start; its salted digest on a purge certificate lets the
    customer, and only someone holding the reference, confirm that the certificate is theirs.
    """
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(5 * REFERENCE_GROUPS))
    return "-".join(chars[i:i + 5] for i in range(0, len(chars), 5))


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no time zones (SQLAlchemy stores naive text), PostgreSQL has ``timestamptz``;
    this type makes both behave the same, and refuses naive datetimes, whose meaning would
    depend on the machine's local time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time (UTC)")
        value = value.astimezone(dt.UTC)
        # SQLite would store the offset-free text anyway; dropping it here keeps the stored
        # text sortable and identical whatever offset the caller used.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def to_epoch_micros(moment: dt.datetime) -> int:
    """``moment`` (timezone-aware) as whole microseconds since 1970-01-01 UTC: exact."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time (UTC)")
    return (moment - _EPOCH) // _MICROSECOND


def from_epoch_micros(micros: int) -> dt.datetime:
    """The inverse of ``to_epoch_micros``: an aware UTC datetime."""
    return _EPOCH + dt.timedelta(microseconds=micros)


class CompactUTCDateTime(UTCDateTime):
    """``UTCDateTime`` in 8 bytes on SQLite too: integer microseconds since the Unix epoch.

    For the access history, whose time is in the row and in five of its indexes: SQLite's text
    form takes 26 bytes and compares byte by byte; the integer makes the history a third
    smaller on disk, every index seek cheaper (the daemon's insert, the panel's pages) and a
    purge of a million events about a third faster. Exact to the microsecond, which the hash
    chain needs. PostgreSQL keeps its native ``timestamptz`` (already 8 bytes).
    """

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return to_epoch_micros(value)
        return super().process_bind_param(value, dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is not None and dialect.name == "sqlite":
            return from_epoch_micros(value)
        return super().process_result_value(value, dialect)


def enum_column(enum_class: type[enum.Enum], length: int = 32) -> Enum:
    """A string column holding one of ``enum_class``'s values, checked on the Python side.

    No CHECK constraint and no native enum type: adding a value later must not force a
    table rebuild (SQLite) or an ``ALTER TYPE`` (PostgreSQL) on tables with millions of rows.
    """
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
        values_callable=_enum_values,
    )


def _enum_values(enum_class: type[enum.Enum]) -> list[Any]:
    # Store the readable values ("granted"), not the member names ("GRANTED").
    return [member.value for member in enum_class]


class Base(DeclarativeBase):
    """The declarative base of every table; its ``metadata`` is what migrations must match."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
