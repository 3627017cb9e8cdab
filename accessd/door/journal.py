"""The door's reserve journal: room for events, set aside in advance, for when the database
cannot take them (disk full, write-locked by another process, read-only, gone).

An opening that cannot be recorded does not happen. With only the database, a full disk or a
long lock would keep the door shut for everyone. So the daemon creates, at start and while there
is space, a file of ``capacity`` fixed-size records, every byte written and synced: later writes
into it need no new space from the file system. While the database fails, events go here
(written and synced before the relay moves); once it takes writes again, the daemon moves them
into the history, oldest first, each exactly once (``accessd.door.recorder``). When even this
file cannot be written, or all of it waits to be moved, the door refuses: fail-secure stays the
rule.

Layout, little-endian, ``RECORD_SIZE`` bytes per block (so no record straddles a 4 KiB page):

- block 0, the header: magic, format version, record size, capacity, the journal's id (16 random
  bytes; the database's ``JournalDrain`` row for this file is named by it), CRC-32;
- blocks 1..capacity: one record each, sequence number ``seq`` in slot ``(seq - 1) % capacity``:
  ``seq`` (8) | state (1) | body | reason | CRC-32 of everything but the state, in the last 4.

An append writes the whole record, state ``PENDING``, and syncs. Consuming a record first sets
its state byte to ``CONSUMED`` (one byte: no torn write can half-do it) and syncs, then zeroes
its body (the event's people and reason have no business staying in a file) and syncs. Reading
the file back after a crash: a ``PENDING`` record with a bad CRC is an append that never
finished, so an event never acknowledged (its relay never moved): ignored; a ``CONSUMED`` one
is trusted for its ``seq`` alone, so numbering always continues past every record ever drained.

The records hold ids and public ids of customers and people, and a reason, until they are
moved: the same personal data as the history they are bound for, for as long as the database
fails, on the same disk. Once moved, only the number remains.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import struct
import threading
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from accessd.errors import JournalError, JournalFullError
from accessd.models.base import from_epoch_micros, to_epoch_micros

CAPACITY = 10_000
RECORD_SIZE = 1024
JOURNAL_FILE = "events.journal"
REASON_CHARS = 200  # AccessEvent.reason

_MAGIC = b"accessd-journal\0"
_VERSION = 1
_HEADER = struct.Struct("<16sHII16s")
_SEQ_STATE = struct.Struct("<QB")
_BODY = struct.Struct("<32s16sqqqq16s16sqQqH")
_REASON_AT = _SEQ_STATE.size + _BODY.size
_CRC_AT = RECORD_SIZE - 4
_REASON_MAX = _CRC_AT - _REASON_AT  # bytes: 200 characters of UTF-8 always fit
EMPTY, PENDING, CONSUMED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One event as the journal keeps it until the database takes it.

    ``refers_to`` is the id of the event this one is about, when that one is in the database
    already; otherwise ``refers_seq`` is its journal record and ``refers_at`` its time.
    ``seq`` is 0 until the entry is in the journal.
    """

    kind: str
    at: dt.datetime
    method: str | None = None
    reason: str | None = None
    door_id: int | None = None
    customer_id: int | None = None
    person_id: int | None = None
    customer_public_id: uuid.UUID | None = None
    person_public_id: uuid.UUID | None = None
    refers_to: int | None = None
    refers_seq: int | None = None
    refers_at: dt.datetime | None = None
    seq: int = 0


