"""Ids, cursors, days and moments are parsed once (``accessd.inputs``), and nothing that passes
can fail further down: no Unicode digit reaches ``int``, no id overflows SQLite, no day is so
close to the ends of Python's calendar that a day more or a time-zone conversion overflows."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accessd.clock import day_start
from accessd.errors import InvalidInputError
from accessd.inputs import (
    FIRST_DAY,
    ID_MAX,
    LAST_DAY,
    check_day,
    optional_id,
    parse_day,
    parse_id,
    parse_moment,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
ARABIC_INDIC_DAY = "\u0662\u0660\u0662\u0666-\u0660\u0663-\u0660\u0661"  # 2026-03-01
# Zones with the largest offsets either way, and one whose 0001-01-01 had a local mean time.
ZONES = [ZoneInfo(name) for name in ("Pacific/Kiritimati", "Etc/GMT+12", "Europe/Amsterdam",
                                     "Asia/Kolkata")]


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 1), ("42", 42), (str(ID_MAX), ID_MAX), ("0007", 7),
])
def test_ids_are_ascii_digits_within_64_bits(text: str, expected: int) -> None:
    assert parse_id("customer", text) == expected
    assert optional_id(text) == expected


@pytest.mark.parametrize("text", [
    "", "0", "-1", "+1", " 1", "1 ", "1_000", "1e3", "0x1f", "²", "٣", "\uff11", "1.0",
    str(ID_MAX + 1), "9" * 30, "\uff11\uff12", "1\x00", "one",
])
def test_anything_else_is_not_an_id(text: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_id("customer", text)
    assert refused.value.field == "customer"
    assert "whole number from 1 to" in refused.value.problem
    assert optional_id(text) is None


def test_a_refusal_quotes_a_long_value_only_in_part() -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_id("cursor", "9" * 1000)
    assert len(str(refused.value)) < 150


@pytest.mark.parametrize(("text", "low", "high"), [("0", 0, 10), ("10", 0, 10), ("5", 5, 5)])
def test_bounds_can_be_chosen(text: str, low: int, high: int) -> None:
    assert parse_id("limit", text, low=low, high=high) == int(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-01", dt.date(2026, 3, 1)), (" 2026-03-01 ", dt.date(2026, 3, 1)),
    (FIRST_DAY.isoformat(), FIRST_DAY), (LAST_DAY.isoformat(), LAST_DAY),
])
def test_days_in_the_range_are_accepted(text: str, expected: dt.date) -> None:
    assert parse_day("since", text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("0001-01-01", "outside the dates"), ("9999-12-31", "outside the dates"),
    ("1899-12-31", "outside the dates"), ("3000-01-01", "outside the dates"),
    ("20260301", "not a date"), ("2026-02-30", "not a date"), (ARABIC_INDIC_DAY, "not a date"),
    ("2026-3-1", "not a date"), ("", "not a date"), ("yesterday", "not a date"),
    ("2026-03-01T00:00", "not a date"),
])
def test_other_days_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_day("until", text)
    assert refused.value.field == "until" and problem in refused.value.problem


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-01", dt.datetime(2026, 2, 28, 23, 0, tzinfo=dt.UTC)),  # local midnight
    ("2026-03-01T08:00:00Z", dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)),
    ("2026-03-01T08:00:00+01:00", dt.datetime(2026, 3, 1, 7, 0, tzinfo=dt.UTC)),
    ("2026-03-01T08:00:00.5-05:30", dt.datetime(2026, 3, 1, 13, 30, 0, 500000, tzinfo=dt.UTC)),
])
def test_moments_are_a_day_or_a_time_with_an_offset(text: str, expected: dt.datetime) -> None:
    assert parse_moment("since", text, AMSTERDAM) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("0001-01-01T00:00:00+14:00", "outside the dates"),
    ("9999-12-31T23:59:59-14:00", "outside the dates"),
    ("0001-01-01", "outside the dates"),
    ("2026-03-01T08:00:00", "with its offset"),
    ("2026-03-01T08:00:00+25:00", "not a date"),
    ("tomorrow", "not a date"), (ARABIC_INDIC_DAY + "T00:00Z", "not a date"), ("", "not a date"),
])
def test_other_moments_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_moment("until", text, AMSTERDAM)
    assert problem in refused.value.problem


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_the_ends_of_the_range_convert_in_every_zone(zone: ZoneInfo) -> None:
    # What the filters do with a day: its midnight, the next day's, a year back for a chart.
    for day in (FIRST_DAY, LAST_DAY):
        check_day("day", day)
        day_start(day, zone)
        day_start(day + dt.timedelta(days=1), zone)
        day_start(day - dt.timedelta(days=366), zone)


@given(st.text(max_size=30))
def test_no_text_makes_a_parser_raise_anything_but_its_refusal(text: str) -> None:
    for parse in (lambda t: parse_id("x", t), lambda t: parse_day("x", t),
                  lambda t: parse_moment("x", t, ZONES[0]), optional_id):
        try:
            parse(text)
        except InvalidInputError:
            pass


@given(st.dates())
def test_a_day_that_passes_converts_whatever_the_zone(day: dt.date) -> None:
    try:
        check_day("day", day)
    except InvalidInputError:
        return
    for zone in ZONES:
        day_start(day + dt.timedelta(days=1), zone)
