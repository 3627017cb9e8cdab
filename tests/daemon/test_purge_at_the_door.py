"""A contract that ended while the Pi was off: at the next start the customer is purged, its
people are refused at the door as strangers, the sensor forgets them, and the raw database
files hold nothing of them. The purge is certified only once the door confirmed its sensor."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from accessd.cli.main import main as accessd_main
from accessd.db import checkpoint_wal
from accessd.models import (
    CommandKind,
    CommandState,
    Customer,
    DeviceCommand,
    Finger,
    PurgeRecord,
    PurgeStatus,
)
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


def test_a_purge_is_certified_only_once_the_door_confirmed_its_sensor_dropped_the_template(
        door: Door, people: People, capsys: pytest.CaptureFixture[str]) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    door.stop()
    with door.sessions.begin() as session:
        acme = session.get_one(Customer, people.acme)
        acme.contract_start = dt.date.today() - dt.timedelta(days=90)
        acme.contract_end = dt.date.today() - dt.timedelta(days=2)
        reference = acme.reference
    config = ["--config", str(door.config)]
    certificates = door.settings.data_dir / "purge-certificates"

    # The daemon is stopped: the database forgets the customer, the sensor cannot yet.
    assert accessd_main([*config, "purge", "--now"]) == 0
    out = capsys.readouterr().out
    assert "awaiting doors" in out and f"{door.settings.door.name} (resync pending since" in out
    with door.sessions() as session:
        record = session.scalars(select(PurgeRecord)).one()
        assert record.status is PurgeStatus.AWAITING_DOORS and record.certificate is None
    assert door.rig.sensor.template_count == 1  # the template is still on the sensor
    assert not certificates.exists()
    assert accessd_main([*config, "purge", "--now"]) == 0  # asking again changes nothing
    assert door.rig.sensor.template_count == 1 and not certificates.exists()
    capsys.readouterr()

    door.start()  # the daemon takes the resync the purge asked for
    eventually(lambda: door.rig.sensor.template_count == 0, what="the sensor to forget")
    with door.sessions() as session:
        resync = session.scalars(select(DeviceCommand).where(
            DeviceCommand.kind == CommandKind.RESYNC).order_by(DeviceCommand.id.desc())).first()
        assert resync is not None
        resync_id = resync.id
    eventually(lambda: _finished(door, resync_id), what="the door to confirm its resync")
    assert accessd_main([*config, "purge", "--now"]) == 0
    assert "completed" in capsys.readouterr().out
    [certificate] = certificates.iterdir()
    sensors = json.loads(certificate.read_text())["certificate"]["destroyed"]["sensors"]
    with door.sessions() as session:
        finished = session.get_one(DeviceCommand, resync_id).finished_at
    assert finished is not None
    [sensor] = sensors
    assert sensor["door"] == door.settings.door.name
    assert sensor["confirmed_at"] == finished.isoformat().replace("+00:00", "Z")
    # The daemon's own start-up reconciliation may have wiped the slot before it took the
    # purge's resync: either way that resync found the sensor in step.
    assert sensor["slots_wiped"] in (0, 1)
    assert accessd_main([*config, "verify-certificate", str(certificate),
                         "--customer-reference", str(reference)]) == 0
    assert accessd_main([*config, "verify-log"]) == 0


def _finished(door: Door, command_id: int) -> bool:
    with door.sessions() as session:
        return session.get_one(DeviceCommand, command_id).state is CommandState.DONE
