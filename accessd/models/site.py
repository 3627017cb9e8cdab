"""What a site of many doors on one PostgreSQL keeps about its doors' synchronisation.

A door decides from a local snapshot and spools its events (``accessd.site``); these rows are
the database's side of that: the site's version (bumped by triggers on every change a door's
decisions depend on, migration 0016), how far each door's events have arrived and which
version its snapshot holds, and which PostgreSQL role is which door's.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from accessd.models.base import Base, UTCDateTime

SITE_CHANNEL = "accessd_site"
"""The LISTEN/NOTIFY channel that wakes the doors when ``site_version`` moves (a wake-up
only: the version is read from the table)."""


class SiteVersion(Base):
    """One row (``id`` 1): the site's version, bumped by a trigger on every statement that
    changes what a door decides with (customers, people, fingers, doors, door bindings)."""

    __tablename__ = "site_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class DoorSync(Base):
    """A site door's synchronisation, as the door last reported it.

    ``delivered_seq``: every event the door numbered up to this has arrived (or was dropped
    because its customer had been purged meanwhile); written in the same transaction as those
    events. ``snapshot_version``: the site version the door's snapshot holds.
    """

    __tablename__ = "door_sync"

    door_id: Mapped[int] = mapped_column(
        ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True)
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot_version: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    spool_depth: Mapped[int] = mapped_column(BigInteger, default=0)
    contact_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DoorRole(Base):
    """The PostgreSQL role a door's daemon logs in as (``accessd site add-door-role``): the
    row-level security policies of migration 0016 let it insert only its own door's events."""

    __tablename__ = "door_roles"

    role_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    door_id: Mapped[int] = mapped_column(
        ForeignKey("doors.id", ondelete="CASCADE"), unique=True)
