"""The sensor sits outside the door: one swapped for another is refused (no fingerprint opens
the door, an alarm says what to do) until staff approve it; then it is refilled and used."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from accessd.cli.main import main as accessd_main
from accessd.models import Alarm, AlarmKind, AuditRecord, CommandState
from accessd.models import Door as DoorRow
from hardware_sim.sensor import SimulatedSensor
from tests.daemon.conftest import Door, People, eventually


def swap_sensor(door: Door, *, capacity: int = 100, password: int | None = None) -> None:
    """Someone unplugs the reader's sensor and plugs in another (same port)."""
    door.rig.sensor.stop()
    new = SimulatedSensor(link=door.rig.directory / "sensor", capacity=capacity,
                          password=door.keys.sensor_password() if password is None else password)
    new.start()
    door.rig.sensor = new


def door_row(door: Door) -> DoorRow:
    with door.sessions() as session:
        row = session.scalars(select(DoorRow)).one()
        session.expunge(row)
        return row


def swapped_alarm(door: Door) -> Alarm | None:
    with door.sessions() as session:
        return session.scalars(select(Alarm).where(
            Alarm.kind == AlarmKind.SENSOR_SWAPPED, Alarm.cleared_at.is_(None))).first()


@pytest.mark.parametrize(("capacity", "password", "why"), [
    (200, None, "capacity=200 security_level=3"),  # another model, our password
    (100, 0, "factory password"),  # a new sensor from the shelf
])
def test_a_swapped_sensor_is_refused_until_staff_approve_it(
        door: Door, people: People, capsys: pytest.CaptureFixture[str], capacity: int,
        password: int | None, why: str) -> None:
    door.start()
    assert door_row(door).sensor_identity is not None  # the first sensor, adopted as found
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE

    swap_sensor(door, capacity=capacity, password=password)
    alarm = eventually(lambda: swapped_alarm(door), what="the swapped-sensor alarm")
    assert why in (alarm.detail or "")  # type: ignore[union-attr]
    assert "accessd sensor approve --door main" in (alarm.detail or "")  # type: ignore[union-attr]
    assert door.daemon is not None and not door.daemon.sensor_health.connected
    before = door.last_event_id()
    door.present("alice-right-index")
    assert door.rig.sensor.template_count == 0  # never refilled, never searched
    assert not [e for e in door.events() if e.id > before and e.kind == "granted"]
    door.rig.sensor.lift()

    capsys.readouterr()
    assert accessd_main(["--config", str(door.config), "sensor", "approve", "--by", "sam"]) == 0
    assert "sensor approved" in capsys.readouterr().out
    door.wait_event("sensor_approved", after=before)
    eventually(lambda: door.rig.sensor.template_count == 1, what="the new sensor refilled")
    assert swapped_alarm(door) is None
    assert door_row(door).sensor_refused is None
    before = door.last_event_id()
    door.present("alice-right-index")
    door.wait_event("granted", after=before)
    with door.sessions() as session:
        audit = session.scalars(select(AuditRecord).where(
            AuditRecord.action == "door.approve_sensor")).one()
        assert audit.outcome.value == "success"


def test_approving_when_nothing_was_refused_says_so(
        door: Door, capsys: pytest.CaptureFixture[str]) -> None:
    door.start()
    assert accessd_main(["--config", str(door.config), "sensor", "approve"]) != 0
    assert "refused no sensor" in capsys.readouterr().err


def test_the_same_sensor_plugged_back_is_used_without_approval(door: Door,
                                                               people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    door.rig.sensor.port.unplug()
    eventually(lambda: door.daemon is not None and not door.daemon.sensor_health.connected,
               what="the daemon to see the sensor gone")
    door.rig.sensor.port.replug()
    door.wait_event("recovered")
    before = door.last_event_id()
    door.present("alice-right-index")
    door.wait_event("granted", after=before)
    assert swapped_alarm(door) is None
