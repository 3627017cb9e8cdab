"""Virtual fingers: reproducible impressions, characteristics, templates and match scores.

A finger is only a name. The name deterministically gives the finger's true features, 256 bits;
each placement on the sensor gives an impression that differs from them in a few random bits
(about 3 %), seeded by the name and a placement counter (or an explicit seed), so every run of a
test sees the same impressions. Different names give unrelated features (about half the bits
differ).

Characteristics and templates are 512-byte buffers like a real sensor's, in a format only this
module reads: a header, the features, a mask of the bits that count, a CRC, and filler. A
template combines two captures and keeps only the bits on which they agree, so it matches later
impressions of the same finger better than a single capture does. Anything else (bytes a host
uploaded in another sensor's format, a zeroed buffer) scores 0 against everything.

Scores run from 0 to ``MAX_SCORE`` like a real sensor's: the fraction of differing bits among
the compared ones, mapped linearly so that ``SCORE_ZERO_AT`` (30 %) or more scores 0. Same-finger
pairs differ in about 6 % of their bits (score about 240); different fingers in about 50 %
(score 0); reaching the default threshold of 50 by chance would need 8 standard deviations.
"""

from __future__ import annotations

import enum
import hashlib
import random
import zlib
from dataclasses import dataclass

from firmware_bridge.zfm import CHARACTERISTICS_SIZE, IMAGE_HEIGHT, IMAGE_SIZE, IMAGE_WIDTH

FEATURE_BITS = 256
ALL_BITS = (1 << FEATURE_BITS) - 1
FEATURE_BYTES = FEATURE_BITS // 8
MAX_SCORE = 300
DEFAULT_MATCH_THRESHOLD = 50
SCORE_ZERO_AT = 0.3  # fraction of differing bits that scores 0
MIN_COMPARED_BITS = 64  # fewer bits in common than this says nothing: score 0
NOISE_ROUNDS = 5  # AND of 5 random words: each bit flips with probability 1/32

_MAGIC = b"VFP\x01"  # "virtual fingerprint", format version 1
_CAPTURE, _TEMPLATE = 1, 2
_FEATURES_AT = 8
_MASK_AT = _FEATURES_AT + FEATURE_BYTES
_CRC_AT = _MASK_AT + FEATURE_BYTES
_FILLER_AT = _CRC_AT + 4


class Quality(enum.StrEnum):
    """How well a finger was placed; only ``GOOD`` converts into characteristics."""

    GOOD = "good"
    MESSY = "messy"  # Img2Tz answers 0x06
    FEW_FEATURES = "few_features"  # Img2Tz answers 0x07


@dataclass(frozen=True, slots=True)
class Impression:
    """One image of a finger on the sensor's glass."""

    finger: str
    features: int  # FEATURE_BITS bits
    quality: Quality = Quality.GOOD


def finger_features(finger: str) -> int:
    """The true features of the finger called ``finger`` (the same in every run)."""
    digest = hashlib.blake2b(finger.encode(), digest_size=FEATURE_BYTES, person=b"accessd-finger")
    return int.from_bytes(digest.digest(), "big")


def impression(finger: str, number: int = 0, *, seed: int | None = None,
               quality: Quality | str = Quality.GOOD) -> Impression:
    """The ``number``-th placement of ``finger``, or the one drawn from ``seed`` when given."""
    rng = random.Random(f"{finger}\0{number}" if seed is None else seed)
    noise = ALL_BITS
    for _ in range(NOISE_ROUNDS):
        noise &= rng.getrandbits(FEATURE_BITS)
    return Impression(finger, finger_features(finger) ^ noise, Quality(quality))


def characteristics(imp: Impression) -> bytes:
    """The character buffer Img2Tz makes of a good impression (512 bytes)."""
    return _encode(_CAPTURE, imp.features, ALL_BITS)


def combine(a: bytes, b: bytes, threshold: int = DEFAULT_MATCH_THRESHOLD) -> bytes | None:
    """The template RegModel makes of two character buffers, or ``None`` when they are not
    of the same finger (score below ``threshold``) or not in this module's format."""
    pa, pb = _decode(a), _decode(b)
    if pa is None or pb is None or _score(pa, pb) < threshold:
        return None
    (fa, ma), (fb, mb) = pa, pb
    agreed = ma & mb & ~(fa ^ fb)
    return _encode(_TEMPLATE, fa & agreed, agreed)


def match_score(a: bytes, b: bytes) -> int:
    """How well two character buffers or templates match: 0 .. ``MAX_SCORE``.

    Cheap enough for on-chip search: about a microsecond per pair.
    """
    pa, pb = _decode(a), _decode(b)
    if pa is None or pb is None:
        return 0
    return _score(pa, pb)


def is_characteristics(data: bytes) -> bool:
    """True when ``data`` is a buffer in this module's format (not foreign or corrupted)."""
    return _decode(data) is not None


def image(imp: Impression) -> bytes:
    """A synthetic 256 x 288 image, two 4-bit pixels per byte, as UpImage sends it.

    Concentric ridges around a centre taken from the features; a messy impression is noisy and
    one with few features mostly blank. Cheap, and only meant to look like a fingerprint.
    """
    cx = 64 + (imp.features & 0x7F)
    cy = 80 + ((imp.features >> 7) & 0x7F)
    rng = random.Random(imp.features)
    rows = []
    for y in range(IMAGE_HEIGHT):
        dy2 = (y - cy) ** 2
        row = bytearray(IMAGE_WIDTH // 2)
        for i in range(IMAGE_WIDTH // 2):
            left = 0x0F if ((2 * i - cx) ** 2 + dy2) // 48 & 3 else 0x03
            right = 0x0F if ((2 * i + 1 - cx) ** 2 + dy2) // 48 & 3 else 0x03
            row[i] = left << 4 | right
        rows.append(row)
    data = bytearray(b"".join(rows))
    if imp.quality is Quality.MESSY:
        for i in range(0, IMAGE_SIZE, 3):
            data[i] = rng.getrandbits(8)
    elif imp.quality is Quality.FEW_FEATURES:
        data[IMAGE_SIZE // 8:] = b"\xff" * (IMAGE_SIZE - IMAGE_SIZE // 8)
    return bytes(data)


def _encode(kind: int, features: int, mask: int) -> bytes:
    head = (_MAGIC + bytes((kind, 0, 0, 0)) + features.to_bytes(FEATURE_BYTES, "big")
            + mask.to_bytes(FEATURE_BYTES, "big"))
    head += zlib.crc32(head).to_bytes(4, "big")
    # Filler so the buffer looks as dense as a real one; derived, so equal features give
    # byte-identical buffers.
    return head + hashlib.shake_256(head).digest(CHARACTERISTICS_SIZE - len(head))


def _decode(data: bytes) -> tuple[int, int] | None:
    if len(data) != CHARACTERISTICS_SIZE or data[:4] != _MAGIC:
        return None
    if zlib.crc32(data[:_CRC_AT]) != int.from_bytes(data[_CRC_AT:_FILLER_AT], "big"):
        return None
    features = int.from_bytes(data[_FEATURES_AT:_MASK_AT], "big")
    mask = int.from_bytes(data[_MASK_AT:_CRC_AT], "big")
    return features, mask


def _score(a: tuple[int, int], b: tuple[int, int]) -> int:
    (fa, ma), (fb, mb) = a, b
    compared = ma & mb
    n = compared.bit_count()
    if n < MIN_COMPARED_BITS:
        return 0
    differing = ((fa ^ fb) & compared).bit_count() / n
    return max(0, round(MAX_SCORE * (1 - differing / SCORE_ZERO_AT)))
