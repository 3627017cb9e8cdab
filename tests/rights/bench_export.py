"""``make bench``: export of one customer with a million access events, time and peak memory.

A figure, not a test. The database is seeded in bulk (executemany, chain digests computed
here), then the export runs in a fresh process, so that its peak resident set size is the
export's own (interpreter and libraries included) and not the seeder's.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import insert

from accessd.db import create_db_engine, make_sessionmaker, upgrade
from accessd.history.chain import chain_scope, event_digest, subject_digest
from accessd.models import (
    GENESIS_DIGEST,
    AccessEvent,
    Customer,
    Door,
    EventChain,
    EventKind,
    EventMethod,
    LawfulBasis,
    Person,
    new_public_id,
)

TARGET_BYTES = 100 * 1024 * 1024
_BATCH = 50_000


def seed(db_path: Path, n_events: int, n_persons: int = 1000) -> int:
    """One customer with ``n_persons`` people and ``n_events`` chained events; its id."""
    engine = create_db_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        customer = Customer(public_id=new_public_id(), name="Bench Hosting",
                            contract_start=dt.date(2024, 1, 1), lawful_basis=LawfulBasis.CONSENT)
        doors = [Door(name=f"door-{i}") for i in range(4)]
        session.add_all([customer, *doors])
        session.flush()
        persons = [Person(public_id=new_public_id(), customer_id=customer.id,
                          name=f"Person {i}", email=f"p{i}@bench.example")
                   for i in range(n_persons)]
        session.add_all(persons)
        session.flush()
        chain = EventChain(scope=chain_scope(customer), customer_id=customer.id,
                           head_digest=GENESIS_DIGEST, last_seq=0, anchor_digest=GENESIS_DIGEST,
                           anchor_seq=0)
        session.add(chain)
        session.flush()
        ids = customer.id, chain.id, [d.id for d in doors], [(p.id, p.public_id) for p in persons]
    customer_id, chain_id, door_ids, people = ids
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    head, rows = GENESIS_DIGEST, []
    with engine.begin() as connection:
        for seq in range(1, n_events + 1):
            person_id, public_id = people[seq % len(people)]
            salt = secrets.token_bytes(16)
            event = SimpleNamespace(
                seq=seq, at=start + dt.timedelta(seconds=30 * seq), door_id=door_ids[seq % 4],
                kind=EventKind.GRANTED, method=EventMethod.FINGER, reason=None,
                subject_digest=subject_digest(salt, SimpleNamespace(public_id=public_id)))  # type: ignore[arg-type]
            digest = event_digest(head, event)  # type: ignore[arg-type]
            rows.append({"chain_id": chain_id, "seq": seq, "customer_id": customer_id,
                         "person_id": person_id, "door_id": event.door_id, "at": event.at,
                         "kind": event.kind, "method": event.method, "reason": None,
                         "subject_salt": salt, "subject_digest": event.subject_digest,
                         "prev_digest": head, "digest": digest})
            head = digest
            if len(rows) == _BATCH:
                connection.execute(insert(AccessEvent), rows)
                rows = []
        if rows:
            connection.execute(insert(AccessEvent), rows)
        connection.execute(EventChain.__table__.update().where(EventChain.id == chain_id)
                           .values(head_digest=head, last_seq=n_events))
    engine.dispose()
    return customer_id


def _export_in_child(db_path: str, customer_id: int, out: str) -> tuple[float, int, int]:
    from accessd.db import read_only_engine
    from accessd.rights.export import export_customer

    engine = create_db_engine(f"sqlite:///{db_path}")
    sessions = make_sessionmaker(read_only_engine(engine))
    start = time.perf_counter()
    with sessions() as session:
        summary = export_customer(session, session.get_one(Customer, customer_id), Path(out))
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, peak_rss_bytes(), summary.counts["access_events"]


def peak_rss_bytes() -> int:
    """This process's peak resident set size. ``VmHWM``, not ``ru_maxrss``: Linux carries
    ``ru_maxrss`` over from the parent across fork and exec, so a child would report the
    seeder's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_export(n_events: int = 1_000_000) -> tuple[float, int]:
    """Seconds and peak bytes (resident set of the exporting process) for exporting one
    customer with ``n_events`` access events to JSON and CSV in one zip."""
    with tempfile.TemporaryDirectory(prefix="accessd-bench-export-") as tmp:
        db_path = Path(tmp) / "accessd.sqlite3"
        customer_id = seed(db_path, n_events)
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            seconds, peak, exported = pool.apply(
                _export_in_child, (str(db_path), customer_id, str(Path(tmp) / "export.zip")))
        assert exported == n_events, f"exported {exported} of {n_events} events"
        return seconds, peak


if __name__ == "__main__":
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    took, peak_bytes = bench_export(events)
    verdict = "ok" if peak_bytes < TARGET_BYTES else "MISSED"
    print(f"export of one customer with {events:,} events: {took:.1f} s, peak RSS "
          f"{peak_bytes / 2**20:.0f} MiB (target < 100 MiB: {verdict})")
