"""Tracking data-subject requests against their deadlines (GDPR art. 12(3)).

A request is answered within one month of receipt; for complex or numerous requests the
controller may extend that by two further months (three in all), telling the requester why
within the first month. Months are calendar months: received on 31 January, due on the last
day of February. Overdue is derived from the dates each time it is asked, never stored.

A request is personal data too (the requester's name and contact). Closed, it is kept as the
proof it was answered for ``retention.data_subject_requests`` after closing; never closed, it
is deleted ``retention.open_data_subject_requests`` after receipt (``open_request_ends``), by
the retention reconciliation (``accessd.privacy.retention``). From
``OPEN_REQUEST_REMINDER_DAYS`` before that day, every listing reminds staff of it
(``OpenRequest.reminder``): answer and close it, or it goes.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.config import OPEN_REQUEST_REMINDER_DAYS, RetentionPeriod
from accessd.errors import InvalidInputError, NotFoundError, SubjectRequestError
from accessd.inputs import parse_text
from accessd.models import (
    Customer,
    DataSubjectRequest,
    Person,
    RequestKind,
    RequestStatus,
    utcnow,
)

ANSWER_MONTHS = 1
MAX_MONTHS = 3
REQUESTER_NAME_MAX = 200  # the column's length


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus calendar ``months``, clamped to the month's last day (31 Jan + 1 = 28 Feb)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def due_on(request: DataSubjectRequest) -> dt.date:
    """The date the request must be answered by, extension included."""
    return request.extended_due_on or request.due_on


def open_request_ends(request: DataSubjectRequest, retention: RetentionPeriod) -> dt.date:
    """The day an open request is deleted: its receipt plus ``retention``
    (``retention.open_data_subject_requests``)."""
    ends = retention.end(request.received_on)
    if ends is None:  # refused by the config loader; a hand-built settings object may try
        raise ValueError("an open request's retention must be a period, not contract_end")
    return ends


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """An open request as listed: its effective due date, whether it is overdue, and the day
    it is deleted if it is never closed (``None``: no retention given to the listing)."""

    request: DataSubjectRequest
    due_on: dt.date
    overdue: bool
    days_left: int  # negative when overdue
    deleted_on: dt.date | None = None
    days_to_deletion: int | None = None

    @property
    def reminder(self) -> bool:
        """Whether staff are reminded that it is deleted soon unless it is closed."""
        return (self.days_to_deletion is not None
                and self.days_to_deletion <= OPEN_REQUEST_REMINDER_DAYS)


class Subject(NamedTuple):
    """A person a request is about, as lists name them."""

    public_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class RequestSubjects:
    """Whom listed requests are about: their persons and customers, by row id (a person or
    customer since erased or purged is absent: the request's link to it is gone too)."""

    persons: dict[int, Subject]
    customers: dict[int, str]


@dataclass(frozen=True, slots=True)
class RequestOverview:
    """The requests page: open requests (``open_requests``), the latest closed ones, and
    whom they are all about."""

    listed: list[OpenRequest]
    closed: list[DataSubjectRequest]
    subjects: RequestSubjects


def record_request(session: Session, kind: RequestKind, received_on: dt.date, *,
                   requester_name: str, person: Person | None = None,
                   customer: Customer | None = None, requester_contact: str | None = None,
                   handled_by: str | None = None) -> DataSubjectRequest:
    """Record a request as received; it is due one calendar month after ``received_on``.

    :raises SubjectRequestError: no requester named, or a person of another customer than given.
    """
    if not requester_name.strip():
        raise SubjectRequestError("name the requester (who asked): the answer goes to them")
    try:
        requester_name = parse_text("requester_name", requester_name, limit=REQUESTER_NAME_MAX,
                                    what="the requester's name")
    except InvalidInputError as exc:
        raise SubjectRequestError(exc.problem) from None
    if person is not None and customer is not None and person.customer_id != customer.id:
        raise SubjectRequestError(f"person {person.public_id} is not one of customer "
                           f"{customer.public_id}'s people; give one of the two")
    request = DataSubjectRequest(
        kind=kind, received_on=received_on, due_on=add_months(received_on, ANSWER_MONTHS),
        person_id=person.id if person else None,
        customer_id=person.customer_id if person else customer.id if customer else None,
        requester_name=requester_name, requester_contact=requester_contact,
        handled_by=handled_by, status=RequestStatus.OPEN)
    session.add(request)
    session.flush()
    return request


def extend_request(request: DataSubjectRequest, until: dt.date, reason: str, *,
                   today: dt.date) -> None:
    """Extend the deadline to ``until`` (at most three months after receipt), with a reason.

    Record it when the requester is told, which must be within the first month.

    :raises SubjectRequestError: closed, no reason, ``until`` not later than the current due date
        or beyond three months, or the first month has already passed.
    """
    if request.status != RequestStatus.OPEN:
        raise SubjectRequestError(f"{_this(request)} is closed; an extension no longer applies")
    if not reason.strip():
        raise SubjectRequestError("give the reason for the delay: the requester must be told why")
    limit = add_months(request.received_on, MAX_MONTHS)
    if until > limit:
        raise SubjectRequestError(
            f"{_this(request)} can be extended to {limit} at the latest (three months after it "
            "was received)")
    if until <= due_on(request):
        raise SubjectRequestError(f"{_this(request)} is already due on {due_on(request)}; an "
                                  "extension must move the date later")
    if today > request.due_on:
        raise SubjectRequestError(
            f"the first month of {_this(request)} ended on {request.due_on}: an extension had to "
            "be notified before then; answer it now")
    request.extended_due_on = until
    request.extension_reason = reason.strip()


def _this(request: DataSubjectRequest) -> str:
    # Staff know a request by its kind and the day it came in; its row id tells them nothing.
    return (f"the {request.kind.value.replace('_', ' ')} request received on "
            f"{request.received_on}")


def close_request(request: DataSubjectRequest, outcome: str, *, by: str | None = None,
                  now: dt.datetime | None = None) -> None:
    """Close a request with its outcome (what was done, or why it was refused).

    :raises SubjectRequestError: already closed, or no outcome given.
    """
    if request.status != RequestStatus.OPEN:
        raise SubjectRequestError(f"{_this(request)} was already closed on "
                                  f"{request.closed_at:%Y-%m-%d}")
    if not outcome.strip():
        raise SubjectRequestError(
            "describe the outcome (e.g. 'export sent on 2025-03-02', 'erased')")
    request.status = RequestStatus.CLOSED
    request.outcome = outcome.strip()
    request.closed_at = now or utcnow()
    if by:
        request.handled_by = by


def open_requests(session: Session, today: dt.date,
                  retention: RetentionPeriod | None = None) -> list[OpenRequest]:
    """Every open request, soonest due first, each marked overdue when ``today`` is past it,
    and, given the open requests' ``retention``, with the day it is deleted."""
    rows = session.scalars(select(DataSubjectRequest)
                           .where(DataSubjectRequest.status == RequestStatus.OPEN)).all()
    listed = []
    for r in rows:
        ends = None if retention is None else open_request_ends(r, retention)
        listed.append(OpenRequest(r, due_on(r), today > due_on(r), (due_on(r) - today).days,
                                  ends, None if ends is None else (ends - today).days))
    return sorted(listed, key=lambda item: (item.due_on, item.request.id))


def open_requests_about(session: Session, person: Person, today: dt.date) -> list[OpenRequest]:
    """The open requests about one person, soonest due first (for the person's page)."""
    rows = session.scalars(select(DataSubjectRequest).where(
        DataSubjectRequest.status == RequestStatus.OPEN,
        DataSubjectRequest.person_id == person.id)).all()
    listed = [OpenRequest(r, due_on(r), today > due_on(r), (due_on(r) - today).days)
              for r in rows]
    return sorted(listed, key=lambda item: (item.due_on, item.request.id))


def expired_open_requests(session: Session, today: dt.date,
                          retention: RetentionPeriod) -> list[int]:
    """The ids of the open requests whose retention has ended by ``today`` (a local day)."""
    return [item.request.id for item in open_requests(session, today, retention)
            if item.deleted_on is not None and item.deleted_on <= today]


def request_overview(session: Session, today: dt.date, *, closed: int = 0,
                     retention: RetentionPeriod | None = None) -> RequestOverview:
    """The open requests as ``open_requests`` lists them (with the day each is deleted, given
    the open requests' ``retention``), the ``closed`` most recently closed, and whom they are
    all about: ``accessd requests`` and the panel's requests page."""
    listed = open_requests(session, today, retention)
    latest = list(session.scalars(
        select(DataSubjectRequest).where(DataSubjectRequest.status == RequestStatus.CLOSED)
        .order_by(DataSubjectRequest.closed_at.desc()).limit(closed)).all()) if closed else []
    subjects = request_subjects(session, [item.request for item in listed] + latest)
    return RequestOverview(listed, latest, subjects)


def request_subjects(session: Session,
                     requests: Sequence[DataSubjectRequest]) -> RequestSubjects:
    """The persons and customers ``requests`` are about."""
    people = {r.person_id for r in requests if r.person_id}
    customers = {r.customer_id for r in requests if r.customer_id}
    persons = session.execute(select(Person.id, Person.public_id, Person.name)
                              .where(Person.id.in_(people)))
    companies = session.execute(select(Customer.id, Customer.name)
                                .where(Customer.id.in_(customers)))
    return RequestSubjects({pid: Subject(public_id, name) for pid, public_id, name in persons},
                           {cid: name for cid, name in companies})


def get_request(session: Session, request_id: int) -> DataSubjectRequest:
    """The request with this id (as ``accessd requests`` lists it).

    :raises NotFoundError: there is none.
    """
    request = session.get(DataSubjectRequest, request_id)
    if request is None:
        raise NotFoundError(f"no data-subject request {request_id}; `accessd requests` lists them")
    return request


def get_request_by_public_id(session: Session, public_id: uuid.UUID) -> DataSubjectRequest | None:
    """The request with this public id (the one the panel's links carry), if any."""
    return session.scalars(select(DataSubjectRequest)
                           .where(DataSubjectRequest.public_id == public_id)).first()
