"""Virtual fingers: reproducible impressions; the same finger matches, another does not."""

from __future__ import annotations

import pytest

from hardware_sim import fingers
from hardware_sim.fingers import DEFAULT_MATCH_THRESHOLD, MAX_SCORE, Quality

NAMES = [f"person{i}-finger{j}" for i in range(20) for j in range(2)]


def chars(name: str, number: int) -> bytes:
    return fingers.characteristics(fingers.impression(name, number))


def test_impressions_are_reproducible_and_differ_between_placements() -> None:
    assert fingers.impression("alice", 3) == fingers.impression("alice", 3)
    assert fingers.impression("alice", 3) != fingers.impression("alice", 4)
    assert fingers.impression("alice", seed=99) == fingers.impression("alice", seed=99)
    assert chars("alice", 3) == chars("alice", 3)


def test_characteristics_are_512_bytes() -> None:
    assert len(chars("alice", 0)) == 512


@pytest.mark.parametrize("name", NAMES[:10])
def test_template_matches_later_impressions_of_its_finger(name: str) -> None:
    template = fingers.combine(chars(name, 0), chars(name, 1))
    assert template is not None and len(template) == 512
    for later in range(2, 12):
        assert fingers.match_score(template, chars(name, later)) >= 2 * DEFAULT_MATCH_THRESHOLD


def test_different_fingers_score_below_the_threshold() -> None:
    templates = [fingers.combine(chars(n, 0), chars(n, 1)) for n in NAMES]
    for i, template in enumerate(templates):
        assert template is not None
        for j, other in enumerate(NAMES):
            if i != j:
                assert fingers.match_score(template, chars(other, 5)) < DEFAULT_MATCH_THRESHOLD


def test_captures_of_different_fingers_do_not_combine() -> None:
    assert fingers.combine(chars("alice", 0), chars("bob", 0)) is None


@pytest.mark.parametrize("foreign", [b"", bytes(512), b"\x42" * 512, b"VFP\x01" + bytes(508)])
def test_foreign_or_corrupt_buffers_score_zero(foreign: bytes) -> None:
    assert fingers.match_score(foreign, chars("alice", 0)) == 0
    assert fingers.combine(foreign, chars("alice", 0)) is None
    assert not fingers.is_characteristics(foreign)


def test_identical_buffers_score_the_maximum() -> None:
    assert fingers.match_score(chars("alice", 0), chars("alice", 0)) == MAX_SCORE


@pytest.mark.parametrize("quality", list(Quality))
def test_image_is_256_by_288_four_bit_pixels(quality: Quality) -> None:
    assert len(fingers.image(fingers.impression("alice", quality=quality))) == 256 * 288 // 2
