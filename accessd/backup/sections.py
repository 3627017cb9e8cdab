"""What a backup holds, section by section, and how a restore puts the database back together.

A backup is cut along the lines a purge and an erasure cut:

- **the installation's section** (under the backup's file key): the whole schema, and every row
  that belongs to no customer and no person: doors, staff accounts, the audit log, alarms, the
  facility's history chain (any link from one of its events to a person taken out), purge
  records and the erasure ledger;
- **one section per customer** (under that customer's key): its row (name, contract, basis),
  its data key as stored (wrapped by the master key: a restore after a lost disk gives its people
  their fingers back), door grants and zone grants (a person's own in their record), history
  chain and events (links to people taken out), requests naming the customer but no person;
  and one **sealed record per person** (under that person's key): the person's row (name,
  e-mail, notes, PIN hash, keypad code, restriction), fingers with their template ciphertexts,
  sensor slots, consents, their own zone grants, pending commands, requests naming them, and
  which events of any history are theirs (event id and salt).

So destroying a customer's key makes all of that unreadable in every backup, and destroying a
person's key makes the person unreadable (their events anonymous, as an erasure leaves them in
the database). Which table goes where is ``PLAN``; a table with a ``customer_id`` or
``person_id`` column that the plan does not name is refused, so that a new table cannot slip
personal data into the installation's section unnoticed.

Speed: the rows move through SQLite (``ATTACH``, ``INSERT ... SELECT``), in C. One read
transaction copies the installation's rows into their section and everything else into a
staging file, sorted by customer (one external sort of the history instead of a seek per event
later: each customer's rows are then one run of rowids), and counts each customer's rows in the
live tables (an index scan), which gives the runs without reading the staged copy again. The
customer sections are then cut from that file one by one, in memory unless a customer's history
is large. Python touches only the per-person records, a handful of rows each; their event links
are gathered by SQLite too (the ids as text, the salts as one blob per person).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from accessd.errors import BackupError

NONCE_BYTES = 12
PEOPLE_TABLE = "backup_people"
_PERSON_AAD = b"accessd/backup-person/v2\x00"
_LINK = struct.Struct(">qB")
_JSON_LEN = struct.Struct(">I")
_BULK_LINKS = 0x8000_0000  # in _JSON_LEN: the links follow as _BULK, ids, salts
_BULK = struct.Struct(">BI")  # every salt's length, the length of the ids' text
_IN_MEMORY_EVENTS = 50_000  # a section with at most this many events is cut in memory (~10 MB)
_BLOCK = 1 << 20
_SORT_CACHE_KIB = 8 * 1024  # the snapshot's sort of the history: seconds, then freed
_BATCH = 50_000


@dataclass(frozen=True, slots=True)
class Ownership:
    """Who a table's rows belong to, as SQL over the row (alias ``t``): a customer, a person
    (whose record then holds the row), or, where both are NULL, the installation."""

    customer: str
    person: str | None = None


_FINGER_OF = "(SELECT {0} FROM main.fingers f WHERE f.id = t.finger_id)"
_PERSON_OF = "(SELECT customer_id FROM main.persons p WHERE p.id = t.person_id)"
PLAN: dict[str, Ownership] = {
    "customers": Ownership("t.id"),
    "data_keys": Ownership("t.customer_id"),
    "door_customers": Ownership("t.customer_id"),
    "event_chains": Ownership("t.customer_id"),
    "access_events": Ownership("t.customer_id"),
    "persons": Ownership("t.customer_id", "t.id"),
    "fingers": Ownership("t.customer_id", "t.person_id"),
    "consents": Ownership("t.customer_id", "t.person_id"),
    "grants": Ownership("t.customer_id", "t.person_id"),
    "sensor_slots": Ownership(_FINGER_OF.format("customer_id"), _FINGER_OF.format("person_id")),
    "device_commands": Ownership(_PERSON_OF, "t.person_id"),
    "data_subject_requests": Ownership(f"COALESCE({_PERSON_OF}, t.customer_id)", "t.person_id"),
}
"""Every table whose rows can belong to a customer or a person; the rest is the installation's."""
DERIVED = frozenset({"person_events"})
"""Tables rebuilt from the event links at restore, never copied (they link people to events)."""
EVENTS, LINK_COLUMNS = "access_events", ("person_id", "subject_salt")


