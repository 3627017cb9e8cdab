"""What each door's sensor holds, as that door's daemon last wrote it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from accessd.models.base import Base, UTCDateTime, utcnow


class SensorSlot(Base):
    """This door's sensor holds this finger's template at this slot.

    Reconciling trusts this record, not the sensor's occupancy alone, so that a slot reused
    after an erasure is overwritten on every sensor (see ``accessd.fingers.library``). Deleting the
    finger deletes the record; the next reconcile then wipes the slot.
    """

    __tablename__ = "sensor_slots"

    door_id: Mapped[int] = mapped_column(
        ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    finger_id: Mapped[int] = mapped_column(
        ForeignKey("fingers.id", ondelete="CASCADE"), index=True
    )
    written_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
