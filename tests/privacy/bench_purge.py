"""``make bench`` figure: the database part of purging a customer with 1,000 people and
1,000,000 access events (target: under 10 s on the CI machine).

Seeding is not timed: templates are sealed as enrolment seals them, the history is written with
the driver's executemany and digests computed here (``tests.privacy.seed.bulk_history``).

What got it under 10 s (2026-11, this machine, from ~13 s): event times stored as integers;
no checkpoint at every batch's commit (5x fewer bytes written); and the per-person index moved
into its own table (``PersonEvent``), deleted person by person before the history is deleted
in chain order. In the events table, that index made each deleted event a cold seek (people's
events interleave): half of the time. No gain came from ordering each batch by person (the
other trees go random), larger batches, 8/16 KB pages, mmap, or a (person_id)-only index.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from accessd.crypto import FileKeyProvider
from accessd.db import checkpoint_wal, create_db_engine, make_sessionmaker, upgrade
from accessd.privacy.purge import run_due_purges
from tests.privacy.seed import access, add_customer, add_door, bulk_history, enrol

NOW = dt.datetime(2025, 9, 1, tzinfo=dt.UTC)


def bench_purge(n_persons: int = 1000, n_events: int = 1_000_000) -> float:
    """Seconds ``run_due_purges`` takes for the customer (deletion, WAL truncation, record,
    certificate, resync requests): everything but the sensors' part."""
    with tempfile.TemporaryDirectory(prefix="accessd-bench-purge-") as directory:
        base = Path(directory)
        keyring = FileKeyProvider.create(base / "keyring.json")
        engine = create_db_engine(f"sqlite:///{base / 'accessd.sqlite3'}")
        try:
            upgrade(engine)
            sessions = make_sessionmaker(engine)
            with sessions.begin() as session:
                gone = add_customer(session, "Bench Leaving BV", contract_end=dt.date(2025, 6, 30))
                kept = add_customer(session, "Bench Staying BV")
                add_door(session, "main", [gone, kept])
                people = [enrol(session, keyring, gone, f"Bench Person {i}")[0].id
                          for i in range(n_persons)]
                staying, _ = enrol(session, keyring, kept, "Bench Stayer")
                for minute in range(100):
                    access(session, kept, staying,
                           dt.datetime(2025, 5, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minute))
            bulk_history(engine, gone, people, n_events, dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                         step=dt.timedelta(seconds=30))
            checkpoint_wal(engine)  # start from a settled file, as a running site would be
            started = time.perf_counter()
            records = run_due_purges(sessions, keyring, engine, NOW)
            elapsed = time.perf_counter() - started
            assert len(records) == 1 and records[0].counts["access_events"] == n_events
            return elapsed
        finally:
            engine.dispose()


if __name__ == "__main__":
    import sys

    args = [int(a) for a in sys.argv[1:3]]
    print(f"purge of {args or [1000, 1_000_000]}: {bench_purge(*args):.2f} s")
