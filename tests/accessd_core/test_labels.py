"""Every code a door decision can record has words a person reads, in the catalogue."""

from __future__ import annotations

import pytest

from accessd.door.decision import Reason
from accessd.labels import REASONS, reason_label


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_every_decision_reason_reads_as_words(reason: Reason) -> None:
    assert reason.value in REASONS, f"add words for {reason.value!r} to accessd.labels.REASONS"
    words = reason_label(reason.value)
    assert "_" not in words and words.strip() == words and words
