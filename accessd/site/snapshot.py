"""A site door's local snapshot: exactly what its decisions need, in a SQLite file of its own,
so that the door decides at the same speed with the site's database up or down.

What is copied is a list, ``SLICES``: each names a local table, its columns, and the query that
selects this door's rows from the site's database. The customers that may use the door (bound to
it, or bound to no door at all), their contract dates and door bindings; their people (active,
restricted, credential, keypad code, PIN hash); their fingers' sensor slots. Templates stay in
the database and on the sensor. A branch that adds decision tables (grants, schedules,
holidays) adds a slice.

``refresh`` copies the door's whole slice in one transaction whenever the site's version moved
(measured: a few milliseconds for a thousand people; incremental copying by version would be
the next step for sites far larger). ``secure_delete`` is on and the WAL is truncated after
each copy, so the file holds nothing of a purged, erased or withdrawn person afterwards.

The snapshot never outlives ``max_staleness``: past it since the door last confirmed its
snapshot current with the site's database, every lookup raises ``SnapshotStaleError`` and the
door refuses everyone with the reason ``snapshot_stale``. A snapshot never filled is stale.

PIN failures are counted here, per door (``SnapshotPinAttempts``): the count must work offline,
and a write to ``persons`` from every door would move the site's version for all of them.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, exists, or_, select

from accessd.customers.pins import verify_pin
from accessd.door.decision import Access, CustomerView, GrantView, PersonView
from accessd.door.logic import CountPinAttempt, PinCheck
from accessd.errors import SnapshotError, SnapshotStaleError
from accessd.models import (
    AuthMode,
    Customer,
    Door,
    Finger,
    Grant,
    Holiday,
    Person,
    SensorSlot,
    SiteVersion,
    Zone,
    door_customers,
)
from accessd.models.base import from_epoch_micros, to_epoch_micros
from accessd.models.enums import Credential

_FINGER = {Credential.FINGER.value, Credential.FINGER_OR_PIN.value}
_PIN = {Credential.PIN.value, Credential.FINGER_OR_PIN.value}


@dataclass(frozen=True)
class Slice:
    """One table of the snapshot: its local name and columns, and this door's rows."""

    table: str
    columns: tuple[str, ...]
    key: str
    rows: Callable[[int], Select[*tuple[Any, ...]]]
    index: tuple[str, ...] = ()


def _customers_at(door_id: int) -> Any:
    bound = select(door_customers.c.customer_id).where(door_customers.c.door_id == door_id)
    unbound = ~exists().where(door_customers.c.customer_id == Customer.id)
    return select(Customer.id).where(or_(Customer.id.in_(bound), unbound))


SLICES: tuple[Slice, ...] = (
    Slice("customers", ("id", "public_id", "contract_start", "contract_end"), "id",
          lambda door: select(Customer.id, Customer.public_id, Customer.contract_start,
                              Customer.contract_end)
          .where(Customer.id.in_(_customers_at(door)))),
    Slice("door_customers", ("customer_id", "door_id"), "customer_id, door_id",
          lambda door: select(door_customers.c.customer_id, door_customers.c.door_id)
          .where(door_customers.c.customer_id.in_(_customers_at(door)))),
    Slice("persons", ("id", "public_id", "customer_id", "active", "restricted", "credential",
                      "keypad_code", "pin_hash"), "id",
          lambda door: select(Person.id, Person.public_id, Person.customer_id, Person.active,
                              Person.restricted, Person.credential, Person.keypad_code,
                              Person.pin_hash)
          .where(Person.customer_id.in_(_customers_at(door))),
          index=("keypad_code",)),
    # This door's own slots (``sensor_slots``): enrolment numbers are site-wide, each door
    # stores a finger at a slot of its own.
    Slice("fingers", ("sensor_slot", "person_id"), "sensor_slot",
          lambda door: select(SensorSlot.slot, Finger.person_id)
          .join(Finger, Finger.id == SensorSlot.finger_id)
          .where(SensorSlot.door_id == door, Finger.customer_id.in_(_customers_at(door)))),
    # Zones and grants (``accessd.zones``): the door's zone and mode, the zone tree, the
    # grants of the customers that may use the door, the site's holidays.
    Slice("door_facts", ("id", "zone_id", "auth_mode"), "id",
          lambda door: select(Door.id, Door.zone_id, Door.auth_mode).where(Door.id == door)),
    Slice("zones", ("id", "parent_id"), "id", lambda door: select(Zone.id, Zone.parent_id)),
    Slice("grants", ("id", "customer_id", "person_id", "zone_id", "schedule",
                     "closed_on_holidays", "valid_from", "valid_until"), "id",
          lambda door: select(Grant.id, Grant.customer_id, Grant.person_id, Grant.zone_id,
                              Grant.schedule, Grant.closed_on_holidays, Grant.valid_from,
                              Grant.valid_until)
          .where(Grant.customer_id.in_(_customers_at(door))), index=("customer_id",)),
    Slice("holidays", ("day",), "day", lambda door: select(Holiday.day)),
)
"""What a door copies. Add a ``Slice`` for each table its decisions come to depend on."""

