"""Data-subject requests: one calendar month to answer, at most three with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from accessd.errors import SubjectRequestError
from accessd.models import Customer, DataSubjectRequest, Person, RequestKind, RequestStatus
from accessd.rights.requests import (
    add_months,
    close_request,
    extend_request,
    open_requests,
    record_request,
)
from tests.rights.seed import World

D = dt.date


@pytest.mark.parametrize(("received", "due"), [
    (D(2025, 1, 31), D(2025, 2, 28)),
    (D(2024, 1, 31), D(2024, 2, 29)),  # leap year
    (D(2025, 3, 15), D(2025, 4, 15)),
    (D(2025, 8, 31), D(2025, 9, 30)),
    (D(2025, 12, 31), D(2026, 1, 31)),  # across the year
])
def test_a_request_is_due_one_calendar_month_after_receipt(
        received: dt.date, due: dt.date, world: World, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        request = record_request(session, RequestKind.ACCESS, received, requester_name="Ada",
                                 person=session.get_one(Person, world.ada.id))
        assert request.due_on == due
        assert request.customer_id == world.acme_id  # taken from the person


def test_months_add_up_on_the_calendar() -> None:
    assert add_months(D(2025, 1, 31), 3) == D(2025, 4, 30)
    assert add_months(D(2025, 11, 30), 3) == D(2026, 2, 28)


def _request(session: Session, world: World, received: dt.date) -> DataSubjectRequest:
    return record_request(session, RequestKind.ERASURE, received, requester_name="Acme HR",
                          customer=session.get_one(Customer, world.acme_id))


@pytest.mark.parametrize(("until", "reason", "today", "error"), [
    (D(2025, 4, 30), "many systems to search", D(2025, 2, 20), None),  # the three-month limit
    (D(2025, 3, 31), "many systems to search", D(2025, 2, 28), None),  # on the last day
    (D(2025, 5, 1), "many systems to search", D(2025, 2, 20), "at the latest"),
    (D(2025, 2, 28), "many systems to search", D(2025, 2, 20), "later"),
    (D(2025, 2, 10), "many systems to search", D(2025, 2, 1), "later"),
    (D(2025, 4, 30), "   ", D(2025, 2, 20), "reason"),
    (D(2025, 4, 30), "many systems to search", D(2025, 3, 1), "first month"),
])
def test_extension_rules(until: dt.date, reason: str, today: dt.date, error: str | None,
                         world: World, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        request = _request(session, world, D(2025, 1, 31))
        if error is None:
            extend_request(request, until, reason, today=today)
            assert request.extended_due_on == until and request.extension_reason == reason
        else:
            with pytest.raises(SubjectRequestError, match=error):
                extend_request(request, until, reason, today=today)
            assert request.extended_due_on is None


def test_a_closed_request_cannot_be_extended_or_closed_again(
        world: World, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        request = _request(session, world, D(2025, 1, 10))
        with pytest.raises(SubjectRequestError, match="outcome"):
            close_request(request, " ")
        close_request(request, "export sent", by="operator1")
        assert request.status == RequestStatus.CLOSED and request.handled_by == "operator1"
        with pytest.raises(SubjectRequestError, match="already closed"):
            close_request(request, "again")
        with pytest.raises(SubjectRequestError, match="closed"):
            extend_request(request, D(2025, 3, 1), "late", today=D(2025, 1, 20))


def test_open_requests_are_listed_soonest_first_with_overdue_derived_from_dates(
        world: World, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        late = _request(session, world, D(2025, 1, 5))           # due 2025-02-05
        extended = _request(session, world, D(2025, 1, 20))      # due 2025-02-20 -> 04-20
        extend_request(extended, D(2025, 4, 20), "complex", today=D(2025, 2, 1))
        fresh = _request(session, world, D(2025, 2, 10))         # due 2025-03-10
        closed = _request(session, world, D(2025, 1, 1))
        close_request(closed, "answered")
        ids = late.id, extended.id, fresh.id

    with sessions() as session:
        listed = open_requests(session, D(2025, 3, 1))

    assert [item.request.id for item in listed] == [ids[0], ids[2], ids[1]]
    assert [item.overdue for item in listed] == [True, False, False]
    assert [item.days_left for item in listed] == [-24, 9, 50]
    with sessions() as session:
        assert [item.overdue for item in open_requests(session, D(2025, 2, 5))] == \
            [False, False, False]  # due on the 5th means answered by the end of the 5th


def test_a_request_names_its_requester_and_one_customer(
        world: World, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        with pytest.raises(SubjectRequestError, match="requester"):
            record_request(session, RequestKind.ACCESS, D(2025, 1, 1), requester_name=" ",
                           person=session.get_one(Person, world.ada.id))
        with pytest.raises(SubjectRequestError, match="not one of"):
            record_request(session, RequestKind.ACCESS, D(2025, 1, 1), requester_name="X",
                           person=session.get_one(Person, world.ada.id),
                           customer=session.get_one(Customer, world.globex_id))