@dataclass
class Snapshot:
    """The database split into the installation's section and a staging file, from one read
    transaction; ``people[customer id]`` lists (person id, public id) sorted by id."""

    installation: Path
    staging: Path
    customers: list[tuple[int, uuid.UUID]]
    people: dict[int, list[tuple[int, uuid.UUID]]] = field(default_factory=dict)
    # staged table -> customer id -> (first, last) rowid: each customer's rows, in one run
    ranges: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)

    @property
    def staged(self) -> list[str]:
        """The planned tables this database has, as staged (``stray_links`` aside)."""
        return [name for name in PLAN if name in self.ranges]

    def rows_of(self, table: str, customer_id: int) -> tuple[int, int]:
        """The rowid range of ``customer_id``'s rows in staged ``table`` (empty: (1, 0))."""
        return self.ranges.get(table, {}).get(customer_id, (1, 0))


def check_plan(tables: dict[str, list[str]]) -> None:
    """Refuse a schema with a table that names a customer or a person but is not planned.

    :raises BackupError: naming the table: ``accessd.backup.sections.PLAN`` must say whose
        its rows are before any backup is written.
    """
    for name, columns in tables.items():
        if name in PLAN or name in DERIVED:
            continue
        if {"customer_id", "person_id"} & set(columns):
            raise BackupError(f"table {name} names customers or people, but the backup does not "
                              "know whose its rows are (accessd.backup.sections.PLAN): no backup "
                              "is written until it does")


