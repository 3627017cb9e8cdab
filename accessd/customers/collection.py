"""No personal data collected where it cannot be used: the one rule for adding a customer's
people and enrolling their fingers.

From the day after its contract's last day (at the site), a customer's people are refused at
every door, through the grace period and until the purge; a person added or a finger enrolled
then could only be stored, never used, and would be destroyed unused at the purge. So both are
refused, with the reason and what would cure it (extending the contract). A contract that has
not started yet is no reason to refuse: people are enrolled before their first day.

There is no restriction of a whole customer (GDPR art. 18 applies to a person: a restricted
person cannot enrol, ``accessd.fingers.enrolment.check_may_enrol``).

Kept apart from ``contracts`` (like ``consent``) so the door's enrolment can ask it without
importing the back office: ``contracts`` imports the purge's date rule.
"""

from __future__ import annotations

import datetime as dt

from accessd.errors import ContractOverError
from accessd.models import Customer


def contract_over(customer: Customer, today: dt.date) -> bool:
    """Whether the customer's contract has ended by ``today`` (a local day at the site): its
    last day has passed, so the door refuses its people (``ContractState.ENDED`` or
    ``PURGE_DUE``)."""
    return customer.contract_end is not None and today > customer.contract_end


def collection_refusal(customer: Customer, today: dt.date) -> ContractOverError | None:
    """Why nothing more may be collected about the customer's people ``today``, or ``None``."""
    if not contract_over(customer, today):
        return None
    assert customer.contract_end is not None
    purge_on = customer.contract_end + dt.timedelta(days=customer.grace_days + 1)
    return ContractOverError(
        f"the contract of {customer.name!r} ended on {customer.contract_end} (its data is "
        f"purged on {purge_on}): the door refuses its people, so no person is added and no "
        "finger enrolled for it; if the contract goes on, record its new last day first "
        f"(`accessd customer end {customer.id} --last-day DATE`)")


def refuse_collection(customer: Customer, today: dt.date) -> None:
    """Refuse collecting anything more about the customer's people when its contract is over.

    :raises ContractOverError: with the reason and what would cure it.
    """
    refusal = collection_refusal(customer, today)
    if refusal is not None:
        raise refusal
