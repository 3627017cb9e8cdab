"""The history queries the panel runs, on SQLite and on a real PostgreSQL server: the chart's
per-day counts and keyset pages give the same answers as counting the events by hand."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from accessd.db import make_sessionmaker
from accessd.history.query import EventFilter, daily_counts, page_events
from accessd.models import EventKind
from tests.customers import seed

KOLKATA = ZoneInfo("Asia/Kolkata")  # midnight at half past the UTC hour
KINDS = [EventKind.GRANTED, EventKind.DENIED, EventKind.UNKNOWN_FINGER, EventKind.EXIT]


def test_chart_and_pages_agree_with_the_events_on_both_databases(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        acme, beta = seed.customer(session, "Acme"), seed.customer(session, "Beta")
        ada, eve = seed.person(session, acme, "Ada"), seed.person(session, beta, "Eve")
        events = []
        start = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
        for n in range(200):
            kind = KINDS[n % 4]
            who = None if kind is EventKind.UNKNOWN_FINGER else (ada, eve)[n // 4 % 2]
            events.append(seed.event(session, kind, start + dt.timedelta(minutes=317 * n),
                                     who=who))
        expected: dict[dt.date, list[int]] = {}
        for e in events:
            if e.customer_id == acme.id and e.kind is not EventKind.EXIT:
                day = expected.setdefault(e.at.astimezone(KOLKATA).date(), [0, 0])
                day[0 if e.kind is EventKind.GRANTED else 1] += 1
        acme_ids = sorted((e.id for e in events if e.customer_id == acme.id), reverse=True)

    days = [dt.date(2025, 3, 1) + dt.timedelta(days=n) for n in range(46)]
    with sessions() as session:
        counted = daily_counts(session, days[0], days[-1] + dt.timedelta(days=1), zone=KOLKATA,
                               where=EventFilter(customer_id=acme.id))
        assert [(c.day, c.granted, c.refused) for c in counted] == [
            (day, *expected.get(day, [0, 0])) for day in days]
        first = page_events(session, EventFilter(customer_id=acme.id), limit=30)
        second = page_events(session, EventFilter(customer_id=acme.id),
                             before=first.next_before, limit=30)
    # Same timestamps never tie here, so newest first is highest id first.
    assert [r.id for r in first.rows + second.rows] == acme_ids[:60]