class ReserveJournal:
    """The journal file of one door: append, read the oldest pending, consume; thread-safe.

    Open it with ``ReserveJournal.open``; ``pending`` counts the records waiting to be moved.
    """

    def __init__(self, path: Path, fd: int, journal_id: str, capacity: int,
                 pending: list[int], next_seq: int) -> None:
        self.path = path
        self.id = journal_id
        self.capacity = capacity
        self._fd = fd
        self._lock = threading.Lock()
        self._pending: collections.deque[int] = collections.deque(pending)
        self._next_seq = next_seq

    @classmethod
    def open(cls, path: Path, *, capacity: int = CAPACITY) -> ReserveJournal:
        """Open the journal at ``path``, creating it (every byte written and synced) if absent.

        :raises JournalError: it cannot be created (no space, no permission) or is not a
            journal of this format.
        """
        try:
            if not path.exists():
                _create(path, capacity)
            fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise JournalError(
                f"the reserve journal {path} cannot be created or opened ({exc}); the door "
                "records events in the database only until it can: free space in "
                f"{path.parent}") from exc
        try:
            journal_id, capacity = _read_header(path, os.pread(fd, RECORD_SIZE, 0),
                                                os.fstat(fd).st_size)
            pending, top = _scan(fd, capacity)
        except (OSError, JournalError):
            os.close(fd)
            raise
        return cls(path, fd, journal_id, capacity, pending, top + 1)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def append(self, entry: JournalEntry) -> int:
        """Write ``entry`` as the next record and sync it; returns its ``seq``.

        :raises JournalFullError: every record waits to be moved into the database.
        :raises JournalError: the write or the sync failed.
        """
        with self._lock:
            if len(self._pending) >= self.capacity:
                raise JournalFullError(
                    f"the reserve journal {self.path} is full: {self.capacity} events wait for "
                    "the database; the door refuses until the database takes them")
            seq = self._next_seq
            record = _encode(seq, entry)
            try:
                os.pwrite(self._fd, record, self._offset(seq))
                os.fdatasync(self._fd)
            except OSError as exc:
                raise JournalError(f"the reserve journal {self.path} cannot be written "
                                   f"({exc}); the door refuses") from exc
            self._next_seq = seq + 1
            self._pending.append(seq)
            return seq

    def oldest(self, limit: int) -> list[JournalEntry]:
        """Up to ``limit`` pending entries, oldest first.

        :raises JournalError: the file cannot be read.
        """
        with self._lock:
            seqs = list(self._pending)[:limit]
            try:
                return [_decode(os.pread(self._fd, RECORD_SIZE, self._offset(seq)))
                        for seq in seqs]
            except OSError as exc:
                raise JournalError(f"the reserve journal {self.path} cannot be read ({exc})"
                                   ) from exc

    def consume(self, upto: int) -> int:
        """Mark every pending record up to ``seq`` ``upto`` consumed and scrub it; returns how
        many. Idempotent.

        :raises JournalError: the file cannot be written (the records stay pending; the
            database's ``JournalDrain`` mark keeps them from being moved twice).
        """
        with self._lock:
            seqs = [seq for seq in self._pending if seq <= upto]
            if not seqs:
                return 0
            try:
                for seq in seqs:
                    os.pwrite(self._fd, bytes([CONSUMED]), self._offset(seq) + 8)
                os.fdatasync(self._fd)
                for seq in seqs:
                    os.pwrite(self._fd, _scrubbed(seq), self._offset(seq) + _SEQ_STATE.size)
                os.fdatasync(self._fd)
            except OSError as exc:
                raise JournalError(f"the reserve journal {self.path} cannot be written "
                                   f"({exc})") from exc
            for _ in seqs:
                self._pending.popleft()
            return len(seqs)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _offset(self, seq: int) -> int:
        return RECORD_SIZE * (1 + (seq - 1) % self.capacity)


