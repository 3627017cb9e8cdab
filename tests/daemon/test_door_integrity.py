"""What keeps the door trustworthy: the sensor follows the database, tamper empties the reader,
the history shows tampering, and the daemon refuses to run without its keys."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from accessd.cli.main import main as accessd_main
from accessd.models import CommandState
from tests.daemon.conftest import Door, People, eventually


def test_reconcile_wipes_strays_and_uploads_missing_templates(door: Door, people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    assert door.enrol(people.bob, "bob-left-index", "left_index").state is CommandState.DONE
    door.stop()
    slots = sorted(door.rig.sensor.library)
    assert len(slots) == 2
    # Behind the daemon's back: a stranger's template appears, one of ours disappears.
    door.rig.sensor.enrol("intruder-thumb", 42)
    stolen = slots[0]
    door.rig.sensor.lose(stolen)
    door.start()
    eventually(lambda: sorted(door.rig.sensor.library) == slots, what="the library to match")
    before = door.last_event_id()
    door.present("intruder-thumb")
    assert door.wait_event("unknown_finger", after=before)
    door.lift()
    before = door.last_event_id()
    door.present("alice-right-index")
    assert door.wait_event("granted", after=before).person_id == people.alice


def test_tamper_empties_the_reader_and_clearing_the_alarm_refills_it(door: Door,
                                                                     people: People) -> None:
    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    door.rig.door.tamper(True)
    door.wait_event("tamper")
    eventually(lambda: door.rig.sensor.template_count == 0, what="the sensor to be wiped")
    door.rig.door.tamper(False)
    assert accessd_main(["--config", str(door.config), "alarm", "clear", "--by", "bert"]) == 0
    eventually(lambda: door.rig.sensor.template_count == 1, what="the sensor to refill")
    before = door.last_event_id()
    door.present("alice-right-index")
    assert door.wait_event("granted", after=before).person_id == people.alice


def test_while_the_reader_is_tampered_enrolment_is_refused_and_a_finger_leaves_an_event(
        door: Door, people: People) -> None:
    door.start()
    door.rig.door.tamper(True)
    door.wait_event("tamper")
    eventually(lambda: door.rig.sensor.template_count == 0, what="the sensor to be wiped")
    before = door.last_event_id()
    door.present("alice-right-index")
    refused = door.wait_event("denied", after=before)
    assert refused.reason == "reader_tampered" and refused.person_id is None
    door.lift()
    enrolment = door.enrol(people.alice, "alice-right-index")
    assert enrolment.state is CommandState.FAILED
    assert "tamper alarm" in (enrolment.progress or "")
    assert door.rig.sensor.template_count == 0


def test_forced_door_and_exit_button_are_events(door: Door, people: People) -> None:
    door.start()
    door.rig.door.force_door()
    door.wait_event("door_forced")
    door.rig.door.close_door()
    door.rig.door.press_exit()
    door.wait_event("exit")
    eventually(lambda: not door.rig.door.relay_locked, what="the exit button to release")


def test_verify_log_names_an_event_edited_by_hand(door: Door, people: People,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    door.start()
    for _ in range(3):
        before = door.last_event_id()
        door.present("stranger")
        door.wait_event("unknown_finger", after=before)
        door.lift()
    door.stop()
    assert accessd_main(["--config", str(door.config), "verify-log"]) == 0
    with door.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET kind = 'granted' WHERE seq = 2"))
    assert accessd_main(["--config", str(door.config), "verify-log"]) == 1
    out = capsys.readouterr().out
    assert "seq 2" in out and "altered" in out


def test_run_refuses_a_missing_keyring_with_the_fix(door: Door,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    keyring = door.settings.keys.master_key_file
    assert keyring is not None
    os.rename(keyring, keyring.with_suffix(".away"))
    assert accessd_main(["--config", str(door.config), "run"]) == 1
    assert "accessd init" in capsys.readouterr().err


def test_run_refuses_a_keyring_others_can_read(door: Door,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    keyring = door.settings.keys.master_key_file
    assert keyring is not None
    os.chmod(keyring, 0o644)
    assert accessd_main(["--config", str(door.config), "run"]) == 1
    assert "chmod 600" in capsys.readouterr().err
    assert door.rig.door.relay_locked


def test_a_template_copied_onto_another_persons_row_does_not_decrypt(door: Door,
                                                                     people: People) -> None:
    from sqlalchemy import select

    from accessd.errors import DecryptionError
    from accessd.fingers.sealed import open_sealed
    from accessd.models import Customer, DataKey, Finger, Person

    door.start()
    assert door.enrol(people.alice, "alice-right-index").state is CommandState.DONE
    assert door.enrol(people.bob, "bob-left-index", "left_index").state is CommandState.DONE
    door.stop()
    with door.sessions.begin() as session:
        alice_f, bob_f = (session.scalars(select(Finger).where(Finger.person_id == p)).one()
                          for p in (people.alice, people.bob))
        bob_f.template_ciphertext = alice_f.template_ciphertext  # Mallory edits the database
        bob_f.template_nonce = alice_f.template_nonce
    with door.sessions() as session:
        finger = session.scalars(select(Finger).where(Finger.person_id == people.bob)).one()
        row = (finger, session.get_one(Person, people.bob), session.get_one(Customer, people.acme),
               session.get_one(DataKey, finger.data_key_id))
        with pytest.raises(DecryptionError, match="copied from another finger"):
            open_sealed(door.keys, *row)
