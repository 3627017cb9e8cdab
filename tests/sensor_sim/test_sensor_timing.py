"""Timing emulation: answers take at least their wire time plus the sensor's processing time.

Only lower bounds are asserted: the machines that run this suite are shared and noisy.
"""

from __future__ import annotations

import time

from hardware_sim.port import wire_time
from tests.sensor_sim.conftest import Connect, MakeSim

GEN_IMG_BYTES = 12 + 12  # the command and its acknowledgement


def test_image_round_trip_takes_at_least_wire_time_plus_image_time(make_sim: MakeSim,
                                                                   connect: Connect) -> None:
    image_time = 0.05
    sim = make_sim(baud=57600, image_time=image_time)
    fp = connect(sim)
    assert fp.verifyPassword()
    sim.place("alice-index")
    start = time.perf_counter()
    assert fp.readImage() is True
    elapsed = time.perf_counter() - start
    assert elapsed >= wire_time(GEN_IMG_BYTES, 57600) + image_time


def test_polling_without_a_finger_also_takes_the_image_time(make_sim: MakeSim,
                                                            connect: Connect) -> None:
    sim = make_sim(image_time=0.03)  # processing time applies without byte pacing too
    fp = connect(sim)
    start = time.perf_counter()
    assert fp.readImage() is False
    assert time.perf_counter() - start >= 0.03
