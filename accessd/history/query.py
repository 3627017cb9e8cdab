"""Reading the access history for the CLI and the panel: filtered pages, a chart, a CSV export.

Built for millions of rows. Pages are keyset-paginated, newest first: the cursor is the id of
the last event shown, and the next page starts strictly after its ``(at, id)``, so page 10,000
costs what page 1 costs (no OFFSET) and rows added meanwhile never shift a page. The order
``at DESC, id DESC`` is the order of the model's ``(<filter column>, at)`` indexes (SQLite
appends the row id to every index), so no page needs a sort; a person's page starts from that
person's own events (``PersonEvent``) and sorts just those. The export streams with
``yield_per``: memory stays flat whatever the row count.

An event without a person (an unknown finger, or anonymised by an erasure) joins no person
row, so it carries no name and no identifier: nothing personal is shown or exported for it.
Run these in a read-only transaction (``accessd.db.read_only_engine``): a long export must
not hold the write lock the door needs to record events.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    false,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from accessd import labels
from accessd.clock import day_start
from accessd.csv_cells import csv_writer
from accessd.customers.contracts import CustomerName, customer_names, not_found
from accessd.door.doors import door_named
from accessd.errors import HistoryError, InvalidInputError, NotFoundError
from accessd.history.chain import naming_person
from accessd.inputs import optional_id
from accessd.labels import label
from accessd.models import AccessEvent, Customer, Door, EventKind, EventMethod, Person

PAGE_MAX = 1000
EXPORT_BATCH = 1000
CHART_MAX_DAYS = 366
REFUSED = "refused"  # a filter word: the kinds a chart counts as refused
REFUSED_KINDS = frozenset({EventKind.DENIED, EventKind.UNKNOWN_FINGER})
CSV_COLUMNS = ("id", "time_utc", "door", "customer", "person", "person_id", "kind", "method",
               "refers_to", "reason")
@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to read; every condition given must hold. ``since`` is included and
    ``until`` excluded (aware datetimes); an empty ``kinds`` means every kind."""

    customer_id: int | None = None
    person_id: int | None = None
    door_id: int | None = None
    kinds: frozenset[EventKind] = frozenset()
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise InvalidInputError(name, "must be a timezone-aware time")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidInputError("until", "must be later than since: the period is empty")

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses, each on a column one of the model's indexes starts with."""
        where: list[ColumnElement[bool]] = []
        if self.customer_id is not None:
            where.append(AccessEvent.customer_id == self.customer_id)
        if self.person_id is not None:
            where.append(naming_person(self.person_id, self.since, self.until))
        if self.door_id is not None:
            where.append(AccessEvent.door_id == self.door_id)
        if self.kinds:
            where.append(AccessEvent.kind.in_(sorted(self.kinds)))
        if self.since is not None:
            where.append(AccessEvent.at >= self.since)
        if self.until is not None:
            where.append(AccessEvent.at < self.until)
        return where


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event as people see it; ``person`` and ``person_id`` are None for anonymous ones."""

    id: int
    at: dt.datetime  # UTC
    kind: EventKind
    method: EventMethod | None
    reason: str | None
    door: str | None
    customer: str | None
    person: str | None
    person_id: uuid.UUID | None  # the person's public id, never the row id
    refers_to: int | None = None  # the event this one is about (a pulse_failed's granted)


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page, newest first; pass ``next_before`` back for the next one (None: last page)."""

    rows: list[EventRow]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """What a history filter can choose from: customers, doors, and people (only those of the
    chosen customer, or the one person asked for: a large site has too many to list)."""

    customers: list[CustomerName]
    people: list[tuple[int, str]]  # (person id, name), by name
    doors: list[tuple[int, str]]  # (door id, name), by name


@dataclass(frozen=True, slots=True)
class DayCount:
    """Granted and refused (denied or unknown finger) events on one local day."""

    day: dt.date
    granted: int
    refused: int


def kind_label(kind: EventKind) -> str:
    """An event kind as people read it in the panel and the CLI (``accessd.labels``)."""
    return label(kind)


def reason_label(reason: str | None) -> str:
    """An event's reason as people read it: the door's codes in words, anything else (a
    remote unlock's reason, a fault's description) as it was written (``accessd.labels``)."""
    return labels.reason_label(reason)


