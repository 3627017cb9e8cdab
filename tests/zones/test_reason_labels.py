"""Every reason the door can give reads in plain words in the panel; the events keep the code."""

from __future__ import annotations

from accessd.door.decision import Reason
from accessd.history.query import reason_label
from accessd.labels import REASONS


def test_every_reason_of_the_decision_has_words() -> None:
    assert {r.value for r in Reason} <= set(REASONS)
    assert reason_label("outside_schedule") == "outside the grant's schedule"
    assert reason_label("grant_expired") == "the grant has expired"


def test_a_reason_staff_typed_reads_as_they_typed_it() -> None:
    assert reason_label("escorted visitor, ticket 4711") == "escorted visitor, ticket 4711"
    assert reason_label(None) == ""
