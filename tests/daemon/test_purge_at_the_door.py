"""A contract that ended while the Pi was off: at the next start the customer is purged, its
people are refused at the door as strangers, the sensor forgets them, and the raw database
files hold nothing of them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from accessd.db import checkpoint_wal
from accessd.models import CommandState, Customer, Finger, PurgeRecord, PurgeStatus
from accessd.privacy.scheduler import PrivacyScheduler
from tests.daemon.conftest import Door, People, eventually


def raw_files(door: Door) -> bytes:
    database = Path(door.settings.database.url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def _completed(door: Door) -> PurgeRecord | None:
    with door.sessions() as session:
        record = session.scalars(select(PurgeRecord)).one_or_none()
        return record if record is not None and record.status is PurgeStatus.COMPLETED else None


def test_contract_ended_while_stopped_is_purged_at_next_start(door: Door,
                                                              people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    with door.sessions() as session:
        ciphertext = session.scalars(select(Finger.template_ciphertext)).one()
    door.stop()
    # The Pi is off across the due moment: the contract's last day was the day before
    # yesterday, in the site's time zone.
    with door.sessions.begin() as session:
        acme = session.get_one(Customer, people.acme)
        acme.contract_start = dt.date.today() - dt.timedelta(days=90)
        acme.contract_end = dt.date.today() - dt.timedelta(days=2)
    door.start()
    scheduler = PrivacyScheduler(door.settings, door.sessions, door.keys, door.engine,
                                 follow_up_seconds=0.2)
    scheduler.start()
    try:
        eventually(lambda: door.rig.sensor.template_count == 0, what="the sensor to forget")
        record = eventually(lambda: _completed(door), what="the purge to be certified")
        with door.sessions() as session:
            assert session.get(Customer, people.acme) is None
        assert isinstance(record, PurgeRecord) and "Acme" not in str(record.counts)
        before = door.last_event_id()
        door.present("alice-right-index")
        refused = door.wait_event("unknown_finger", after=before)
        assert refused.person_id is None and refused.customer_id is None
        assert door.rig.door.relay_locked
        door.lift()
    finally:
        scheduler.stop()
    door.stop()
    checkpoint_wal(door.engine)
    leftovers = raw_files(door)
    for canary in (b"Alice Jansen", b"Bob de Vries", b"Acme Hosting", ciphertext[:32]):
        assert canary not in leftovers, canary
