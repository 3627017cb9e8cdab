"""The real, unmodified pyfingerprint 1.5 runs its whole repertoire against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyfingerprint.pyfingerprint import PyFingerprint

from hardware_sim.sensor import SimulatedSensor
from tests.sensor_sim.conftest import Connect, MakeSim, capture, enrol

THRESHOLD = 50


def test_password_verifies_with_the_factory_default(sim: SimulatedSensor,
                                                    connect: Connect) -> None:
    assert connect(sim).verifyPassword() is True


def test_image_without_a_finger_is_refused_and_with_one_is_taken(
        sim: SimulatedSensor, fp: PyFingerprint) -> None:
    assert fp.readImage() is False
    sim.place("alice-index")
    assert fp.readImage() is True
    assert fp.convertImage(1) is True


def test_stored_finger_is_found_by_search(sim: SimulatedSensor, fp: PyFingerprint) -> None:
    slot = enrol(sim, fp, "alice-index")
    assert slot == 0
    assert fp.getTemplateCount() == 1
    capture(sim, fp, "alice-index")
    position, score = fp.searchTemplate()
    assert position == slot
    assert score >= 2 * THRESHOLD


def test_other_finger_is_not_found(sim: SimulatedSensor, fp: PyFingerprint) -> None:
    enrol(sim, fp, "alice-index")
    capture(sim, fp, "bob-thumb")
    assert fp.searchTemplate() == (-1, -1)


def test_captures_of_two_fingers_do_not_make_a_template(sim: SimulatedSensor,
                                                        fp: PyFingerprint) -> None:
    capture(sim, fp, "alice-index", 1)
    capture(sim, fp, "bob-thumb", 2)
    assert fp.createTemplate() is False


def test_compare_scores_same_finger_high_and_other_finger_zero(sim: SimulatedSensor,
                                                               fp: PyFingerprint) -> None:
    capture(sim, fp, "alice-index", 1)
    capture(sim, fp, "alice-index", 2)
    assert fp.compareCharacteristics() >= THRESHOLD
    capture(sim, fp, "bob-thumb", 2)
    assert fp.compareCharacteristics() == 0


def test_characteristics_go_to_the_host_and_back_unchanged(sim: SimulatedSensor,
                                                           fp: PyFingerprint) -> None:
    capture(sim, fp, "alice-index", 1)
    characteristics = fp.downloadCharacteristics(1)
    assert len(characteristics) == 512
    assert all(0 <= b <= 255 for b in characteristics)
    # pyfingerprint compares its list with what it reads back: it needs a list[int].
    assert fp.uploadCharacteristics(2, list(characteristics)) is True
    assert fp.downloadCharacteristics(2) == characteristics
    assert fp.compareCharacteristics() == 300


def test_template_uploaded_from_the_host_matches_a_fresh_capture(sim: SimulatedSensor,
                                                                 fp: PyFingerprint) -> None:
    slot = enrol(sim, fp, "alice-index")
    assert fp.loadTemplate(slot, 1)
    template = fp.downloadCharacteristics(1)
    fp.clearDatabase()
    assert fp.uploadCharacteristics(1, template) is True
    assert fp.storeTemplate(7, 1) == 7
    capture(sim, fp, "alice-index")
    assert fp.searchTemplate()[0] == 7


def test_foreign_characteristics_are_accepted_but_match_nothing(sim: SimulatedSensor,
                                                                fp: PyFingerprint) -> None:
    foreign = [(i * 37) & 0xFF for i in range(512)]
    assert fp.uploadCharacteristics(2, foreign) is True
    capture(sim, fp, "alice-index", 1)
    assert fp.compareCharacteristics() == 0


def test_loading_an_empty_slot_is_a_read_error(fp: PyFingerprint) -> None:
    with pytest.raises(Exception, match="could not be read"):
        fp.loadTemplate(3, 1)


def test_deleted_template_is_no_longer_found(sim: SimulatedSensor, fp: PyFingerprint) -> None:
    slot = enrol(sim, fp, "alice-index")
    assert fp.deleteTemplate(slot) is True
    assert fp.getTemplateCount() == 0
    capture(sim, fp, "alice-index")
    assert fp.searchTemplate() == (-1, -1)


def test_index_table_shows_occupied_slots(sim: SimulatedSensor, fp: PyFingerprint) -> None:
    enrol(sim, fp, "alice-index")
    assert fp.storeTemplate(9) == 9
    index = fp.getTemplateIndex(0)
    assert len(index) == 256
    assert [i for i, used in enumerate(index) if used] == [0, 9]
    assert not any(fp.getTemplateIndex(1))
    assert sorted(sim.library) == [0, 9]


def test_clear_database_empties_the_library(sim: SimulatedSensor, fp: PyFingerprint) -> None:
    enrol(sim, fp, "alice-index")
    enrol(sim, fp, "bob-thumb")
    assert fp.getTemplateCount() == 2
    assert fp.clearDatabase() is True
    assert fp.getTemplateCount() == 0
    assert sim.template_count == 0


def test_new_password_locks_out_the_old_one(sim: SimulatedSensor, fp: PyFingerprint,
                                            connect: Connect) -> None:
    assert fp.setPassword(0x0BADCAFE) is True
    assert sim.password == 0x0BADCAFE
    assert connect(sim).verifyPassword() is False
    assert connect(sim, password=0x0BADCAFE).verifyPassword() is True


def test_sensor_with_a_password_refuses_commands_until_verified(make_sim: MakeSim,
                                                                connect: Connect) -> None:
    sim = make_sim(password=0x1234)
    fp = connect(sim, password=0x1234)
    with pytest.raises(Exception, match="0x21"):
        fp.readImage()
    assert fp.verifyPassword() is True
    assert fp.readImage() is False


def test_packet_to_another_address_is_refused(sim: SimulatedSensor, connect: Connect) -> None:
    with pytest.raises(Exception, match="address is wrong"):
        connect(sim, address=0x12345678).verifyPassword()


def test_new_address_is_taken_by_sensor_and_library(sim: SimulatedSensor,
                                                    fp: PyFingerprint) -> None:
    assert fp.setAddress(0x11223344) is True
    assert sim.address == 0x11223344
    assert fp.getSystemParameters()[4] == 0x11223344


def test_store_beyond_the_library_is_refused_before_the_wire(sim: SimulatedSensor,
                                                             fp: PyFingerprint) -> None:
    # pyfingerprint checks the slot against the capacity itself; the sensor's own 0x0B
    # answer is shown on the raw line in test_sensor_wire.py.
    capture(sim, fp, "alice-index")
    with pytest.raises(ValueError, match="position number is invalid"):
        fp.storeTemplate(200)


def test_full_library_leaves_no_free_slot(make_sim: MakeSim, connect: Connect) -> None:
    sim = make_sim(capacity=3)
    fp = connect(sim)
    assert enrol(sim, fp, "alice-index") == 0
    assert enrol(sim, fp, "bob-thumb") == 1
    assert enrol(sim, fp, "carol-ring") == 2
    assert fp.getStorageCapacity() == 3
    assert fp.getTemplateIndex(0)[:4] == [True, True, True, False]
    # storeTemplate(-1) takes the first clear bit, slot 3, then refuses it as beyond capacity.
    with pytest.raises(ValueError, match="position number is invalid"):
        fp.storeTemplate()
    assert sim.template_count == 3


def test_false_reject_rate_one_rejects_the_right_finger(make_sim: MakeSim,
                                                        connect: Connect) -> None:
    sim = make_sim(false_reject_rate=1.0)
    fp = connect(sim)
    enrol(sim, fp, "alice-index")
    capture(sim, fp, "alice-index")
    assert fp.searchTemplate() == (-1, -1)


def test_false_accept_rate_one_matches_a_wrong_finger(make_sim: MakeSim,
                                                      connect: Connect) -> None:
    sim = make_sim(false_accept_rate=1.0)
    fp = connect(sim)
    slot = enrol(sim, fp, "alice-index")
    capture(sim, fp, "mallory-thumb")
    position, score = fp.searchTemplate()
    assert position == slot
    assert score >= THRESHOLD


@pytest.mark.parametrize(("quality", "message"), [
    ("messy", "too messy"),
    ("few_features", "too few feature points"),
])
def test_poor_capture_is_refused_with_the_sensors_reason(sim: SimulatedSensor, fp: PyFingerprint,
                                                         quality: str, message: str) -> None:
    sim.place("alice-index", quality)
    assert fp.readImage() is True
    with pytest.raises(Exception, match=message):
        fp.convertImage(1)


def test_system_parameters_describe_the_sensor(make_sim: MakeSim, connect: Connect) -> None:
    sim = make_sim(capacity=162, packet_size=64)
    fp = connect(sim)
    assert fp.verifyPassword()
    status, system_id, capacity, level, address, packet_code, baud = fp.getSystemParameters()
    assert status & 0b0100  # password verified
    assert (system_id, capacity, level, address) == (9, 162, 3, 0xFFFFFFFF)
    assert (packet_code, baud) == (1, 6)  # 64-byte packets, 9600 x 6 baud
    assert fp.getMaxPacketSize() == 64
    assert fp.getBaudRate() == 57600


def test_settings_change_what_the_sensor_reports_and_sends(sim: SimulatedSensor,
                                                          fp: PyFingerprint) -> None:
    fp.setSecurityLevel(5)
    fp.setBaudRate(115200)
    fp.setMaxPacketSize(32)
    assert fp.getSecurityLevel() == 5
    assert fp.getBaudRate() == 115200
    assert fp.getMaxPacketSize() == 32
    capture(sim, fp, "alice-index")
    characteristics = fp.downloadCharacteristics(1)  # now in sixteen 32-byte packets
    assert fp.uploadCharacteristics(2, characteristics) is True


def test_random_numbers_are_32_bit_and_reproducible(make_sim: MakeSim, connect: Connect) -> None:
    first = [connect(make_sim(seed=7)).generateRandomNumber() for _ in range(2)]
    assert first[0] == first[1]
    assert 0 <= first[0] <= 0xFFFFFFFF


def test_image_downloads_as_a_picture(sim: SimulatedSensor, fp: PyFingerprint,
                                      tmp_path: Path) -> None:
    sim.place("alice-index")
    assert fp.readImage()
    target = tmp_path / "finger.bmp"
    fp.downloadImage(str(target))
    assert target.stat().st_size > 256 * 288
