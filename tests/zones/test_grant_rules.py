"""The decision names the rule that refused: zone not granted, outside the schedule, a
holiday, a grant not yet valid or expired; a person's own grants narrow the customer's."""

from __future__ import annotations

import datetime as dt

import pytest

from accessd.door.decision import (
    Access,
    CustomerView,
    GrantView,
    PersonView,
    Reason,
    check_grants,
    decide,
)

MON_NOON = dt.datetime(2026, 11, 23, 12, 0)
SAT_NOON = MON_NOON + dt.timedelta(days=5)
OFFICE = "mon-fri 07:00-19:00"
CUSTOMER = CustomerView(1, dt.date(2026, 1, 1), None)
ALICE = PersonView(10, 1, active=True, restricted=False)


def cust(depth: int = 0, **kw: object) -> GrantView:
    return GrantView(depth, False, **kw)  # type: ignore[arg-type]


def own(depth: int = 0, **kw: object) -> GrantView:
    return GrantView(depth, True, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("access", "local", "reason"), [
    (Access((cust(),)), SAT_NOON, None),  # the default grant: 24/7
    (Access(()), MON_NOON, Reason.ZONE_NOT_GRANTED),
    (Access((cust(schedule=OFFICE),)), MON_NOON, None),
    (Access((cust(schedule=OFFICE),)), SAT_NOON, Reason.OUTSIDE_SCHEDULE),
    (Access((cust(closed_on_holidays=True),), holiday=True), MON_NOON, Reason.HOLIDAY),
    (Access((cust(),), holiday=True), MON_NOON, None),  # a grant open on holidays
    (Access((cust(valid_from=dt.date(2026, 11, 24)),)), MON_NOON, Reason.GRANT_NOT_YET_VALID),
    (Access((cust(valid_until=dt.date(2026, 11, 22)),)), MON_NOON, Reason.GRANT_EXPIRED),
    (Access((cust(valid_from=dt.date(2026, 11, 23), valid_until=dt.date(2026, 11, 23)),)),
     MON_NOON, None),  # both days included
    # One open grant is enough: the hall around the cage is granted 24/7.
    (Access((cust(0, schedule=OFFICE), cust(1))), SAT_NOON, None),
    # All refuse: the reason is that of the grant nearest the door.
    (Access((cust(1, valid_until=dt.date(2026, 1, 1)), cust(0, schedule=OFFICE))), SAT_NOON,
     Reason.OUTSIDE_SCHEDULE),
    # A person with grants of their own gets only those...
    (Access((cust(),), person_limited=True), MON_NOON, Reason.ZONE_NOT_GRANTED),
    (Access((cust(), own(schedule=OFFICE)), person_limited=True), SAT_NOON,
     Reason.OUTSIDE_SCHEDULE),
    (Access((cust(), own()), person_limited=True), SAT_NOON, None),
    # ...and never more than the customer's.
    (Access((cust(schedule=OFFICE), own()), person_limited=True), SAT_NOON,
     Reason.OUTSIDE_SCHEDULE),
    (Access((own(),), person_limited=True), MON_NOON, Reason.ZONE_NOT_GRANTED),
])
def test_grants_decide_with_the_rule_that_refused(access: Access, local: dt.datetime,
                                                  reason: Reason | None) -> None:
    assert check_grants(access, local) is reason
    decision = decide(CUSTOMER, ALICE, 1, local.date(), access=access, local=local)
    assert decision.allowed is (reason is None)
    assert decision.reason is (reason or Reason.ALLOWED)


def test_an_ended_contract_is_named_before_the_grants() -> None:
    ended = CustomerView(1, dt.date(2026, 1, 1), dt.date(2026, 6, 30))
    decision = decide(ended, ALICE, 1, MON_NOON.date(), access=Access(()), local=MON_NOON)
    assert decision.reason is Reason.CONTRACT_ENDED
