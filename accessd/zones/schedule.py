"""Weekly windows ("mon-fri 07:00-19:00; sat 09:00-13:00"): parsed once, checked by minute.

Pure and small: the door checks a grant's schedule on its hot path, so a schedule is kept as
its canonical text (stored on the grant, readable in the panel, the CLI and a snapshot) and
parsed into minute-of-week intervals once per distinct text (``parse_schedule`` is cached).
Times are the site's wall-clock times (``accessd.clock.SiteClock.local``): a window from 07:00
opens at 07:00 local time on both sides of a daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from accessd.errors import InvalidInputError
from accessd.labels import N_

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAMED = {"daily": (0, 6), "weekdays": (0, 4), "weekends": (5, 6)}
WEEK_MINUTES = 7 * 24 * 60
MAX_WINDOWS = 64
FORMAT_HELP = N_("write windows like 'mon-fri 07:00-19:00; sat 09:00-13:00' (days mon to sun, "
               "a range mon-fri, or daily/weekdays/weekends; times HH:MM, 24:00 for midnight; "
               "a window ending before it starts runs past midnight)")
_ENTRY = re.compile(r"^([a-z]+)(?:-([a-z]+))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class Schedule:
    """Weekly windows; ``intervals`` are ``[start, end)`` minutes from Monday 00:00."""

    text: str
    intervals: tuple[tuple[int, int], ...]

    def open_at(self, local: dt.datetime) -> bool:
        """Whether ``local`` (a site wall-clock time) falls inside a window."""
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.intervals)


def _day(word: str, entry: str) -> int:
    if word not in DAYS:
        raise InvalidInputError("schedule", f"{word!r} in {entry!r} is not a day; {FORMAT_HELP}")
    return DAYS.index(word)


def _minute(hours: str, minutes: str, entry: str) -> int:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m):
        raise InvalidInputError("schedule", f"{hours}:{minutes} in {entry!r} is not a time; "
                                f"{FORMAT_HELP}")
    return h * 60 + m


@functools.lru_cache(maxsize=256)
def parse_schedule(text: str) -> Schedule:
    """The schedule ``text`` describes, with its canonical text.

    :raises InvalidInputError: the text is empty, or an entry is not ``DAYS HH:MM-HH:MM``.
    """
    entries = [e.strip().lower() for e in re.split(r"[;,\n]", text) if e.strip()]
    if not entries:
        raise InvalidInputError("schedule", f"is empty; {FORMAT_HELP} (or give no schedule "
                                "for 24/7)")
    if len(entries) > MAX_WINDOWS:
        raise InvalidInputError("schedule", f"has {len(entries)} windows; at most "
                                f"{MAX_WINDOWS}")
    intervals: list[tuple[int, int]] = []
    canonical: list[str] = []
    for entry in entries:
        match = _ENTRY.match(re.sub(r"\s+", " ", entry))
        if match is None:
            raise InvalidInputError("schedule", f"{entry!r} is not a window; {FORMAT_HELP}")
        first, last, sh, sm, eh, em = match.groups()
        if last is None and first in _NAMED:
            days = _NAMED[first]
        else:
            days = (_day(first, entry), _day(last or first, entry))
        start, end = _minute(sh, sm, entry), _minute(eh, em, entry)
        if start == end:
            raise InvalidInputError("schedule", f"{entry!r} starts when it ends; {FORMAT_HELP}")
        lo, hi = days
        span = range(lo, hi + 1) if lo <= hi else [*range(lo, 7), *range(0, hi + 1)]
        for day in span:
            base = day * 1440
            if start < end:
                intervals.append((base + start, base + end))
            else:  # past midnight: the rest of this day and the start of the next
                intervals.append((base + start, base + 1440))
                following = (base + 1440) % WEEK_MINUTES
                intervals.append((following, following + end))
        days_text = first if last is None else f"{first}-{last}"
        canonical.append(f"{days_text} {sh.zfill(2)}:{sm}-{eh.zfill(2)}:{em}")
    return Schedule("; ".join(canonical), tuple(sorted(intervals)))