_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)"
_PIN_LOCKS = ("CREATE TABLE IF NOT EXISTS pin_locks (person_id INTEGER PRIMARY KEY, "
              "failures INTEGER NOT NULL, locked_until_us INTEGER)")


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, bool)):  # an enum
        return value.value
    return value


_ZONE_DEPTH = 16  # as ``accessd.door.directory``'s walk of the zones around a door


def _day(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


class Snapshot:
    """The snapshot file of one site door. Thread-safe; open with ``Snapshot.open``.

    :param now: the current moment, aware UTC (staleness, PIN locks).
    :param max_staleness: how long a snapshot may go without being confirmed current.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, door_id: int, *,
                 now: Callable[[], dt.datetime], max_staleness: dt.timedelta) -> None:
        self.path = path
        self.door_id = door_id
        self._conn = conn
        self._lock = threading.Lock()
        self._now = now
        self.max_staleness = max_staleness
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        self.version = int(meta.get("version", -1))
        confirmed = meta.get("confirmed_us")
        self.confirmed_at = from_epoch_micros(int(confirmed)) if confirmed else None

    @classmethod
    def open(cls, path: Path, door_id: int, *, now: Callable[[], dt.datetime],
             max_staleness: dt.timedelta) -> Snapshot:
        """:raises SnapshotError: the file cannot be created or read."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.touch(mode=0o600)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA synchronous = NORMAL")  # a lost copy is copied again
            conn.execute(_META)
            conn.execute(_PIN_LOCKS)
            for part in SLICES:
                conn.execute(f"CREATE TABLE IF NOT EXISTS {part.table} "
                             f"({', '.join(part.columns)}, PRIMARY KEY ({part.key}))")
                for column in part.index:
                    conn.execute(f"CREATE INDEX IF NOT EXISTS ix_{part.table}_{column} "
                                 f"ON {part.table} ({column})")
            row = conn.execute("SELECT value FROM meta WHERE key = 'door_id'").fetchone()
            if row is not None and int(row[0]) != door_id:
                raise SnapshotError(f"the snapshot {path} is door #{row[0]}'s, not "
                                    f"#{door_id}'s: move it away; the door copies a new one")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('door_id', ?)", (door_id,))
        except sqlite3.Error as exc:
            raise SnapshotError(f"the snapshot {path} cannot be opened ({exc}); the door "
                                "refuses until it can: check the disk") from exc
        return cls(path, conn, door_id, now=now, max_staleness=max_staleness)

    # --- kept current (the sync thread) ------------------------------------------------------

    def refresh(self, conn: Connection, *, force: bool = False) -> bool:
        """Bring the snapshot to the site's current version from ``conn`` (give it the
        REPEATABLE READ isolation level on PostgreSQL, so the version and the rows agree);
        returns True if it copied.

        :raises SQLAlchemyError: the database could not be read (the snapshot is unchanged).
        """
        version = int(conn.execute(select(SiteVersion.version).where(SiteVersion.id == 1))
                      .scalar() or 0)
        now = self._now()
        if version == self.version and not force:
            self._confirm(now)
            return False
        rows = {part.table: [tuple(_plain(v) for v in row)
                             for row in conn.execute(part.rows(self.door_id))]
                for part in SLICES}
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for part in SLICES:
                    # Table names come from SLICES, never from outside.
                    self._conn.execute(f"DELETE FROM {part.table}")  # noqa: S608
                    marks = ", ".join("?" * len(part.columns))
                    self._conn.executemany(f"INSERT INTO {part.table} VALUES ({marks})",  # noqa: S608
                                           rows[part.table])
                self._conn.execute("DELETE FROM pin_locks WHERE person_id NOT IN "
                                   "(SELECT id FROM persons)")
                self._set("version", version)
                self._set("confirmed_us", to_epoch_micros(now))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise SnapshotError(f"the snapshot {self.path} cannot be written ({exc})"
                                    ) from exc
            # Deleted rows are zeroed in the file (secure_delete); the WAL keeps them until
            # it is truncated.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.version, self.confirmed_at = version, now
        return True

    def customers(self) -> set[uuid.UUID]:
        """The public ids of the customers in the snapshot."""
        with self._lock:
            return {uuid.UUID(bytes=bytes(raw))
                    for (raw,) in self._conn.execute("SELECT public_id FROM customers")}

    def age(self) -> dt.timedelta | None:
        """How long since the snapshot was last confirmed current (None: never filled)."""
        return None if self.confirmed_at is None else self._now() - self.confirmed_at

    def stale(self) -> bool:
        age = self.age()
        return age is None or age > self.max_staleness

    def _confirm(self, now: dt.datetime) -> None:
        with self._lock:
            self._set("confirmed_us", to_epoch_micros(now))
            self.confirmed_at = now

    def _set(self, key: str, value: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- the door's lookups (``accessd.door.logic.Directory``) -------------------------------

    def by_slot(self, slot: int) -> tuple[CustomerView, PersonView] | None:
        """Who holds ``slot``, from the snapshot.

        :raises SnapshotStaleError: the snapshot is past its staleness limit.
        """
        self._fresh()
        with self._lock:
            row = self._conn.execute(
                "SELECT p.id FROM fingers f JOIN persons p ON p.id = f.person_id "
                "WHERE f.sensor_slot = ?", (slot,)).fetchone()
            return None if row is None else self._views(int(row[0]))

    def by_code(self, code: str) -> tuple[CustomerView, PersonView] | None:
        """Whose person code ``code`` is, from the snapshot (a 1:1 finger check follows).

        :raises SnapshotStaleError: the snapshot is past its staleness limit.
        """
        self._fresh()
        with self._lock:
            row = self._conn.execute("SELECT id FROM persons WHERE keypad_code = ?",
                                     (code,)).fetchone()
            return None if row is None else self._views(int(row[0]))

    def access(self, person: PersonView, door_id: int, day: dt.date) -> Access:
        """The person's grants covering the door, the door's mode and today's holiday, from
        the snapshot: the same answer as ``SqlDirectory.access`` on the site's database.

        :raises SnapshotStaleError: the snapshot is past its staleness limit.
        """
        self._fresh()
        with self._lock:
            door = self._conn.execute("SELECT zone_id, auth_mode FROM door_facts WHERE id = ?",
                                      (door_id,)).fetchone()
            if door is None:
                return Access(())
            zone_id, mode = door
            parents = dict(self._conn.execute("SELECT id, parent_id FROM zones").fetchall())
            depths: dict[int, int] = {}
            depth = 0
            while zone_id is not None and depth <= _ZONE_DEPTH and zone_id not in depths:
                depths[zone_id] = depth
                zone_id, depth = parents.get(zone_id), depth + 1
            rows = self._conn.execute(
                "SELECT person_id, zone_id, schedule, closed_on_holidays, valid_from, "
                "valid_until FROM grants WHERE customer_id = ? AND (person_id IS NULL OR "
                "person_id = ?)", (person.customer_id, person.id)).fetchall()
            limited = self._conn.execute("SELECT 1 FROM grants WHERE person_id = ? LIMIT 1",
                                         (person.id,)).fetchone() is not None
            holiday = self._conn.execute("SELECT 1 FROM holidays WHERE day = ?",
                                         (day.isoformat(),)).fetchone() is not None
        grants = tuple(GrantView(depths[zone], person_id is not None, schedule,
                                 bool(closed), _day(valid_from), _day(valid_until))
                       for person_id, zone, schedule, closed, valid_from, valid_until in rows
                       if zone in depths)
        return Access(grants, person_limited=limited, holiday=holiday, mode=AuthMode(mode))

    def check_pin(self, code: str, pin: str) -> PinCheck:
        """Whose code ``code`` is and whether ``pin`` is theirs, from the snapshot.

        :raises SnapshotStaleError: the snapshot is past its staleness limit.
        """
        self._fresh()
        with self._lock:
            row = self._conn.execute(
                "SELECT p.id, p.pin_hash, l.locked_until_us FROM persons p LEFT JOIN pin_locks "
                "l ON l.person_id = p.id WHERE p.keypad_code = ?", (code,)).fetchone()
            if row is None or row[1] is None:
                return PinCheck(None, None, accepted=False)
            views = self._views(int(row[0]))
        assert views is not None
        if row[2] is not None and from_epoch_micros(int(row[2])) > self._now():
            return PinCheck(*views, accepted=False, locked=True)
        return PinCheck(*views, accepted=verify_pin(str(row[1]), pin))

    def count_pin_attempt(self, attempt: CountPinAttempt, *, max_failures: int,
                          lockout: dt.timedelta) -> None:
        """Count a typed PIN towards its holder's lockout at this door."""
        with self._lock:
            row = self._conn.execute("SELECT failures FROM pin_locks WHERE person_id = ?",
                                     (attempt.person_id,)).fetchone()
            failures = 0 if attempt.right else (int(row[0]) if row else 0) + 1
            locked = None
            if failures >= max_failures:
                failures, locked = 0, to_epoch_micros(self._now() + lockout)
            self._conn.execute("INSERT OR REPLACE INTO pin_locks VALUES (?, ?, ?)",
                               (attempt.person_id, failures, locked))

    def _fresh(self) -> None:
        if self.stale():
            age = self.age()
            since = ("was never filled from the site's database" if age is None
                     else f"was last confirmed current {age.total_seconds() / 3600:.1f} h ago")
            raise SnapshotStaleError(
                f"the door's snapshot {since}, past its limit of "
                f"{self.max_staleness.total_seconds() / 3600:g} h: the door refuses everyone "
                "until it reaches the site's database again")

    def _views(self, person_id: int) -> tuple[CustomerView, PersonView] | None:
        row = self._conn.execute(
            "SELECT p.id, p.customer_id, p.active, p.restricted, p.credential, p.public_id, "
            "c.contract_start, c.contract_end, c.public_id FROM persons p JOIN customers c "
            "ON c.id = p.customer_id WHERE p.id = ?", (person_id,)).fetchone()
        if row is None:
            return None
        pid, cid, active, restricted, credential, person_uuid, start, end, customer_uuid = row
        doors = [d for (d,) in self._conn.execute(
            "SELECT door_id FROM door_customers WHERE customer_id = ?", (cid,))]
        return (CustomerView(cid, dt.date.fromisoformat(start),
                             dt.date.fromisoformat(end) if end else None,
                             frozenset(doors) if doors else None,
                             uuid.UUID(bytes=bytes(customer_uuid))),
                PersonView(pid, cid, bool(active), bool(restricted), credential in _FINGER,
                           credential in _PIN, uuid.UUID(bytes=bytes(person_uuid))))

    def file_bytes(self) -> Iterable[bytes]:
        """The snapshot's files' contents (main and WAL), for checks that nothing remains."""
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            if path.exists():
                yield path.read_bytes()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SnapshotPinAttempts:
    """``accessd.door.pin_attempts.PinAttempts`` for a site door: counted in its snapshot."""

    def __init__(self, snapshot: Snapshot, *, max_failures: int, lockout: dt.timedelta) -> None:
        self._snapshot = snapshot
        self._max_failures = max_failures
        self._lockout = lockout

    def count(self, attempt: CountPinAttempt) -> None:
        self._snapshot.count_pin_attempt(attempt, max_failures=self._max_failures,
                                         lockout=self._lockout)
