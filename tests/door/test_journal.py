"""The reserve journal: space taken in advance, records that survive a crash exactly as far as
they were synced, numbering that never goes back, and nothing personal left once moved."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from pathlib import Path

import pytest

from accessd.door.journal import (
    CONSUMED,
    RECORD_SIZE,
    JournalEntry,
    ReserveJournal,
)
from accessd.errors import JournalError, JournalFullError

AT = dt.datetime(2026, 11, 28, 3, 4, 5, 123456, tzinfo=dt.UTC)
PERSON = uuid.UUID("12345678-1234-5678-1234-567812345678")


def entry(n: int = 0, **changes: object) -> JournalEntry:
    fields: dict[str, object] = {
        "kind": "granted", "at": AT + dt.timedelta(seconds=n), "method": "finger",
        "reason": "allowed", "door_id": 1, "customer_id": 7, "person_id": 9,
        "customer_public_id": uuid.UUID(int=7), "person_public_id": PERSON}
    fields.update(changes)
    return JournalEntry(**fields)  # type: ignore[arg-type]


def test_the_whole_file_is_written_before_the_first_event(tmp_path: Path) -> None:
    path = tmp_path / "events.journal"
    journal = ReserveJournal.open(path, capacity=100)
    assert path.stat().st_size == RECORD_SIZE * 101
    assert path.stat().st_blocks * 512 >= RECORD_SIZE * 101  # allocated, not sparse
    assert journal.pending == 0 and len(journal.id) == 32
    journal.close()
    assert ReserveJournal.open(path).id == journal.id  # the same journal, reopened


@pytest.mark.parametrize("changes", [
    {},
    {"method": None, "reason": None, "customer_id": None, "person_id": None,
     "customer_public_id": None, "person_public_id": None, "kind": "door_forced"},
    {"kind": "pulse_failed", "refers_to": 123456789012},
    {"kind": "pulse_unknown", "refers_seq": 41, "refers_at": AT},
    {"reason": "Besucher Jürgen 🚪 " * 10, "method": "remote"},
    {"reason": ""},
])
def test_an_entry_reads_back_as_it_was_written(tmp_path: Path, changes: dict[str, object]) -> None:
    journal = ReserveJournal.open(tmp_path / "j", capacity=10)
    written = entry(**changes)
    seq = journal.append(written)
    assert journal.oldest(5) == [dataclasses.replace(written, seq=seq)]
    assert seq == 1


def test_pending_records_survive_a_restart_in_order_and_numbering_goes_on(
        tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = ReserveJournal.open(path, capacity=5)
    for n in range(4):
        journal.append(entry(n))
    journal.consume(2)
    journal.close()
    again = ReserveJournal.open(path)
    assert [e.seq for e in again.oldest(10)] == [3, 4]
    assert again.append(entry(9)) == 5
    assert again.append(entry(10)) == 6  # wraps onto consumed slot 1
    assert [e.seq for e in again.oldest(10)] == [3, 4, 5, 6]


def test_a_full_journal_refuses_and_takes_events_again_once_moved(tmp_path: Path) -> None:
    journal = ReserveJournal.open(tmp_path / "j", capacity=3)
    for n in range(3):
        journal.append(entry(n))
    with pytest.raises(JournalFullError, match="the door refuses"):
        journal.append(entry(3))
    assert journal.consume(1) == 1
    assert journal.append(entry(4)) == 4


def test_an_append_torn_by_a_crash_is_not_an_event_and_its_number_is_reused(
        tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = ReserveJournal.open(path, capacity=4)
    journal.append(entry(0))
    journal.append(entry(1))
    journal.close()
    with open(path, "r+b") as handle:  # power lost half-way through writing record 2
        handle.seek(RECORD_SIZE * 2 + 600)
        handle.write(b"\xff" * 100)
    again = ReserveJournal.open(path)
    assert [e.seq for e in again.oldest(10)] == [1]
    assert again.append(entry(2)) == 2


def test_a_consumed_record_keeps_its_number_and_nothing_personal(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = ReserveJournal.open(path, capacity=4)
    for n in range(3):
        journal.append(entry(n, reason="visitor Ada Lovelace"))
    assert journal.consume(3) == 3
    assert journal.consume(3) == 0  # idempotent
    journal.close()
    data = path.read_bytes()
    assert PERSON.bytes not in data and b"Ada Lovelace" not in data
    assert data[RECORD_SIZE * 3 + 8] == CONSUMED
    again = ReserveJournal.open(path)
    assert again.pending == 0 and again.append(entry(5)) == 4


def test_a_consume_torn_after_its_state_byte_still_counts_its_number(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = ReserveJournal.open(path, capacity=4)
    for n in range(2):
        journal.append(entry(n))
    journal.close()
    with open(path, "r+b") as handle:  # the state byte went to disk, the scrub did not
        handle.seek(RECORD_SIZE * 2 + 8)
        handle.write(bytes([CONSUMED]))
        handle.seek(RECORD_SIZE * 2 + 300)
        handle.write(bytes(50))
    again = ReserveJournal.open(path)
    assert [e.seq for e in again.oldest(10)] == [1]
    assert again.append(entry(3)) == 3  # 2 was moved: never reused


def test_a_file_that_is_not_a_journal_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(os.urandom(RECORD_SIZE * 3))
    with pytest.raises(JournalError, match="move it away"):
        ReserveJournal.open(path)


def test_a_journal_that_cannot_be_created_says_so(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot be created"):
        ReserveJournal.open(tmp_path / "missing-dir" / "j")