@contextlib.contextmanager
def scratch_on(work: Path) -> Iterator[None]:
    """SQLite's own temporary files (the sorter's runs, spilled temporary tables: plaintext
    rows) in ``work``, next to the database, instead of /var/tmp; as it was afterwards.
    Process-wide (SQLite has no other way): the command line's processes only."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        before = db.execute("PRAGMA temp_store_directory").fetchone()
        db.execute("PRAGMA temp_store_directory = " + _literal(str(work)))
        try:
            yield
        finally:
            db.execute("PRAGMA temp_store_directory = " + _literal(before[0] if before else ""))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def take_snapshot(db_path: Path, work: Path) -> Snapshot:
    """Split the live database in one read transaction (the doors keep writing meanwhile).

    :raises BackupError: the database cannot be read, or its schema is not planned.
    """
    snapshot = Snapshot(work / "installation.sqlite3", work / "staging.sqlite3", [])
    try:
        with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as db:
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("BEGIN")  # deferred: a WAL read snapshot, no lock the doors wait for
            schema = db.execute(
                "SELECT type, name, sql FROM main.sqlite_master WHERE sql IS NOT NULL AND name "
                "NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid"
            ).fetchall()
            tables = {name: _columns(db, "main", name) for kind, name, _ in schema
                      if kind == "table"}
            check_plan(tables)
            db.execute("COMMIT")
            _create(snapshot.installation, [sql for _, _, sql in schema])
            _create(snapshot.staging, [])
            for name, path in (("inst", snapshot.installation), ("stage", snapshot.staging)):
                db.execute(f"ATTACH ? AS {name}", (str(path),))
                _scratch(db, name)
            db.execute(f"PRAGMA cache_size = -{_SORT_CACHE_KIB}")
            db.execute("BEGIN")
            _copy(db, tables)
            snapshot.customers = [(cid, uuid.UUID(str(pid))) for cid, pid in db.execute(
                "SELECT id, public_id FROM main.customers ORDER BY id")]
            for pid, cid, public_id in db.execute(
                    "SELECT id, customer_id, public_id FROM main.persons ORDER BY id"):
                snapshot.people.setdefault(cid, []).append((pid, uuid.UUID(str(public_id))))
            for name in (t for t in PLAN if t in tables):
                snapshot.ranges[name] = _runs(db, name)
            db.execute("COMMIT")
            snapshot.ranges["stray_links"] = {
                customer: (first, last) for customer, first, last in db.execute(
                    "SELECT backup_customer, min(rowid), max(rowid) FROM stage.stray_links "
                    "GROUP BY backup_customer")}
    except sqlite3.Error as exc:
        raise BackupError(f"cannot take a snapshot of {db_path} ({exc}); if the database is "
                          "damaged, run `accessd doctor` and restore the last good backup"
                          ) from exc
    return snapshot


def _runs(db: sqlite3.Connection, name: str) -> dict[int, tuple[int, int]]:
    """Each customer's run of rowids in staged table ``name``, from the live table in the
    snapshot's transaction: the staged copy was written in customer order (NULL first, as
    SQLite sorts), with rowids from 1, so counting each customer's rows there gives its run
    without reading the copy again (for the history: an index scan, not 200 MB)."""
    plan = PLAN[name]
    person = plan.person or "NULL"
    runs: dict[int, tuple[int, int]] = {}
    counted = db.execute(f"SELECT ({plan.customer}) AS c, count(*) FROM main.{_q(name)} AS t "
                         f"WHERE NOT (({plan.customer}) IS NULL AND ({person}) IS NULL) "
                         "GROUP BY 1").fetchall()
    first = 1
    for customer, count in sorted(counted, key=lambda row: (row[0] is not None, row[0] or 0)):
        runs[customer] = (first, first + count - 1)
        first += count
    return runs


def _create(path: Path, statements: list[str]) -> None:
    private_file(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        _scratch(db, "main")
        for sql in statements:
            db.execute(sql)


def private_file(path: Path) -> None:
    """An empty file, mode 0600, for SQLite to make a database of (it keeps the mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _scratch(db: sqlite3.Connection, schema: str) -> None:
    # Private files, discarded whole on any failure and fsynced once when complete: no journal.
    db.execute(f"PRAGMA {schema}.journal_mode = OFF")
    db.execute(f"PRAGMA {schema}.synchronous = OFF")


def _q(name: str) -> str:
    """An SQL identifier, quoted (names come from the schema; values are always bound)."""
    return '"' + name.replace('"', '""') + '"'


def _columns(db: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA {schema}.table_info({_q(table)})")]


def _names(columns: list[str]) -> str:
    return ", ".join(_q(c) for c in columns)


def _select(columns: list[str], strip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"NULL AS {_q(c)}" if c in strip else f"t.{_q(c)}" for c in columns)


def _copy(db: sqlite3.Connection, tables: dict[str, list[str]]) -> None:
    for name, columns in tables.items():
        if name in DERIVED:
            continue
        names, table = _names(columns), _q(name)
        plan = PLAN.get(name)
        if plan is None:
            db.execute(f"INSERT INTO inst.{table} ({names}) SELECT {names} FROM main.{table}")
            continue
        strip = LINK_COLUMNS if name == EVENTS else ()
        person = plan.person or "NULL"
        nobody = f"({plan.customer}) IS NULL AND ({person}) IS NULL"
        db.execute(f"INSERT INTO inst.{table} ({names}) SELECT {_select(columns, strip)} "
                   f"FROM main.{table} AS t WHERE {nobody}")
        # Sorted by customer: each customer's rows end up together, so cutting its section
        # later reads them in sequence instead of seeking once per event.
        db.execute(f"CREATE TABLE stage.{table} AS SELECT ({plan.customer}) AS backup_customer, "
                   f"({person}) AS backup_person, {_select(columns)} FROM main.{table} AS t "
                   f"WHERE NOT ({nobody}) ORDER BY +({plan.customer}), t.rowid")
    # Events of the facility's chain that name a person: their link goes to that person.
    db.execute("CREATE TABLE stage.stray_links AS SELECT p.customer_id AS backup_customer, "
               "e.person_id, e.id AS event_id, e.subject_salt FROM main.access_events e "
               "JOIN main.persons p ON p.id = e.person_id WHERE e.customer_id IS NULL")


PersonKey = Callable[[uuid.UUID], tuple[str, bytes] | None]
"""A person's public id -> (their digest, their key), or None to leave them out (erased)."""


@contextlib.contextmanager
def customer_section(snapshot: Snapshot, customer_id: int, customer: str, work: Path,
                     person_key: PersonKey) -> Iterator[Iterable[bytes]]:
    """The section of one customer (``customer``: its digest), a SQLite database, as blocks of
    bytes. Built in memory when its history is small enough (no file to write, read back and
    delete), else in a file in ``work``, deleted afterwards."""
    in_memory = _rows(snapshot.rows_of(EVENTS, customer_id)) <= _IN_MEMORY_EVENTS
    out = work / f"customer-{customer_id}.sqlite3"
    if not in_memory:
        private_file(out)
    try:
        with contextlib.closing(sqlite3.connect(snapshot.staging, isolation_level=None)) as db:
            db.execute("ATTACH ? AS sec", (":memory:" if in_memory else str(out),))
            _scratch(db, "sec")
            _fill_section(db, snapshot, customer_id, customer, person_key)
            image = db.serialize(name="sec") if in_memory else None
            db.execute("DETACH sec")
        if image is not None:
            yield [image]
        else:
            with out.open("rb") as plain:
                yield iter(lambda: plain.read(_BLOCK), b"")
    finally:
        with contextlib.suppress(FileNotFoundError):
            out.unlink()


def _rows(run: tuple[int, int]) -> int:
    return max(0, run[1] - run[0] + 1)


def _fill_section(db: sqlite3.Connection, snapshot: Snapshot, customer_id: int, customer: str,
                  person_key: PersonKey) -> None:
    db.execute("BEGIN")
    for name in snapshot.staged:
        columns = _columns(db, "main", name)[2:]  # after backup_customer, backup_person
        strip = LINK_COLUMNS if name == EVENTS else ()
        db.execute(f"CREATE TABLE sec.{_q(name)} AS SELECT {_select(columns, strip)} FROM "
                   f"main.{_q(name)} AS t WHERE rowid BETWEEN ? AND ? "
                   "AND backup_person IS NULL", snapshot.rows_of(name, customer_id))
    db.execute(f"CREATE TABLE sec.{PEOPLE_TABLE} (person_id INTEGER PRIMARY KEY, "
               "person_digest TEXT, record BLOB)")
    rows = _person_rows(db, snapshot, customer_id)
    links = _links(db, snapshot, customer_id)
    sealed = []
    for person_id, public_id in snapshot.people.get(customer_id, []):
        found = person_key(public_id)
        if found is not None:
            digest, key = found
            record = pack_record(rows.pop(person_id, {}), links.pop(person_id, []))
            sealed.append((person_id, digest, seal_record(key, customer, digest, record)))
    db.executemany(f"INSERT INTO sec.{PEOPLE_TABLE} VALUES (?, ?, ?)", sealed)
    db.execute("COMMIT")


def _person_rows(db: sqlite3.Connection, snapshot: Snapshot,
                 customer_id: int) -> dict[int, dict[str, tuple[list[str], list[Any]]]]:
    found: dict[int, dict[str, tuple[list[str], list[Any]]]] = {}
    for name in snapshot.staged:
        if PLAN[name].person is None:
            continue
        columns = _columns(db, "main", name)[2:]
        for row in db.execute(f"SELECT backup_person, {_select(columns)} FROM main.{_q(name)} "
                              "AS t WHERE rowid BETWEEN ? AND ? AND backup_person IS NOT NULL",
                              snapshot.rows_of(name, customer_id)):
            tables = found.setdefault(row[0], {})
            tables.setdefault(name, (columns, []))[1].append(row[1:])
    return found


Links = list[tuple[str, bytes, int] | bytes]
"""A person's event links, in parts: (event ids in decimal, comma-separated; their salts
end to end; each salt's length), or bytes already packed the old way (``_LINK`` each)."""


def _links(db: sqlite3.Connection, snapshot: Snapshot, customer_id: int) -> dict[int, Links]:
    """Per person of the customer: (event id, salt) of every event naming them, gathered by
    SQLite (a million events are not a million Python objects): the ids as text, the salts
    as one blob. A person whose salts are not all of one length (or missing) gets them packed
    one by one instead, the old way."""
    links: dict[int, Links] = {}
    for table, event_id in ((EVENTS, "id"), ("stray_links", "event_id")):
        run = snapshot.rows_of(table, customer_id)
        uneven = []
        for person_id, ids, salts, count, salted, shortest, longest in db.execute(
                f"SELECT person_id, group_concat({event_id}), "
                "CAST(group_concat(subject_salt, '') AS BLOB), count(*), count(subject_salt), "
                f"min(length(subject_salt)), max(length(subject_salt)) FROM main.{table} "
                "WHERE rowid BETWEEN ? AND ? AND person_id IS NOT NULL GROUP BY person_id", run):
            if salted == count and shortest == longest and len(salts or b"") == count * longest:
                links.setdefault(person_id, []).append((ids, salts or b"", longest))
            else:
                uneven.append(person_id)
        if uneven:
            packed = ("group_concat(printf('%016x%02x', {0}, coalesce(length(subject_salt), 0))"
                      " || coalesce(hex(subject_salt), ''), '')")
            for person_id, text in db.execute(
                    f"SELECT person_id, {packed.format(event_id)} FROM main.{table} WHERE rowid "
                    "BETWEEN ? AND ? AND person_id IN (SELECT value FROM json_each(?)) "
                    "GROUP BY person_id", (*run, json.dumps(uneven))):
                links.setdefault(person_id, []).append(bytes.fromhex(text))
    return links


# --- a person's record ------------------------------------------------------------------------


def pack_record(tables: dict[str, tuple[list[str], list[Any]]], links: Links) -> bytes:
    """A person's rows (table -> columns, rows) and event links, as one byte string.

    After the JSON of the rows (its length first), the links: when every salt has one length,
    that length (u8), the event ids in decimal (u32 length, then "id,id,..."), then the salts
    end to end, the length field's high bit saying so; else ``_LINK`` and salt, link by link
    (what every record held before 2026-11, still read)."""
    head = json.dumps({name: {"columns": columns, "rows": rows}
                       for name, (columns, rows) in tables.items()},
                      default=_json_bytes).encode("utf-8")
    whole = [part for part in links if not isinstance(part, bytes)]
    if links and len(whole) == len(links) and len({length for _, _, length in whole}) == 1:
        ids = ",".join(ids for ids, _, _ in whole).encode("ascii")
        return b"".join((_JSON_LEN.pack(len(head) | _BULK_LINKS), head,
                         _BULK.pack(whole[0][2], len(ids)), ids,
                         *(salts for _, salts, _ in whole)))
    return _JSON_LEN.pack(len(head)) + head + b"".join(_one_by_one(part) for part in links)


def _one_by_one(part: tuple[str, bytes, int] | bytes) -> bytes:
    if isinstance(part, bytes):
        return part
    ids, salts, length = part
    return b"".join(_LINK.pack(int(event_id), length) + salts[i * length:(i + 1) * length]
                    for i, event_id in enumerate(ids.split(",")))


def unpack_record(record: bytes) -> tuple[dict[str, tuple[list[str], list[list[Any]]]],
                                          list[tuple[int, bytes | None]]]:
    """The inverse of ``pack_record``: tables, and (event id, salt) links.

    :raises ValueError: the record is not one ``pack_record`` wrote (it authenticated, so
        only a bug gets here).
    """
    (length,) = _JSON_LEN.unpack_from(record)
    bulk, length = bool(length & _BULK_LINKS), length & ~_BULK_LINKS
    head = json.loads(record[_JSON_LEN.size:_JSON_LEN.size + length])
    tables = {name: (item["columns"], [[_unjson(v) for v in row] for row in item["rows"]])
              for name, item in head.items()}
    links: list[tuple[int, bytes | None]] = []
    offset = _JSON_LEN.size + length
    if bulk:
        salt_len, ids_len = _BULK.unpack_from(record, offset)
        offset += _BULK.size
        ids = record[offset:offset + ids_len].split(b",")
        offset += ids_len
        if len(record) - offset != len(ids) * salt_len:
            raise ValueError("a person record's links do not add up")
        for i, event_id in enumerate(ids):
            start = offset + i * salt_len
            links.append((int(event_id), record[start:start + salt_len] or None))
        return tables, links
    while offset < len(record):
        event_id, salt_len = _LINK.unpack_from(record, offset)
        offset += _LINK.size
        links.append((event_id, record[offset:offset + salt_len] or None))
        offset += salt_len
    return tables, links


def _json_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"a backup record cannot hold {type(value).__name__}")


def _unjson(value: Any) -> Any:
    if isinstance(value, dict):
        return base64.b64decode(value["b"])
    return value


def _person_aad(customer: str, person: str) -> bytes:
    return _PERSON_AAD + customer.encode("ascii") + b"\x00" + person.encode("ascii")


def seal_record(key: bytes, customer: str, person: str, record: bytes) -> bytes:
    """A person's record under their key, bound to their customer's and their digest."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, record, _person_aad(customer, person))


def open_record(key: bytes, customer: str, person: str, sealed: bytes) -> bytes:
    """The record ``seal_record`` sealed.

    :raises BackupError: it does not authenticate under this key for this person.
    """
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                   _person_aad(customer, person))
    except (InvalidTag, ValueError):
        raise BackupError(f"the record of person {person[:12]}… does not open under their key "
                          "in the backup key file: the backup or the key file was altered; "
                          "use another backup") from None


# --- putting it back together -----------------------------------------------------------------


@dataclass
class MergeCounts:
    """What merging customer sections into the restored database did."""

    customers: int = 0
    persons: int = 0
    persons_without_key: int = 0
    links: int = 0


class Merger:
    """Merges customer sections into the restored database at ``path`` (the installation's
    section, already written there), linking events back to the people that came back.

    The database's indexes and triggers are set aside while the rows pour in and rebuilt at the
    end (``finish``): building an index once is one sort, keeping it up to date while a million
    rows arrive is a million seeks. For the same reason the history is held in ``hold`` (a
    scratch file) and goes into its table in one sorted pass: customer by customer, its ids
    would land all over the table.
    """

    def __init__(self, path: Path, hold: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        _scratch(self._db, "main")  # a scratch copy until it is fsynced and swapped in
        private_file(hold)
        self._db.execute("ATTACH ? AS hold", (str(hold),))
        _scratch(self._db, "hold")
        self._db.execute(f"CREATE TABLE hold.{_q(EVENTS)} AS SELECT * FROM main.{_q(EVENTS)} "
                         "WHERE 0")
        self._schema: dict[str, set[str]] = {}
        self._rebuild = self._db.execute(
            "SELECT type, name, sql FROM main.sqlite_master WHERE type IN ('index', 'trigger') "
            "AND sql IS NOT NULL ORDER BY type, rowid").fetchall()
        for kind, name, _ in self._rebuild:
            self._db.execute(f"DROP {kind.upper()} main.{_q(name)}")
        self._db.execute("CREATE TEMP TABLE restore_links (event_id INTEGER PRIMARY KEY, "
                         "person_id INTEGER, salt BLOB)")
        self.counts = MergeCounts()

    def merge(self, section: Path, customer: str,
              person_key: Callable[[str], bytes | None]) -> None:
        """Add one customer's section (``customer``: its digest); a person whose key is gone
        (``person_key(digest)`` is None) stays out, their events anonymous: erased."""
        db = self._db
        db.execute("ATTACH ? AS sec", (str(section),))
        try:
            db.execute("BEGIN")
            self._people(customer, person_key)
            for (name,) in db.execute(
                    "SELECT name FROM sec.sqlite_master WHERE type = 'table'").fetchall():
                if name == PEOPLE_TABLE:
                    continue
                columns = self._known(name, _columns(db, "sec", name))
                if name == EVENTS:  # links restored on the way in; unknown ones stay NULL
                    db.execute(f"INSERT INTO hold.{_q(name)} ({_names(columns)}) SELECT "
                               + ", ".join(f"l.{'salt' if c == 'subject_salt' else c}"
                                           if c in LINK_COLUMNS else f"e.{_q(c)}"
                                           for c in columns)
                               + f" FROM sec.{_q(name)} AS e LEFT JOIN temp.restore_links AS l"
                               " ON l.event_id = e.id")
                    continue
                db.execute(f"INSERT INTO main.{_q(name)} ({_names(columns)}) SELECT "
                           f"{_names(columns)} FROM sec.{_q(name)}")
            # What is left are links to events of the facility's chain, linked in ``finish``:
            # kept small, each customer's lookups stay in memory.
            db.execute(f"DELETE FROM temp.restore_links WHERE event_id IN "
                       f"(SELECT id FROM sec.{_q(EVENTS)})")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        finally:
            db.execute("DETACH sec")
        self.counts.customers += 1

    def _people(self, customer: str, person_key: Callable[[str], bytes | None]) -> None:
        """Open every person record of the section; insert their rows and note their links
        (in batches: one executemany per table, not per person; memory stays bounded)."""
        rows: dict[tuple[str, tuple[str, ...]], list[list[Any]]] = {}
        links: list[tuple[int, int, bytes | None]] = []
        for person_id, digest, sealed in self._db.execute(
                f"SELECT person_id, person_digest, record FROM sec.{PEOPLE_TABLE}").fetchall():
            key = person_key(digest)
            if key is None:
                self.counts.persons_without_key += 1
                continue
            tables, theirs = unpack_record(open_record(key, customer, digest, sealed))
            for name, (columns, table_rows) in tables.items():
                rows.setdefault((name, tuple(columns)), []).extend(table_rows)
            links.extend((event_id, person_id, salt) for event_id, salt in theirs)
            self.counts.persons += 1
            if len(links) + sum(map(len, rows.values())) >= _BATCH:
                self._insert(rows, links)
        self._insert(rows, links)

    def _insert(self, rows: dict[tuple[str, tuple[str, ...]], list[list[Any]]],
                links: list[tuple[int, int, bytes | None]]) -> None:
        for (name, named), table_rows in rows.items():
            marks = ", ".join("?" * len(named))
            self._db.executemany(f"INSERT INTO main.{_q(name)} "
                                 f"({_names(self._known(name, list(named)))}) "
                                 f"VALUES ({marks})", table_rows)
        links.sort()
        self._db.executemany("INSERT OR REPLACE INTO temp.restore_links VALUES (?, ?, ?)", links)
        self.counts.links += len(links)
        rows.clear()
        links.clear()

    def _known(self, table: str, columns: list[str]) -> list[str]:
        """``columns``, if the restored schema has ``table`` with all of them."""
        if table not in self._schema:
            self._schema[table] = set(_columns(self._db, "main", table))
        if not self._schema[table] or not set(columns) <= self._schema[table]:
            raise BackupError(f"a customer section has table {table} with columns the "
                              "installation's section lacks: the backup is inconsistent; use "
                              "another backup")
        return columns

    def finish(self) -> MergeCounts:
        """Rebuild the indexes, link the facility's events back to their people, rebuild the
        per-person index of the history, and put the triggers back."""
        db = self._db
        db.execute("BEGIN")
        columns = _names(_columns(db, "hold", EVENTS))
        db.execute(f"INSERT INTO main.{_q(EVENTS)} ({columns}) SELECT {columns} "
                   f"FROM hold.{_q(EVENTS)} ORDER BY id")
        for kind, _, sql in self._rebuild:
            if kind == "index":
                db.execute(sql)
        db.execute("UPDATE main.access_events SET "
                   "person_id = (SELECT person_id FROM temp.restore_links WHERE event_id = id), "
                   "subject_salt = (SELECT salt FROM temp.restore_links WHERE event_id = id) "
                   "WHERE customer_id IS NULL AND id IN (SELECT event_id FROM temp.restore_links)")
        db.execute("INSERT INTO main.person_events (person_id, at, event_id) SELECT person_id, "
                   "at, id FROM main.access_events WHERE person_id IS NOT NULL "
                   "ORDER BY person_id, at, id")
        for kind, _, sql in self._rebuild:
            if kind == "trigger":
                db.execute(sql)
        db.execute("COMMIT")
        return self.counts

    def close(self) -> None:
        self._db.close()