def parse_kinds(words: Iterable[str]) -> frozenset[EventKind]:
    """Event kinds from their names; ``refused`` stands for denied and unknown finger.

    :raises InvalidInputError: a word that is not a kind, with the kinds there are.
    """
    kinds: set[EventKind] = set()
    for word in words:
        if word == REFUSED:
            kinds |= REFUSED_KINDS
            continue
        try:
            kinds.add(EventKind(word))
        except ValueError:
            choices = ", ".join([REFUSED, *(k.value for k in EventKind)])
            raise InvalidInputError("kind", f"{word!r} is not an event kind; use one of "
                                    f"{choices}") from None
    return frozenset(kinds)


def local_period(
    since: dt.date | None, until: dt.date | None, zone: ZoneInfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Local days ``[since, until)`` as UTC bounds for ``EventFilter``.

    :raises InvalidInputError: ``until`` is not after ``since``.
    """
    if since is not None and until is not None and until <= since:
        raise InvalidInputError("until", f"the period ends on {until}, not after it starts "
                                f"({since}); it runs from its first day up to, not "
                                "including, the day it ends, so choose a later end")
    return (None if since is None else day_start(since, zone),
            None if until is None else day_start(until, zone))


def find_door(session: Session, ref: str) -> Door:
    """The door ``ref`` names: its id or its exact name.

    :raises NotFoundError: no such door (with close names).
    """
    ref = ref.strip()
    if (row_id := optional_id(ref)) is not None:
        found = session.get(Door, row_id)
        if found is not None:
            return found
    try:
        return door_named(session, ref)
    except NotFoundError as exc:
        raise not_found("door", ref, exc.suggestions, listing="accessd status") from None


def filter_choices(
    session: Session, *, customer_id: int | None = None, person_id: int | None = None
) -> FilterChoices:
    """The choices of a history filter for the chosen customer (or person)."""
    chosen = (Person.customer_id == customer_id if customer_id is not None
              else Person.id == person_id if person_id is not None else false())
    people = session.execute(select(Person.id, Person.name).where(chosen).order_by(Person.name))
    doors = session.execute(select(Door.id, Door.name).order_by(Door.name))
    return FilterChoices(customer_names(session), [(pid, name) for pid, name in people],
                         [(did, name) for did, name in doors])


def page_events(
    session: Session, where: EventFilter, *, before: int | None = None, limit: int = 50
) -> EventPage:
    """One page of events, newest first, starting after the event ``before`` (an id).

    :raises InvalidInputError: ``limit`` outside 1..PAGE_MAX.
    :raises HistoryError: the ``before`` event no longer exists (purged or pruned).
    """
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInputError("limit", f"{limit} is not allowed; use 1 to {PAGE_MAX}")
    query = _rows_query(where)
    if before is not None:
        at = session.scalar(select(AccessEvent.at).where(AccessEvent.id == before))
        if at is None:
            raise HistoryError(f"event #{before} no longer exists (purged or pruned); start "
                               "again from the newest events")
        # "at <= x" bounds the index range; the OR only breaks ties inside one timestamp.
        query = query.where(AccessEvent.at <= at,
                            or_(AccessEvent.at < at, AccessEvent.id < before))
    # One row more than asked says whether a next page exists, without a COUNT.
    rows = [_event_row(r) for r in session.execute(query.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, rows[-1].id if more else None)


def iter_events(
    session: Session, where: EventFilter, *, batch: int = EXPORT_BATCH
) -> Iterator[EventRow]:
    """Every matching event, newest first, fetched ``batch`` rows at a time."""
    result = session.execute(_rows_query(where).execution_options(yield_per=batch))
    for row in result:
        yield _event_row(row)


def export_csv(
    session: Session, where: EventFilter, *, batch: int = EXPORT_BATCH
) -> Iterator[str]:
    """The matching events as CSV, one line per yielded string (header first, CRLF endings),
    streamed so that a million rows take no more memory than one batch. Names, doors and
    reasons are typed by people: every cell goes through ``accessd.csv_cells`` (no formulas)."""
    line = _Line()
    writer = csv_writer(line)
    writer.writerow(CSV_COLUMNS)
    yield line.take()
    for event in iter_events(session, where, batch=batch):
        writer.writerow((
            event.id, event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), event.door, event.customer,
            event.person, event.person_id, event.kind.value,
            None if event.method is None else event.method.value, event.refers_to,
            event.reason))
        yield line.take()


def daily_counts(
    session: Session,
    since: dt.date,
    until: dt.date,
    *,
    zone: ZoneInfo,
    where: EventFilter | None = None,
) -> list[DayCount]:
    """Granted and refused events per local day in ``[since, until)``, zeros included: the
    panel's chart. The other conditions of ``where`` apply; its period and kinds are replaced.

    :raises InvalidInputError: the period is empty or longer than CHART_MAX_DAYS.
    """
    days = (until - since).days
    if not 1 <= days <= CHART_MAX_DAYS:
        raise InvalidInputError(
            "until", f"a chart covers 1 to {CHART_MAX_DAYS} days; {since} up to {until} is "
            f"{days} days")
    bounds = [day_start(since + dt.timedelta(days=n), zone) for n in range(days + 1)]
    where = where or EventFilter()
    scope = {"customer": where.customer_id, "person": where.person_id, "door": where.door_id}
    given = tuple(name for name, value in scope.items() if value is not None)
    counts: dict[int, tuple[int, int]] = {}
    for first in range(0, days, _DAYS_PER_STATEMENT):
        chunk = range(first, min(days, first + _DAYS_PER_STATEMENT))
        params: dict[str, Any] = {name: scope[name] for name in given}
        for i, n in enumerate(chunk):
            params.update({f"lo{i}": bounds[n], f"hi{i}": bounds[n + 1]})
        for i, granted, refused in session.execute(
                _day_counts_statement(len(chunk), given), params):
            counts[chunk[i]] = (int(granted), int(refused))
    return [DayCount(since + dt.timedelta(days=n), *counts.get(n, (0, 0))) for n in range(days)]


# One range per day, counted with FILTER: on the (at, kind) index each day is a range read
# from the index alone, never a row, and with no GROUP BY to sort (grouping the period's
# events by hour took 75 ms for 100,000 events in 30 days; this takes about 35); and a day
# may start at any minute (Kolkata, St John's). The statement is built once per shape
# (building 30 SELECTs costs more than running them); SQLite allows 500 per compound SELECT.
_DAYS_PER_STATEMENT = 200
_SCOPE_COLUMNS = {"customer": AccessEvent.customer_id, "door": AccessEvent.door_id}


@functools.lru_cache(maxsize=64)
def _day_counts_statement(terms: int, given: tuple[str, ...]) -> CompoundSelect:
    """``terms`` rows of (term number, granted, refused); the bound parameters are ``lo<i>``
    and ``hi<i>`` for each term and one per name in ``given`` (customer, person, door)."""
    granted = func.count().filter(AccessEvent.kind == EventKind.GRANTED)
    refused = func.count().filter(AccessEvent.kind.in_(sorted(REFUSED_KINDS)))

    def day(i: int) -> Select:
        lo = bindparam(f"lo{i}", type_=AccessEvent.at.type)
        hi = bindparam(f"hi{i}", type_=AccessEvent.at.type)
        scope = [naming_person(bindparam("person"), lo, hi) if name == "person"
                 else _SCOPE_COLUMNS[name] == bindparam(name) for name in given]
        return select(literal_column(str(i)), granted, refused).where(
            *scope, AccessEvent.at >= lo, AccessEvent.at < hi)

    return union_all(*(day(i) for i in range(terms)))


# A bare Select: its row type is spelled differently in SQLAlchemy 2.0 and 2.1.
def _rows_query(where: EventFilter) -> Select:
    return (
        select(AccessEvent.id, AccessEvent.at, AccessEvent.kind, AccessEvent.method,
               AccessEvent.reason, Door.name, Customer.name, Person.name, Person.public_id,
               AccessEvent.refers_to)
        .outerjoin(Door, Door.id == AccessEvent.door_id)
        .outerjoin(Customer, Customer.id == AccessEvent.customer_id)
        # No person row for anonymous events: nothing personal can come with them.
        .outerjoin(Person, Person.id == AccessEvent.person_id)
        .where(*where.conditions())
        .order_by(AccessEvent.at.desc(), AccessEvent.id.desc())
    )


def _event_row(row: tuple[Any, ...]) -> EventRow:
    return EventRow(*row)


class _Line:
    """A file-like sink for ``csv.writer`` that hands back what one ``writerow`` wrote."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        return text
