"""A site door's event spool: every event goes here first, numbered by the door, chained by
the door, and stays until the site's database has it (``accessd.site.ingest``).

In site mode this is the door's only way of recording events, online or offline (it replaces
the single door's reserve journal, ``accessd.door.journal``, which exists for a database on the
same disk that may fail; one mechanism per mode, never two): an opening is on record once its
row is committed here (``synchronous=FULL``), before the relay moves, and the door's speed never
depends on the network.

- ``door_seq``: the door's own sequence, 1, 2, 3... never reused: the database's
  ``(door_id, door_seq)`` key makes each delivery idempotent, so a sender that crashed between
  the database's commit and deleting the rows here resends them and nothing is stored twice.
- Chains: one per customer and door (``customer:<hex>@door:<id>``), and one for the door's
  events without a customer (``facility@door:<id>``). The door computes each event's digest
  (``accessd.history.chain.event_digest``) and keeps each chain's head; the database checks
  every link on ingest. A purge removes a customer's chains whole (all doors' chains of that
  customer); the door forgets its head of a purged customer and its undelivered events at its
  next sync (``forget_customers``).
- A new spool starts where the database's record of this door ends (``seed``): the next
  ``door_seq`` and each chain's head. Until it is seeded it refuses to record (fail-secure: a
  door that never reached its database has no snapshot to decide with either).

The file holds personal data (public ids, salts, reasons) only until delivered: delivered rows
are deleted with ``secure_delete`` on and the WAL is truncated after each delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from accessd.errors import SpoolError
from accessd.history.chain import event_digest, subject_digest
from accessd.models import FACILITY_SCOPE, GENESIS_DIGEST
from accessd.models.base import from_epoch_micros, to_epoch_micros

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    door_seq INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    chain_seq INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    method TEXT,
    reason TEXT,
    customer_uuid BLOB,
    person_uuid BLOB,
    subject_salt BLOB,
    subject_digest BLOB,
    prev_digest BLOB NOT NULL,
    digest BLOB NOT NULL,
    refers_door_seq INTEGER
);
CREATE TABLE IF NOT EXISTS chains (
    scope TEXT PRIMARY KEY,
    head BLOB NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def door_scope(door_id: int, customer_public_id: uuid.UUID | None) -> str:
    """The chain of a customer's (or the facility's) events at one site door."""
    base = FACILITY_SCOPE if customer_public_id is None else f"customer:{customer_public_id.hex}"
    return f"{base}@door:{door_id}"


@dataclass(frozen=True, slots=True)
class SpooledEvent:
    """One event as the door numbered and chained it."""

    door_seq: int
    scope: str
    chain_seq: int
    at: dt.datetime
    kind: str
    method: str | None
    reason: str | None
    customer_public_id: uuid.UUID | None
    person_public_id: uuid.UUID | None
    subject_salt: bytes | None
    subject_digest: bytes | None
    prev_digest: bytes
    digest: bytes
    refers_door_seq: int | None


class EventSpool:
    """The spool file of one site door; thread-safe. Open with ``EventSpool.open``."""

    def __init__(self, path: Path, conn: sqlite3.Connection, door_id: int) -> None:
        self.path = path
        self.door_id = door_id
        self._conn = conn
        self._lock = threading.Lock()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        self._seeded = bool(meta.get("seeded"))
        self._next_seq = int(meta.get("next_seq", 1))
        self._heads: dict[str, tuple[bytes, int]] = {
            scope: (bytes(head), int(last))
            for scope, head, last in conn.execute("SELECT scope, head, last_seq FROM chains")}
        self._depth = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    @classmethod
    def open(cls, path: Path, door_id: int) -> EventSpool:
        """Open (or create, mode 0600) the spool at ``path`` for door ``door_id``.

        :raises SpoolError: it cannot be created or read, or belongs to another door.
        """
        try:
            if not path.exists():
                path.touch(mode=0o600)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # an opening's event survives a power cut
            conn.execute("PRAGMA secure_delete = ON")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key = 'door_id'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('door_id', ?)", (door_id,))
            elif int(row[0]) != door_id:
                raise SpoolError(f"the spool {path} belongs to door #{row[0]}, not #{door_id}: "
                                 "deliver it with that door's daemon, or move it away")
        except sqlite3.Error as exc:
            raise SpoolError(f"the event spool {path} cannot be opened ({exc}); the door "
                             f"refuses until it can: check the disk and {path.parent}") from exc
        return cls(path, conn, door_id)

    @property
    def seeded(self) -> bool:
        return self._seeded

    @property
    def depth(self) -> int:
        """Events waiting for delivery."""
        return self._depth

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def seed(self, delivered_seq: int, heads: dict[str, tuple[bytes, int]]) -> None:
        """Start where the database's record of this door ends: ``door_seq`` after
        ``delivered_seq``, chains at ``heads`` (scope -> head digest, last seq). Only a spool
        that never recorded anything is seeded; later calls change nothing."""
        with self._lock:
            if self._seeded:
                return
            with self._transaction():
                self._conn.executemany("INSERT OR REPLACE INTO chains VALUES (?, ?, ?)",
                                       [(s, h, n) for s, (h, n) in heads.items()])
                self._set("next_seq", delivered_seq + 1)
                self._set("seeded", 1)
            self._heads = dict(heads)
            self._next_seq, self._seeded = delivered_seq + 1, True

    def append(self, *, kind: str, at: dt.datetime, method: str | None = None,
               reason: str | None = None, customer_public_id: uuid.UUID | None = None,
               person_public_id: uuid.UUID | None = None,
               refers_door_seq: int | None = None) -> int:
        """Number, chain and commit one event; returns its ``door_seq``.

        :raises SpoolError: the spool was never seeded, or the write failed.
        """
        scope = door_scope(self.door_id, customer_public_id)
        salt = secrets.token_bytes(16) if person_public_id is not None else None
        subject = (subject_digest(salt, person_public_id)
                   if salt is not None and person_public_id is not None else None)
        with self._lock:
            if not self._seeded:
                raise SpoolError(f"the event spool {self.path} has not been started from the "
                                 "site's database yet; the door refuses until it reaches it")
            seq = self._next_seq
            prev, last = self._heads.get(scope, (GENESIS_DIGEST, 0))
            fields = SimpleNamespace(seq=last + 1, at=at, door_id=self.door_id, kind=kind,
                                     method=method, reason=reason, door_seq=seq,
                                     refers_door_seq=refers_door_seq, subject_digest=subject)
            digest = event_digest(prev, fields)  # type: ignore[arg-type]
            try:
                with self._transaction():
                    self._conn.execute(
                        "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (seq, scope, last + 1, to_epoch_micros(at), kind, method, reason,
                         customer_public_id.bytes if customer_public_id else None,
                         person_public_id.bytes if person_public_id else None,
                         salt, subject, prev, digest, refers_door_seq))
                    self._conn.execute("INSERT OR REPLACE INTO chains VALUES (?, ?, ?)",
                                       (scope, digest, last + 1))
                    self._set("next_seq", seq + 1)
            except sqlite3.Error as exc:
                raise SpoolError(f"the event spool {self.path} cannot be written ({exc}); "
                                 "the door refuses") from exc
            self._heads[scope] = (digest, last + 1)
            self._next_seq = seq + 1
            self._depth += 1
            return seq

    def oldest(self, limit: int) -> list[SpooledEvent]:
        """Up to ``limit`` undelivered events, in ``door_seq`` order."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT * FROM events ORDER BY door_seq LIMIT ?", (limit,)).fetchall()
            except sqlite3.Error as exc:
                raise SpoolError(f"the event spool {self.path} cannot be read ({exc})") from exc
        return [_event(row) for row in rows]

    def delivered(self, upto: int) -> int:
        """Delete every event up to ``door_seq`` ``upto`` (the database has them); returns how
        many. Idempotent."""
        with self._lock:
            try:
                with self._transaction():
                    count = self._conn.execute(
                        "DELETE FROM events WHERE door_seq <= ?", (upto,)).rowcount
            except sqlite3.Error as exc:
                raise SpoolError(f"the event spool {self.path} cannot be written ({exc})"
                                 ) from exc
            self._depth -= count
        if count:
            self.scrub()
        return count

    def forget_customers(self, kept: set[uuid.UUID]) -> int:
        """Drop the chains (heads) and undelivered events of customers not in ``kept``: they
        were purged at the site. Returns how many events were dropped."""
        with self._lock:
            gone = [scope for scope in self._heads
                    if scope.startswith("customer:")
                    and uuid.UUID(hex=scope.split(":", 1)[1].split("@", 1)[0]) not in kept]
            if not gone:
                return 0
            count = 0
            try:
                with self._transaction():
                    for scope in gone:
                        count += self._conn.execute(
                            "DELETE FROM events WHERE scope = ?", (scope,)).rowcount
                        self._conn.execute("DELETE FROM chains WHERE scope = ?", (scope,))
            except sqlite3.Error as exc:
                raise SpoolError(f"the event spool {self.path} cannot be written ({exc})"
                                 ) from exc
            for scope in gone:
                del self._heads[scope]
            self._depth -= count
        self.scrub()
        return count

    def scrub(self) -> None:
        """Truncate the WAL: with ``secure_delete`` the main file is zeroed where rows went,
        the ``-wal`` file keeps the old pages until this."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # retried after the next delivery

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _set(self, key: str, value: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        self._conn.execute("ROLLBACK" if kind is not None else "COMMIT")


def _event(row: Any) -> SpooledEvent:
    (seq, scope, chain_seq, at_us, kind, method, reason, customer, person, salt, subject,
     prev, digest, refers) = row
    return SpooledEvent(
        int(seq), str(scope), int(chain_seq), from_epoch_micros(int(at_us)), str(kind),
        method, reason,
        uuid.UUID(bytes=bytes(customer)) if customer else None,
        uuid.UUID(bytes=bytes(person)) if person else None,
        bytes(salt) if salt else None, bytes(subject) if subject else None,
        bytes(prev), bytes(digest), refers)


def spool_digest_check(event: SpooledEvent, door_id: int) -> bool:
    """Whether ``event``'s digest is what its fields and predecessor give."""
    fields = SimpleNamespace(seq=event.chain_seq, at=event.at, door_id=door_id, kind=event.kind,
                             method=event.method, reason=event.reason, door_seq=event.door_seq,
                             refers_door_seq=event.refers_door_seq,
                             subject_digest=event.subject_digest)
    if event.subject_digest is not None and event.person_public_id is not None:
        if event.subject_salt is None or hashlib.sha256(
                event.subject_salt + event.person_public_id.bytes).digest() != event.subject_digest:
            return False
    return event_digest(event.prev_digest, fields) == event.digest  # type: ignore[arg-type]