def _create(path: Path, capacity: int) -> None:
    """Write the whole file under a temporary name, sync it, then move it into place: a crash
    leaves either no journal or a complete one."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = RECORD_SIZE * (1 + capacity)
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)
        header = _HEADER.pack(_MAGIC, _VERSION, RECORD_SIZE, capacity, uuid.uuid4().bytes)
        header += struct.pack("<I", zlib.crc32(header))
        block = 256 * RECORD_SIZE
        zeros = bytes(block)
        written = 0
        while written < size:  # real zeros, so that no later write needs a new block
            written += os.pwrite(fd, zeros[:min(block, size - written)], written)
        os.pwrite(fd, header, 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _read_header(path: Path, data: bytes, file_size: int) -> tuple[str, int]:
    size = _HEADER.size
    if len(data) < RECORD_SIZE:
        raise JournalError(f"{path} is too short to be a reserve journal; move it away and "
                           "restart the daemon to create a new one")
    magic, version, record_size, capacity, raw_id = _HEADER.unpack_from(data)
    (crc,) = struct.unpack_from("<I", data, size)
    if (magic != _MAGIC or version != _VERSION or record_size != RECORD_SIZE
            or crc != zlib.crc32(data[:size]) or file_size < RECORD_SIZE * (1 + capacity)):
        raise JournalError(f"{path} is not a reserve journal this accessd can read; move it "
                           "away (after moving its events in with the version that wrote it) "
                           "and restart the daemon to create a new one")
    return raw_id.hex(), capacity


def _scan(fd: int, capacity: int) -> tuple[list[int], int]:
    """The pending records' seqs (oldest first) and the highest seq ever written.

    Read a chunk at a time: one read of the whole file would leave the daemon's heap 10 MB
    larger for good (the allocator keeps what it grew by).
    """
    pending: list[int] = []
    top = 0
    chunk = 64
    for first in range(0, capacity, chunk):
        count = min(chunk, capacity - first)
        data = os.pread(fd, RECORD_SIZE * count, RECORD_SIZE * (1 + first))
        for index in range(count):
            slot, start = first + index, RECORD_SIZE * index
            seq, state = _SEQ_STATE.unpack_from(data, start)
            if seq == 0 or (seq - 1) % capacity != slot:
                continue
            if state == CONSUMED:
                top = max(top, seq)
            elif state == PENDING:
                record = data[start:start + RECORD_SIZE]
                if _crc(record) == _stored_crc(record):
                    top = max(top, seq)
                    pending.append(seq)
            # anything else: an append that never finished, so an event never acknowledged
    pending.sort()
    return pending, top


def _crc(record: bytes) -> int:
    return zlib.crc32(record[_SEQ_STATE.size:_CRC_AT], zlib.crc32(record[:8]))


def _stored_crc(record: bytes) -> int:
    return int(struct.unpack_from("<I", record, _CRC_AT)[0])


def _text(value: str | None, size: int) -> bytes:
    raw = (value or "").encode()
    if len(raw) > size:
        raise JournalError(f"{value!r} does not fit a journal record's {size}-byte field")
    return raw


def _encode(seq: int, entry: JournalEntry) -> bytes:
    reason = (entry.reason or "")[:REASON_CHARS].encode()[:_REASON_MAX]
    body = _BODY.pack(
        _text(entry.kind, 32), _text(entry.method, 16), to_epoch_micros(entry.at),
        entry.door_id or 0, entry.customer_id or 0, entry.person_id or 0,
        entry.customer_public_id.bytes if entry.customer_public_id else bytes(16),
        entry.person_public_id.bytes if entry.person_public_id else bytes(16),
        entry.refers_to or 0, entry.refers_seq or 0,
        to_epoch_micros(entry.refers_at) if entry.refers_at else 0,
        len(reason) if entry.reason is not None else 0xFFFF)
    record = bytearray(RECORD_SIZE)
    _SEQ_STATE.pack_into(record, 0, seq, PENDING)
    record[_SEQ_STATE.size:_REASON_AT] = body
    record[_REASON_AT:_REASON_AT + len(reason)] = reason
    struct.pack_into("<I", record, _CRC_AT, _crc(bytes(record)))
    return bytes(record)


def _decode(record: bytes) -> JournalEntry:
    seq, _state = _SEQ_STATE.unpack_from(record)
    (kind, method, at, door, customer, person, customer_uuid, person_uuid, refers_to,
     refers_seq, refers_at, reason_len) = _BODY.unpack_from(record, _SEQ_STATE.size)
    reason = (None if reason_len == 0xFFFF
              else record[_REASON_AT:_REASON_AT + reason_len].decode(errors="replace"))
    return JournalEntry(
        kind=kind.rstrip(b"\0").decode(), at=from_epoch_micros(at),
        method=method.rstrip(b"\0").decode() or None, reason=reason,
        door_id=door or None, customer_id=customer or None, person_id=person or None,
        customer_public_id=uuid.UUID(bytes=customer_uuid) if any(customer_uuid) else None,
        person_public_id=uuid.UUID(bytes=person_uuid) if any(person_uuid) else None,
        refers_to=refers_to or None, refers_seq=refers_seq or None,
        refers_at=from_epoch_micros(refers_at) if refers_at else None, seq=seq)


def _scrubbed(seq: int) -> bytes:
    """A consumed record from its body on: zeros, and the CRC of its seq and those zeros."""
    record = bytearray(RECORD_SIZE)
    _SEQ_STATE.pack_into(record, 0, seq, CONSUMED)
    struct.pack_into("<I", record, _CRC_AT, _crc(bytes(record)))
    return bytes(record[_SEQ_STATE.size:])
