"""The site's time, said once: "today at the site", local midnights, and monotonic durations.

A contract's last day, a request's deadline, a history filter's days and the daemon's decision
all ask the same question ("which local day is it at the site?"); ``SiteClock`` is the one
answer. Wall time comes from an injected callable returning an aware UTC datetime, durations
from an injected monotonic one, so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from accessd.config import Settings

WallClock = Callable[[], dt.datetime]
"""Returns the current moment as an aware UTC datetime."""


def utc_now() -> dt.datetime:
    """The current moment, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class SiteClock:
    """The site's time zone with a wall clock and a monotonic clock.

    :param zone: the site's zone (``settings.access.timezone``).
    :param wall: the current moment, aware UTC (tests pass their own).
    :param monotonic: seconds for durations and timers (tests pass their own).
    """

    zone: ZoneInfo
    wall: WallClock = field(default=utc_now)
    monotonic: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def of(cls, settings: Settings, wall: WallClock | None = None,
           monotonic: Callable[[], float] | None = None) -> SiteClock:
        """The clock of the site ``settings`` describe."""
        return cls(ZoneInfo(settings.access.timezone), wall or utc_now,
                   monotonic or time.monotonic)

    def now(self) -> dt.datetime:
        """The current moment, aware UTC."""
        return self.wall()

    def today(self) -> dt.date:
        """The local date at the site now."""
        return self.local_day(self.wall())

    def local_day(self, moment: dt.datetime) -> dt.date:
        """The local date at the site at ``moment`` (aware)."""
        return moment.astimezone(self.zone).date()

    def local(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` in the site's zone."""
        return moment.astimezone(self.zone)

    def label(self, moment: dt.datetime, *, seconds: bool = True) -> str:
        """``moment`` as people read it, in the site's time with its zone said:
        "2026-03-02 10:55:12 CET" (the one way every page, message and command shows a time).
        """
        return time_label(moment, self.zone, seconds=seconds)

    def day_start(self, day: dt.date) -> dt.datetime:
        """The first moment (UTC) of local day ``day`` at the site (midnight, whatever its
        offset that day)."""
        return day_start(day, self.zone)


def day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first moment (UTC) of a local day in ``zone``."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def time_label(moment: dt.datetime, zone: ZoneInfo, *, seconds: bool = True) -> str:
    """``moment`` (aware) in ``zone`` with the zone's abbreviation ("CET", "CEST", "UTC"; a
    zone without one shows its offset, "+03"): a time is never shown without its zone."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
