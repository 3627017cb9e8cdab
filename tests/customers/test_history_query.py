"""Reading the access history: filters, keyset pages, the daily chart and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, insert, text
from sqlalchemy.orm import Session, sessionmaker

from accessd.errors import HistoryError, InvalidInputError
from accessd.history.query import (
    CSV_COLUMNS,
    EventFilter,
    daily_counts,
    export_csv,
    local_period,
    page_events,
    parse_kinds,
)
from accessd.models import AccessEvent, Customer, Door, EventKind, Person
from tests.customers import seed

BASE = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
KINDS = [EventKind.GRANTED, EventKind.DENIED, EventKind.UNKNOWN_FINGER, EventKind.EXIT]


@dataclass
class Site:
    acme: Customer
    beta: Customer
    ada: Person
    bob: Person
    eve: Person
    front: Door
    back: Door
    events: list[AccessEvent]


@pytest.fixture
def site(session: Session) -> Site:
    """Two customers, three people, two doors and 60 events over 30 days, with ties in time,
    unknown fingers, and Bob's history anonymised as an erasure leaves it."""
    acme, beta = seed.customer(session, "Acme"), seed.customer(session, "Beta")
    ada, bob = seed.person(session, acme, "Ada Lovelace"), seed.person(session, acme, "Bob Byte")
    eve = seed.person(session, beta, "Eve Evans")
    front, back = seed.door(session, "front"), seed.door(session, "back")
    events = []
    for n in range(60):
        at = BASE + dt.timedelta(hours=12 * (n // 2))  # two events per timestamp
        kind = KINDS[n % 4]
        who = None if kind is EventKind.UNKNOWN_FINGER else (ada, bob, eve)[n % 3]
        events.append(seed.event(session, kind, at, who=who, where=(front, back)[n % 2]))
    seed.anonymise(session, bob)
    return Site(acme, beta, ada, bob, eve, front, back, events)


def newest_first(events: list[AccessEvent]) -> list[int]:
    return [e.id for e in sorted(events, key=lambda e: (e.at, e.id), reverse=True)]


def all_pages(session: Session, where: EventFilter, limit: int) -> Iterator[list[int]]:
    before = None
    while True:
        page = page_events(session, where, before=before, limit=limit)
        yield [row.id for row in page.rows]
        if page.next_before is None:
            return
        before = page.next_before


@pytest.mark.parametrize("limit", [1, 7, 30, 59, 60, 61, 1000])
def test_pages_cover_every_event_once_newest_first(
    session: Session, site: Site, limit: int
) -> None:
    pages = list(all_pages(session, EventFilter(), limit))
    assert [i for page in pages for i in page] == newest_first(site.events)
    assert all(len(page) == limit for page in pages[:-1])
    assert pages[-1]  # no empty last page when the count is a multiple of the limit


def test_rows_added_while_paging_neither_repeat_nor_shift_a_page(
    session: Session, site: Site
) -> None:
    first = page_events(session, EventFilter(), limit=10)
    seed.event(session, EventKind.GRANTED, BASE + dt.timedelta(days=400), who=site.ada)
    second = page_events(session, EventFilter(), before=first.next_before, limit=10)
    assert [r.id for r in first.rows + second.rows] == newest_first(site.events)[:20]


@pytest.mark.parametrize(
    "make",
    [
        lambda s: (EventFilter(customer_id=s.acme.id),
                   lambda e: e.customer_id == s.acme.id),
        lambda s: (EventFilter(person_id=s.ada.id), lambda e: e.person_id == s.ada.id),
        lambda s: (EventFilter(door_id=s.back.id), lambda e: e.door_id == s.back.id),
        lambda s: (EventFilter(kinds=parse_kinds(["refused"])),
                   lambda e: e.kind in (EventKind.DENIED, EventKind.UNKNOWN_FINGER)),
        lambda s: (EventFilter(customer_id=s.acme.id, door_id=s.front.id,
                               kinds=frozenset({EventKind.GRANTED}),
                               since=BASE + dt.timedelta(days=3),
                               until=BASE + dt.timedelta(days=20)),
                   lambda e: e.customer_id == s.acme.id and e.door_id == s.front.id
                   and e.kind is EventKind.GRANTED
                   and BASE + dt.timedelta(days=3) <= e.at < BASE + dt.timedelta(days=20)),
    ],
    ids=["customer", "person", "door", "refused", "all-combined"],
)
def test_filters_combine_and_keep_exactly_the_matching_events(
    session: Session, site: Site, make: Any
) -> None:
    where, keep = make(site)
    expected = newest_first([e for e in site.events if keep(e)])
    assert expected  # the site holds some of each
    assert [i for page in all_pages(session, where, 4) for i in page] == expected


def test_anonymous_events_show_no_personal_data(session: Session, site: Site) -> None:
    rows = {row.id: row for page in [page_events(session, EventFilter(), limit=1000)]
            for row in page.rows}
    for e in site.events:
        row = rows[e.id]
        if e.person_id is None:
            assert (row.person, row.person_id) == (None, None)
        else:
            assert row.person is not None and row.person_id is not None
    bobs = [rows[e.id] for e in site.events if e.person_id is None and e.customer_id]
    assert bobs and all(r.customer == "Acme" for r in bobs)  # the company stays


def test_a_page_after_a_purged_event_asks_to_start_again(session: Session, site: Site) -> None:
    page = page_events(session, EventFilter(), limit=5)
    assert page.next_before is not None
    session.execute(delete(AccessEvent).where(AccessEvent.id == page.next_before))
    with pytest.raises(HistoryError, match="start again from the newest"):
        page_events(session, EventFilter(), before=page.next_before, limit=5)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_a_page_holds_1_to_1000_events(session: Session, limit: int) -> None:
    with pytest.raises(InvalidInputError) as caught:
        page_events(session, EventFilter(), limit=limit)
    assert caught.value.field == "limit"


def _page_plan(engine: Engine, session: Session, where: EventFilter, before: int) -> str:
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "ORDER BY access_events.at DESC" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        page_events(session, where, before=before, limit=10)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    (statement, parameters), = captured
    return " | ".join(str(row[-1]) for row in session.connection().exec_driver_sql(
        f"EXPLAIN QUERY PLAN {statement}", parameters))


def test_a_customer_page_reads_its_index_without_sorting(
    engine: Engine, session: Session, site: Site
) -> None:
    plan = _page_plan(engine, session, EventFilter(customer_id=site.acme.id),
                      site.events[-1].id)
    assert "ix_access_events_customer_id_at" in plan
    assert "TEMP B-TREE" not in plan


def test_a_person_page_starts_from_the_persons_own_events(
    engine: Engine, session: Session, site: Site
) -> None:
    # Not a walk through the whole history testing each event: a person seen once a year
    # must cost what a frequent one costs.
    plan = _page_plan(engine, session, EventFilter(person_id=site.ada.id), site.events[-1].id)
    assert "SEARCH person_events USING PRIMARY KEY (person_id=?)" in plan
    assert plan.startswith("SEARCH access_events USING INTEGER PRIMARY KEY (rowid=?)")
    assert "SCAN access_events" not in plan, plan


def test_export_has_a_header_and_one_line_per_event(session: Session, site: Site) -> None:
    lines = list(export_csv(session, EventFilter(), batch=7))
    assert len(lines) == len(site.events) + 1
    assert all(line.endswith("\r\n") and line.count("\r\n") == 1 for line in lines)
    records = list(csv.DictReader(io.StringIO("".join(lines))))
    assert tuple(records[0].keys()) == CSV_COLUMNS
    assert [int(r["id"]) for r in records] == newest_first(site.events)


def test_export_of_anonymous_events_holds_no_personal_data(
    session: Session, site: Site
) -> None:
    lines = list(export_csv(session, EventFilter(), batch=5))
    by_id = {int(line.split(",", 1)[0]): line for line in lines[1:]}
    anonymous = [e for e in site.events if e.person_id is None]
    assert anonymous
    for e in anonymous:
        line = by_id[e.id]
        assert "Bob" not in line and str(site.bob.public_id) not in line
        _, _, _, _, person, person_id, *_ = next(csv.reader([line]))
        assert (person, person_id) == ("", "")
    assert any("Ada Lovelace" in line and str(site.ada.public_id) in line for line in lines)


def test_export_cells_cannot_run_as_spreadsheet_formulas(session: Session) -> None:
    acme = seed.customer(session, "=HYPERLINK(\"http://x\")")
    who = seed.person(session, acme, "+cmd|' /C calc'!A0")
    seed.event(session, EventKind.DENIED, BASE, who=who, reason="-1+1")
    _, line = export_csv(session, EventFilter())
    door, customer, person = next(csv.reader([line]))[2:5]
    assert (customer[0], person[0]) == ("'", "'")
    assert customer[1:] == acme.name and person[1:] == who.name
    assert next(csv.reader([line]))[-1] == "'-1+1"
    assert door == ""


def _bulk_events(session: Session, count: int) -> None:
    # Straight inserts: the export reads rows, it does not verify the chain.
    first = seed.event(session, EventKind.EXIT, BASE)
    session.execute(insert(AccessEvent), [
        {"chain_id": first.chain_id, "seq": first.seq + 1 + n, "at": BASE + dt.timedelta(seconds=n),
         "kind": EventKind.UNKNOWN_FINGER, "prev_digest": b"p" * 32, "digest": b"d" * 32,
         "reason": "x" * 150} for n in range(count)])


def _peak_export_memory(session: Session) -> int:
    tracemalloc.start()
    try:
        lines = sum(1 for _ in export_csv(session, EventFilter(), batch=500))
        return tracemalloc.get_traced_memory()[1] if lines else 0
    finally:
        tracemalloc.stop()


def test_export_memory_stays_flat_as_the_history_grows(
    sessions: sessionmaker[Session],
) -> None:
    peaks = []
    for total in (2_000, 20_000):
        with sessions() as session:
            session.execute(delete(AccessEvent))
            _bulk_events(session, total)
            session.commit()
        with sessions() as session:
            peaks.append(_peak_export_memory(session))
    # Ten times the rows: fetched in batches, the peak barely moves (a full fetch of 20,000
    # rows of 150-character reasons alone would add several MB).
    assert peaks[1] < peaks[0] * 1.5 + 256 * 1024, peaks


def _brute_force_counts(
    events: list[AccessEvent], zone: ZoneInfo, days: list[dt.date]
) -> list[tuple[dt.date, int, int]]:
    counts = {day: [0, 0] for day in days}
    for e in events:
        day = e.at.astimezone(zone).date()
        if day in counts and e.kind in (EventKind.GRANTED, EventKind.DENIED,
                                        EventKind.UNKNOWN_FINGER):
            counts[day][0 if e.kind is EventKind.GRANTED else 1] += 1
    return [(day, g, r) for day, (g, r) in counts.items()]


@pytest.mark.parametrize("zone_name", ["Europe/Amsterdam", "Asia/Kolkata", "America/St_Johns",
                                       "UTC"])
def test_daily_counts_split_granted_and_refused_by_the_sites_days(
    session: Session, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    acme = seed.customer(session)
    ada = seed.person(session, acme)
    events = []
    # Every 25 minutes over the summer-time switch of 30 March: midnights on both sides.
    start = dt.datetime(2025, 3, 28, 0, 0, tzinfo=dt.UTC)
    for n in range(4 * 24 * 60 // 25):
        kind = KINDS[n % 4]
        events.append(seed.event(session, kind, start + dt.timedelta(minutes=25 * n),
                                 who=None if kind is EventKind.UNKNOWN_FINGER else ada))
    days = [dt.date(2025, 3, 27) + dt.timedelta(days=n) for n in range(6)]
    counted = daily_counts(session, days[0], days[-1] + dt.timedelta(days=1), zone=zone)
    assert [(c.day, c.granted, c.refused) for c in counted] == _brute_force_counts(
        events, zone, days)
    assert counted[0].granted + counted[0].refused < sum(c.granted for c in counted)


def test_daily_counts_keep_the_other_filters(session: Session, site: Site) -> None:
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=n) for n in range(31)]
    counted = daily_counts(session, days[0], dt.date(2025, 4, 1), zone=AMSTERDAM,
                           where=EventFilter(customer_id=site.beta.id))
    eve_events = [e for e in site.events if e.customer_id == site.beta.id]
    assert [(c.day, c.granted, c.refused) for c in counted] == _brute_force_counts(
        eve_events, AMSTERDAM, days)


def test_a_long_chart_counts_every_day_by_person_and_by_door(session: Session) -> None:
    # 120 days x 3 kinds is more counts than one statement holds: every day still counted.
    acme = seed.customer(session)
    ada, bob = seed.person(session, acme, "Ada"), seed.person(session, acme, "Bob")
    front, back = seed.door(session, "front"), seed.door(session, "back")
    events = []
    start = dt.datetime(2025, 1, 1, 5, tzinfo=dt.UTC)
    for n in range(120 * 3):
        kind = KINDS[n % 4]
        who = None if kind is EventKind.UNKNOWN_FINGER else (ada, bob)[n % 2]
        events.append(seed.event(session, kind, start + dt.timedelta(hours=8 * n),
                                 who=who, where=(front, back)[n // 2 % 2]))
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=n) for n in range(120)]
    until = days[-1] + dt.timedelta(days=1)
    for where, chosen in [(EventFilter(person_id=ada.id), lambda e: e.person_id == ada.id),
                          (EventFilter(door_id=back.id), lambda e: e.door_id == back.id),
                          (EventFilter(), lambda e: True)]:
        counted = daily_counts(session, days[0], until, zone=AMSTERDAM, where=where)
        assert [(c.day, c.granted, c.refused) for c in counted] == _brute_force_counts(
            [e for e in events if chosen(e)], AMSTERDAM, days)
    assert sum(c.granted + c.refused for c in counted[90:]) > 0  # past the first statement


@pytest.mark.parametrize(("since", "until"), [(dt.date(2025, 3, 2), dt.date(2025, 3, 2)),
                                              (dt.date(2025, 3, 2), dt.date(2025, 3, 1)),
                                              (dt.date(2024, 1, 1), dt.date(2025, 1, 2))])
def test_a_chart_covers_1_to_366_days(session: Session, since: dt.date, until: dt.date) -> None:
    with pytest.raises(InvalidInputError, match="1 to 366 days"):
        daily_counts(session, since, until, zone=AMSTERDAM)


def test_a_local_period_runs_from_midnight_to_midnight_excluding_the_last_day() -> None:
    assert local_period(dt.date(2025, 3, 30), dt.date(2025, 3, 31), AMSTERDAM) == (
        dt.datetime(2025, 3, 29, 23, tzinfo=dt.UTC), dt.datetime(2025, 3, 30, 22, tzinfo=dt.UTC))
    with pytest.raises(InvalidInputError, match="not after it starts") as caught:
        local_period(dt.date(2025, 3, 30), dt.date(2025, 3, 30), AMSTERDAM)
    assert caught.value.field == "until"


def test_unknown_event_kinds_are_refused_with_the_kinds_there_are() -> None:
    assert parse_kinds(["granted", "refused"]) == {
        EventKind.GRANTED, EventKind.DENIED, EventKind.UNKNOWN_FINGER}
    with pytest.raises(InvalidInputError, match="'opened' is not an event kind; use one of "
                       "refused, granted, denied"):
        parse_kinds(["opened"])


events_strategy = st.lists(
    st.tuples(st.sampled_from([0, 1, None]),  # customer 0, 1 or none (unknown finger)
              st.integers(0, 6),  # minutes after BASE: few values, many ties
              st.sampled_from(KINDS)),
    max_size=40)


def test_keyset_pages_over_random_history_equal_the_full_sorted_list(engine: Engine) -> None:
    sessions = sessionmaker(engine)

    @settings(max_examples=60, deadline=None)
    @given(rows=events_strategy, limit=st.integers(1, 9),
           only=st.sampled_from([None, 0, 1]), kinds=st.sets(st.sampled_from(KINDS)))
    def check(rows: list[tuple[int | None, int, EventKind]], limit: int, only: int | None,
              kinds: set[EventKind]) -> None:
        with sessions() as session:  # never committed: each example starts empty
            owners = [seed.customer(session, "A"), seed.customer(session, "B")]
            events = [seed.event(session, kind, BASE + dt.timedelta(minutes=minute),
                                 owner=None if c is None else owners[c])
                      for c, minute, kind in rows]
            where = EventFilter(customer_id=None if only is None else owners[only].id,
                                kinds=frozenset(kinds))
            expected = newest_first([
                e for e in events
                if (only is None or e.customer_id == owners[only].id)
                and (not kinds or e.kind in kinds)])
            got = [i for page in all_pages(session, where, limit) for i in page]
            assert got == expected
            session.rollback()

    check()


def test_the_history_tables_are_empty_after_the_property_test_examples(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM access_events")).scalar() == 0
