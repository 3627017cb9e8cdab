"""Weekly windows as staff type them: what opens when, and what is refused with which words."""

from __future__ import annotations

import datetime as dt

import pytest

from accessd.errors import InvalidInputError
from accessd.zones.schedule import parse_schedule

MON = dt.datetime(2026, 11, 23)  # a Monday, site wall-clock time


def at(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return MON + dt.timedelta(days=day, hours=hh, minutes=mm)


@pytest.mark.parametrize(("text", "moment", "open_"), [
    ("mon-fri 07:00-19:00", at(0, 7), True),
    ("mon-fri 07:00-19:00", at(0, 6, 59), False),
    ("mon-fri 07:00-19:00", at(4, 18, 59), True),
    ("mon-fri 07:00-19:00", at(4, 19), False),  # the end is not included
    ("mon-fri 07:00-19:00", at(5, 12), False),  # Saturday
    ("weekends 00:00-24:00", at(6, 23, 59), True),
    ("weekdays 08:00-17:00; sat 09:00-13:00", at(5, 10), True),
    ("daily 22:00-06:00", at(2, 23), True),  # past midnight: the rest of Wednesday...
    ("daily 22:00-06:00", at(3, 5, 59), True),  # ...and Thursday's early hours
    ("daily 22:00-06:00", at(3, 12), False),
    ("sun 22:00-02:00", at(0, 1), True),  # Sunday night runs into Monday
    ("fri-mon 10:00-11:00", at(0, 10, 30), True),  # a range across the weekend
    ("fri-mon 10:00-11:00", at(2, 10, 30), False),
])
def test_a_window_opens_from_its_start_until_its_end(text: str, moment: dt.datetime,
                                                      open_: bool) -> None:
    assert parse_schedule(text).open_at(moment) is open_


def test_the_stored_text_is_canonical() -> None:
    assert parse_schedule(" Mon-Fri 7:00 - 19:00 ,SAT 09:00-13:00").text == (
        "mon-fri 07:00-19:00; sat 09:00-13:00")


@pytest.mark.parametrize(("text", "says"), [
    ("", "is empty"),
    ("monday 07:00-19:00", "'monday' in 'monday 07:00-19:00' is not a day"),
    ("mon 25:00-26:00", "25:00 in 'mon 25:00-26:00' is not a time"),
    ("mon 07:60-08:00", "is not a time"),
    ("mon 07:00-07:00", "starts when it ends"),
    ("mon 7-19", "is not a window"),
])
def test_a_schedule_that_does_not_parse_says_what_would(text: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_schedule(text)
    assert says in str(caught.value)
    assert "mon-fri 07:00-19:00" in str(caught.value)  # the example of what works
