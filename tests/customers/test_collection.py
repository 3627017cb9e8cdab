"""No personal data collected where it cannot be used: once a customer's contract is over, no
person is added and no finger enrolled, by the services, the command line and the daemon
alike, and the refusal says why and what would cure it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.clock import SiteClock
from accessd.crypto import FileKeyProvider
from accessd.customers.collection import collection_refusal
from accessd.customers.contracts import ContractState, contract_status
from accessd.customers.people import add_person
from accessd.errors import ContractOverError, EnrollmentError
from accessd.fingers.enrolment import EnrollmentPlan, check_may_enrol, early_refusal, enrol
from accessd.models import Consent, DeviceCommand, FingerLabel, Person
from tests.customers import seed
from tests.customers.conftest import cli

ZONE = ZoneInfo("Europe/Amsterdam")
LAST_DAY = dt.date(2026, 6, 30)


def at(day: dt.date, hour: int = 12) -> SiteClock:
    """The site's clock at ``hour`` o'clock local time on ``day``."""
    moment = dt.datetime.combine(day, dt.time(hour), tzinfo=ZONE).astimezone(dt.UTC)
    return SiteClock(ZONE, lambda: moment)


@pytest.mark.parametrize(("day", "state", "refused"), [
    (dt.date(2024, 12, 1), ContractState.NOT_STARTED, False),  # people enrol before day one
    (LAST_DAY, ContractState.ACTIVE, False),  # the last day still counts
    (LAST_DAY + dt.timedelta(days=1), ContractState.ENDED, True),  # grace: door refuses
    (LAST_DAY + dt.timedelta(days=15), ContractState.PURGE_DUE, True),  # purge pending
])
def test_nobody_is_added_to_a_customer_whose_contract_is_over(
        session: Session, day: dt.date, state: ContractState, refused: bool) -> None:
    acme = seed.customer(session, end=LAST_DAY, grace_days=14)
    clock = at(day)
    assert contract_status(acme, clock).state is state
    if not refused:
        assert add_person(session, acme, "Ada Lovelace", clock=clock).id is not None
        assert collection_refusal(acme, clock.today()) is None
        return
    with pytest.raises(ContractOverError) as caught:
        add_person(session, acme, "Ada Lovelace", clock=clock)
    message = str(caught.value)
    assert "ended on 2026-06-30" in message and "purged on 2026-07-15" in message
    assert "accessd customer end" in message  # what would cure it
    assert session.scalar(select(func.count()).select_from(Person)) == 0


def test_no_finger_is_enrolled_for_a_customer_whose_contract_is_over(session: Session) -> None:
    acme = seed.customer(session, end=LAST_DAY)
    ada = seed.person(session, acme)
    session.add(Consent(person=ada, customer_id=acme.id, text_version="1", witnessed_by="x"))
    session.flush()
    check_may_enrol(session, ada, FingerLabel.RIGHT_INDEX, 2, today=LAST_DAY)
    after = LAST_DAY + dt.timedelta(days=1)
    with pytest.raises(EnrollmentError, match="ended on 2026-06-30"):
        check_may_enrol(session, ada, FingerLabel.RIGHT_INDEX, 2, today=after)
    early = early_refusal(session, ada, 2, today=after)
    assert early is not None and "no finger enrolled" in str(early)


def test_the_daemon_refuses_before_any_capture_once_the_contract_is_over(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions.begin() as session:
        acme = seed.customer(session, end=LAST_DAY)
        ada = seed.person(session, acme)
        session.add(Consent(person=ada, customer_id=acme.id, text_version="1",
                            witnessed_by="x"))
        person_id = ada.id

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the sensor was used ({name}) for a refused enrolment")

    keys = FileKeyProvider.create(tmp_path / "keyring.json")
    plan = EnrollmentPlan(person_id=person_id, label=FingerLabel.RIGHT_INDEX)
    with pytest.raises(EnrollmentError, match="ended on 2026-06-30"):
        enrol(cast(Any, Untouchable()), sessions, keys, 1, plan, print, max_fingers=2,
              today=lambda: LAST_DAY + dt.timedelta(days=1))


def test_the_command_line_refuses_person_add_and_enroll_with_the_reason(
        config_file: Path, capsys: pytest.CaptureFixture[str],
        sessions: sessionmaker[Session]) -> None:
    now = [dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)]
    accessd = cli(config_file, capsys, wall=lambda: now[0])
    assert accessd("customer", "add", "Acme", "--start", "2026-01-01", "--end", "2026-06-30",
                   "--grace-days", "30", "--lawful-basis", "necessity", "--necessity-ref",
                   "DPIA-1").code == 0
    assert accessd("person", "add", "Acme", "Ada Lovelace").code == 0

    now[0] = dt.datetime(2026, 7, 2, 10, tzinfo=dt.UTC)  # ended; purge due on 2026-07-31
    added = accessd("person", "add", "Acme", "Bob Byte")
    assert added.code == 1
    assert "ended on 2026-06-30" in added.err and "purged on 2026-07-31" in added.err
    enrolled = accessd("enroll", "Ada Lovelace", "--finger", "right_index", "--no-wait")
    assert enrolled.code == 1 and "ended on 2026-06-30" in enrolled.err
    with sessions() as session:
        assert session.scalars(select(Person.name)).all() == ["Ada Lovelace"]
        assert session.scalars(select(DeviceCommand)).all() == []  # nothing queued
