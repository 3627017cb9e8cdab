"""Customers: contracts, lawful basis, and when their data is due for purge."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from accessd.clock import SiteClock
from accessd.config import PurgeSettings, Settings
from accessd.customers.contracts import (
    ContractState,
    add_customer,
    contract_status,
    end_contract,
    get_customer,
    list_customers,
    parse_date,
    preview_end_contract,
    set_lawful_basis,
)
from accessd.errors import InvalidInputError, NotFoundError
from accessd.models import Customer, EventKind, LawfulBasis
from tests.customers import seed

NOW = dt.datetime(2025, 6, 15, 10, 0, tzinfo=dt.UTC)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
JAN1 = dt.date(2025, 1, 1)


def test_a_new_customer_gets_the_sites_default_grace_period(session: Session) -> None:
    site = dataclasses.replace(Settings(), purge=PurgeSettings(grace_days=14))
    customer = add_customer(session, "  Acme   Hosting ", JAN1, settings=site, now=NOW)
    assert (customer.name, customer.grace_days, customer.lawful_basis) == (
        "Acme Hosting", 14, None)
    assert customer.id is not None and customer.public_id is not None


def test_a_customer_may_be_added_on_necessity_with_its_assessment(
    session: Session, settings: Settings
) -> None:
    customer = add_customer(session, "Bank", JAN1, dt.date(2026, 12, 31), settings=settings,
                            grace_days=90, lawful_basis="necessity",
                            necessity_reference="DPIA 2025-03, section 4", now=NOW)
    assert customer.lawful_basis is LawfulBasis.NECESSITY
    assert customer.necessity_reference == "DPIA 2025-03, section 4"


@pytest.mark.parametrize(
    ("kwargs", "field", "says"),
    [
        ({"grace_days": 91}, "grace_days", "0 to 90"),
        ({"grace_days": -1}, "grace_days", "0 to 90"),
        ({"contract_end": dt.date(2024, 12, 31)}, "contract_end", "before the contract start"),
        ({"lawful_basis": "necessity"}, "necessity_reference", "assessment"),
        ({"lawful_basis": "necessity", "necessity_reference": "   "}, "necessity_reference",
         "assessment"),
        ({"lawful_basis": "consent", "necessity_reference": "DPIA-1"}, "necessity_reference",
         "only applies"),
        ({"necessity_reference": "DPIA-1"}, "necessity_reference", "only applies"),
        ({"lawful_basis": "contract"}, "lawful_basis", "consent or necessity"),
        ({"name": "   "}, "name", "must not be empty"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"name": "ACME hosting"}, "name", "already exists"),
        # Ended 2025-05-31, 14 days of grace: due 2025-06-15 00:00, before NOW.
        ({"contract_end": dt.date(2025, 5, 31), "grace_days": 14}, "contract_end", "has passed"),
    ],
)
def test_invalid_customers_are_refused_naming_the_field(
    session: Session, settings: Settings, kwargs: dict[str, Any], field: str, says: str
) -> None:
    seed.customer(session, "Acme Hosting")
    values: dict[str, Any] = {"name": "Beta", "contract_start": JAN1, **kwargs}
    with pytest.raises(InvalidInputError) as caught:
        add_customer(session, values.pop("name"), values.pop("contract_start"),
                     settings=settings, now=NOW, **values)
    assert caught.value.field == field
    assert says in caught.value.problem


@pytest.mark.parametrize("text", ["2025-13-01", "31-12-2025", "20250101", "tomorrow", ""])
def test_dates_must_be_iso_days(text: str) -> None:
    with pytest.raises(InvalidInputError, match="YYYY-MM-DD") as caught:
        parse_date("last_day", text)
    assert caught.value.field == "last_day"


@pytest.mark.parametrize(
    ("end", "grace", "now", "state", "purge_on", "days"),
    [
        (None, 0, NOW, ContractState.ACTIVE, None, None),
        # 2025-06-30 is the last day; its local midnight is 22:00 UTC (summer time).
        (dt.date(2025, 6, 30), 0, dt.datetime(2025, 6, 30, 21, 59, tzinfo=dt.UTC),
         ContractState.ACTIVE, dt.date(2025, 7, 1), 1),
        (dt.date(2025, 6, 30), 0, dt.datetime(2025, 6, 30, 22, 0, tzinfo=dt.UTC),
         ContractState.PURGE_DUE, dt.date(2025, 7, 1), 0),
        (dt.date(2025, 6, 30), 30, dt.datetime(2025, 7, 1, 8, 0, tzinfo=dt.UTC),
         ContractState.ENDED, dt.date(2025, 7, 31), 30),
        (dt.date(2025, 6, 30), 30, dt.datetime(2025, 7, 30, 22, 0, tzinfo=dt.UTC),
         ContractState.PURGE_DUE, dt.date(2025, 7, 31), 0),
        # Winter time: the last day 2025-03-29 ends at 23:00 UTC, just before the DST switch.
        (dt.date(2025, 3, 29), 0, dt.datetime(2025, 3, 29, 22, 59, tzinfo=dt.UTC),
         ContractState.ACTIVE, dt.date(2025, 3, 30), 1),
        (dt.date(2025, 3, 29), 0, dt.datetime(2025, 3, 29, 23, 0, tzinfo=dt.UTC),
         ContractState.PURGE_DUE, dt.date(2025, 3, 30), 0),
    ],
)
def test_contract_state_and_purge_date_follow_the_sites_midnight(
    end: dt.date | None, grace: int, now: dt.datetime, state: ContractState,
    purge_on: dt.date | None, days: int | None,
) -> None:
    customer = Customer(name="Acme", contract_start=JAN1, contract_end=end, grace_days=grace)
    status = contract_status(customer, SiteClock(AMSTERDAM, lambda: now))
    assert (status.state, status.purge_on, status.days_to_purge) == (state, purge_on, days)


def test_a_contract_that_has_not_started_says_so() -> None:
    customer = Customer(name="Acme", contract_start=dt.date(2025, 7, 1), contract_end=None,
                        grace_days=0)
    status = contract_status(customer, SiteClock(AMSTERDAM, lambda: NOW))
    assert status.state is ContractState.NOT_STARTED
    assert status.describe() == "not started (no end date)"


def test_the_state_text_counts_the_days_left_until_the_purge() -> None:
    customer = Customer(name="Acme", contract_start=JAN1, contract_end=dt.date(2025, 6, 30),
                        grace_days=10)
    assert contract_status(customer, SiteClock(AMSTERDAM, lambda: NOW)).describe() == (
        "active; purge due on 2025-07-11 (26 days left)")


def test_customers_are_listed_by_name_with_their_state_and_people(
    session: Session, settings: Settings
) -> None:
    ended = seed.customer(session, "Beta", end=dt.date(2025, 6, 1), grace_days=30)
    acme = seed.customer(session, "Acme")
    seed.person(session, acme)
    seed.person(session, acme, "Bob")
    listed = list_customers(session, SiteClock.of(settings, wall=lambda: NOW))
    assert [(s.customer.name, s.persons, s.status.state) for s in listed] == [
        ("Acme", 2, ContractState.ACTIVE), ("Beta", 0, ContractState.ENDED)]
    assert listed[1].status.purge_on == dt.date(2025, 7, 2)  # 1 June + 30 days, then midnight
    assert ended.contract_end == dt.date(2025, 6, 1)


@pytest.mark.parametrize("ref", ["{id}", "{public_id}", "{public_hex}", "acme HOSTING",
                                 " Acme Hosting "])
def test_a_customer_is_found_by_id_public_id_or_exact_name(session: Session, ref: str) -> None:
    acme = seed.customer(session, "Acme Hosting")
    seed.customer(session, "Other")
    text = ref.format(id=acme.id, public_id=acme.public_id, public_hex=acme.public_id.hex)
    assert get_customer(session, text) is acme


@pytest.mark.parametrize(
    ("ref", "suggested"),
    [("Acme Hostng", ("Acme Hosting",)), ("acme", ("Acme Hosting",)), ("Zeta", ())],
)
def test_an_unknown_customer_is_refused_with_close_names(
    session: Session, ref: str, suggested: tuple[str, ...]
) -> None:
    seed.customer(session, "Acme Hosting")
    seed.customer(session, "Beta Colo")
    with pytest.raises(NotFoundError, match=f"no customer '{ref}'") as caught:
        get_customer(session, ref)
    assert caught.value.suggestions == suggested
    if suggested:
        assert "did you mean 'Acme Hosting'?" in str(caught.value)
    else:
        assert "accessd customer list" in str(caught.value)


def test_ending_a_contract_says_what_will_be_purged_and_when(
    session: Session, settings: Settings
) -> None:
    acme = seed.customer(session, "Acme", grace_days=30)
    other = seed.customer(session, "Other")
    ada, bob = seed.person(session, acme), seed.person(session, acme, "Bob")
    seed.finger(session, ada)
    seed.finger(session, ada)
    seed.finger(session, bob)
    seed.consent(session, ada)
    seed.event(session, EventKind.GRANTED, NOW, who=ada)
    seed.event(session, EventKind.DENIED, NOW, who=bob)
    seed.event(session, EventKind.GRANTED, NOW, who=seed.person(session, other, "Eve"))
    seed.event(session, EventKind.UNKNOWN_FINGER, NOW)

    plan = end_contract(session, acme, dt.date(2025, 6, 30), settings=settings)

    assert acme.contract_end == dt.date(2025, 6, 30)
    assert (plan.persons, plan.fingers, plan.consents, plan.events) == (2, 3, 1, 2)
    assert plan.purge_on == dt.date(2025, 7, 31)
    assert plan.purge_at == dt.datetime(2025, 7, 30, 22, 0, tzinfo=dt.UTC)


def test_previewing_the_end_of_a_contract_changes_nothing(
    session: Session, settings: Settings
) -> None:
    acme = seed.customer(session, "Acme")
    plan = preview_end_contract(session, acme, dt.date(2025, 6, 30), settings=settings)
    assert plan.last_day == dt.date(2025, 6, 30)
    assert acme.contract_end is None
    assert not session.dirty


@pytest.mark.parametrize(("last_day", "already_due", "runs_by"), [
    # due 2025-07-01 00:00 Amsterdam (22:00 UTC the day before): the check after it, within 1 h
    (dt.date(2025, 6, 30), False, dt.datetime(2025, 6, 30, 23, 0, tzinfo=dt.UTC)),
    # due 2025-06-01 00:00, long past: the next check, within an hour of now
    (dt.date(2025, 5, 31), True, NOW + dt.timedelta(hours=1)),
    # due 2025-06-15 00:00 local, passed 10 hours ago
    (dt.date(2025, 6, 14), True, NOW + dt.timedelta(hours=1)),
])
def test_the_preview_says_when_the_purge_check_really_runs_it(
    session: Session, settings: Settings, last_day: dt.date, already_due: bool,
    runs_by: dt.datetime,
) -> None:
    plan = preview_end_contract(session, seed.customer(session, "Acme"), last_day,
                                settings=settings, now=NOW)
    assert (plan.already_due, plan.runs_by, plan.check_minutes) == (already_due, runs_by, 60)


def test_a_contract_cannot_end_before_it_started(session: Session, settings: Settings) -> None:
    acme = seed.customer(session, "Acme", start=dt.date(2025, 3, 1))
    with pytest.raises(InvalidInputError, match="before the contract start") as caught:
        end_contract(session, acme, dt.date(2025, 2, 28), settings=settings)
    assert caught.value.field == "last_day"
    assert acme.contract_end is None


def test_a_contract_can_be_extended_by_ending_it_later(
    session: Session, settings: Settings
) -> None:
    acme = seed.customer(session, "Acme", end=dt.date(2025, 6, 30))
    end_contract(session, acme, dt.date(2025, 12, 31), settings=settings)
    status = contract_status(acme, SiteClock(AMSTERDAM, lambda: NOW))
    assert status.purge_on == dt.date(2026, 1, 1)


def test_necessity_as_lawful_basis_needs_the_reference_to_its_assessment(
    session: Session,
) -> None:
    acme = seed.customer(session, "Acme", basis=None)
    with pytest.raises(InvalidInputError, match="assessment") as caught:
        set_lawful_basis(session, acme, LawfulBasis.NECESSITY)
    assert caught.value.field == "necessity_reference"
    assert acme.lawful_basis is None
    set_lawful_basis(session, acme, "necessity", "DPIA-2025-03")
    assert (acme.lawful_basis, acme.necessity_reference) == (LawfulBasis.NECESSITY,
                                                             "DPIA-2025-03")


def test_switching_to_consent_names_the_enrolled_people_without_consent(
    session: Session,
) -> None:
    acme = seed.customer(session, "Acme", basis=LawfulBasis.NECESSITY)
    ada, bob, eve = (seed.person(session, acme, n) for n in ("Ada", "Bob", "Eve"))
    seed.finger(session, ada)
    seed.finger(session, bob)
    seed.consent(session, bob)
    seed.consent(session, ada, withdrawn=True)  # withdrawn: counts as none
    lacking = set_lawful_basis(session, acme, LawfulBasis.CONSENT)
    assert lacking == [ada]  # Bob consented; Eve has no finger
    assert acme.necessity_reference is None
    assert eve not in lacking
