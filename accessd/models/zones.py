"""Where doors are and who may use them: zones, grants of zones, the site's holidays.

A door sits in a zone; zones nest (an entrance hall around suites around cages) and never in a
cycle. A customer is granted zones; granting a zone grants every zone nested in it. A person
gets the customer's grants, or, once given grants of their own, only those (each within a zone
the customer holds: the door checks both). Each grant may carry weekly windows, close on the
site's holidays and hold only between two days. A grant's rows belong to its customer and go
with it at the purge.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from accessd.models.base import Base, UTCDateTime, enum_column, utcnow
from accessd.models.enums import ZoneKind


class Zone(Base):
    """A hall, a suite, a cage...: a place doors lead into, inside at most one other zone."""

    __tablename__ = "zones"
    __table_args__ = (
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[ZoneKind] = mapped_column(enum_column(ZoneKind, 16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"), index=True)
    # New customers are granted these zones (24/7) when created: a one-door site needs no
    # grant set-up, as before zones. Migration 0015 sets it on the zone it creates.
    grant_new_customers: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Zone {self.id} {self.name!r}>"


class Grant(Base):
    """A zone granted to a customer (``person_id`` null) or to one of its people.

    ``schedule`` is the canonical text of weekly windows (``accessd.zones.schedule``), null
    for 24/7; ``closed_on_holidays`` refuses on the site's holidays; ``valid_from`` and
    ``valid_until`` are site days, both included, null for open-ended.
    """

    __tablename__ = "grants"
    __table_args__ = (
        # Keeps a person's grant under that person's own customer (a purge takes both).
        ForeignKeyConstraint(["person_id", "customer_id"], ["persons.id", "persons.customer_id"],
                             ondelete="CASCADE"),
        CheckConstraint("valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from",
                        name="validity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, index=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    schedule: Mapped[str | None] = mapped_column(Text)
    closed_on_holidays: Mapped[bool] = mapped_column(default=False)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<Grant {self.id} zone={self.zone_id} customer={self.customer_id}>"


class Holiday(Base):
    """A day the site is closed to grants that say so (``Grant.closed_on_holidays``)."""

    __tablename__ = "holidays"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, unique=True)
    name: Mapped[str] = mapped_column(String(100))
