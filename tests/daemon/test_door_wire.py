"""Someone on the door board's cable, with the whole daemon running: the relay never moves for a
frame the installation did not seal, and an alarm tells staff what to look at. An LCUS relay,
which cannot authenticate anything, is refused unless the site accepted that in its config."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest
from sqlalchemy import select

from accessd.cli.main import main as accessd_main
from accessd.door.daemon import Daemon
from accessd.models import Alarm, AlarmKind, CommandState
from firmware_bridge.doorboard import SerialDoorBoard
from firmware_bridge.firmware import doorlink
from firmware_bridge.zfm_sensor import ZfmSensor
from tests.daemon.conftest import Door, People, eventually, unlocked_since
from tests.installation import set_config


def wire_alarm(door: Door) -> Alarm:
    def found() -> Alarm | None:
        with door.sessions() as session:
            return session.scalars(select(Alarm).where(
                Alarm.kind == AlarmKind.DOOR_WIRE, Alarm.cleared_at.is_(None))).first()
    return eventually(found, what="the door-wire alarm")  # type: ignore[return-value]


def forged_pulse() -> bytes:
    return doorlink.encode(doorlink.PULSE, 3, doorlink.pack_pulse(30_000)
                           + struct.pack(">I", 1 << 30) + os.urandom(16))


def test_a_forged_pulse_on_the_cable_raises_an_alarm_and_never_opens_the_door(
        door: Door, people: People) -> None:
    door.start()
    started = time.monotonic()
    door.rig.door.inject_to_board(forged_pulse())
    alarm = wire_alarm(door)
    assert "bad MAC" in (alarm.detail or "") and "inspect the cable" in (alarm.detail or "")
    assert not unlocked_since(door, started)


def test_a_replayed_opening_raises_an_alarm_and_never_opens_the_door_again(
        door: Door, people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    before = door.last_event_id()
    door.present("alice-right-index")
    door.wait_event("granted", after=before)
    door.lift()
    eventually(lambda: door.rig.door.relay_locked and unlocked_since(door, 0),
               what="the opening to end")
    recorded = [f for f in door.rig.door.heard_frames if f[4] == doorlink.PULSE][-1]
    replayed_at = time.monotonic()
    door.rig.door.inject_to_board(recorded)
    assert "replayed frame" in (wire_alarm(door).detail or "")
    assert not unlocked_since(door, replayed_at)


def test_a_forged_answer_to_the_daemon_is_an_alarm_and_the_door_works_again_after(
        door: Door, people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    door.rig.door.inject_to_host(doorlink.encode(
        doorlink.EVENT, 5, doorlink.pack_event(doorlink.EV_DOOR_CLOSED, 0, 1)))
    assert "unauthenticated" in (wire_alarm(door).detail or "")
    door.wait_event("recovered")  # a new session with the real board
    before, asked = door.last_event_id(), time.monotonic()
    door.present("alice-right-index")
    door.wait_event("granted", after=before)
    eventually(lambda: unlocked_since(door, asked), what="the door to open")


def test_a_downgraded_board_is_an_alarm_and_never_hears_a_command(
        door: Door, people: People) -> None:
    def downgrade(frame: doorlink.Frame) -> bytes:
        if frame.type == doorlink.HELLO_REPLY:  # "I only speak the old, open protocol"
            return doorlink.encode(doorlink.NAK, frame.seq, doorlink.pack_nak(
                doorlink.NAK_UNSUPPORTED_VERSION, 1))
        return frame.encode()

    door.rig.door.intercept_to_host(downgrade)
    s = door.settings
    door.daemon = Daemon(s, door.engine, door.sessions, door.keys,
                         ZfmSensor(s.sensor.port, timeout=s.sensor.timeout_seconds),
                         SerialDoorBoard(s.door.port, link_key=door.keys.door_link_key()))
    door.thread = threading.Thread(target=door.daemon.run, daemon=True)
    door.thread.start()
    alarm = wire_alarm(door)
    assert "version 1" in (alarm.detail or "") and "never falls back" in (alarm.detail or "")
    # after the installer's PROVISION, nothing but HELLO: not one command in clear
    assert {c.name for c in door.rig.door.commands} == {"PROVISION", "HELLO"}
    assert door.rig.door.relay_locked


def test_an_lcus_relay_is_refused_unless_the_site_accepts_an_unauthenticated_wire(
        door: Door, capsys: pytest.CaptureFixture[str]) -> None:
    set_config(door.config, {"door.driver": "lcus", "door.baud": 9600})
    assert accessd_main(["--config", str(door.config), "run"]) != 0
    said = capsys.readouterr().err
    assert "cannot authenticate its wire" in said and "unauthenticated_wire = true" in said
    set_config(door.config, {"door.unauthenticated_wire": True})
    assert accessd_main(["--config", str(door.config), "doctor"]) in (0, 1)
    assert "WARN  door wire" in capsys.readouterr().out


def test_provisioning_twice_is_refused_and_leaves_the_keyring_as_it_was(
        door: Door, capsys: pytest.CaptureFixture[str]) -> None:
    key = door.keys.door_link_key()
    assert key is not None
    assert accessd_main(["--config", str(door.config), "door", "provision"]) != 0
    assert "provisioning jumper" in capsys.readouterr().err
    assert type(door.keys)(door.keys.path).door_link_key() == key
    door.rig.door.provision_jumper(True)
    assert accessd_main(["--config", str(door.config), "door", "provision"]) == 0
    assert type(door.keys)(door.keys.path).door_link_key() not in (None, key)
