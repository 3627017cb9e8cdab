"""Site figures for ``make bench site``: a door's spool delivered to a real PostgreSQL after an
outage (exactly once, in order, chains verified)."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from accessd.db import create_db_engine, upgrade
from accessd.door.doors import register_door
from accessd.history.chain import verify_chains
from accessd.models import AccessEvent, Customer, Person
from accessd.site.spool import EventSpool
from accessd.site.sync import SiteSync
from tests.accessd_core.conftest import _free_port, _pg_bindir
from tests.bench import Row


@contextmanager
def postgres(directory: Path) -> Iterator[str]:
    """A throwaway PostgreSQL server with fsync on (the figures are a real server's)."""
    bindir = _pg_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries: apt-get install -y postgresql")
    base = tempfile.mkdtemp(prefix="accessd-bench-pg-")
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = {"user": "postgres", "group": account.pw_gid}
    data, port = Path(base) / "data", _free_port()
    pg_ctl = str(bindir / "pg_ctl")
    try:
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                        "postgres", "-E", "UTF8"], check=True, capture_output=True, cwd=base,
                       **run_as)
        subprocess.run([pg_ctl, "-D", str(data), "-l", str(Path(base) / "log"), "-w", "start",
                        "-o", f"-k {base} -p {port} -c listen_addresses=127.0.0.1"],
                       check=True, capture_output=True, cwd=base, **run_as)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd=base, **run_as)
        shutil.rmtree(base, ignore_errors=True)


def bench_spool_after_outage(directory: Path, count: int = 100_000) -> Row:
    """``count`` events spooled while the database was away, then delivered."""
    with postgres(directory) as url:
        engine = create_db_engine(url)
        upgrade(engine)
        with Session(engine) as session, session.begin():
            door = register_door(session, "entrance")
            customers = [Customer(name=f"Customer {n}", contract_start=dt.date(2025, 1, 1))
                         for n in range(10)]
            session.add_all(customers)
            session.flush()
            people = [Person(customer_id=customers[n % 10].id, name=f"Person {n}")
                      for n in range(1000)]
            session.add_all(people)
            session.flush()
            ids = [(p.public_id, customers[n % 10].public_id) for n, p in enumerate(people)]
        spool = EventSpool.open(directory / "spool.sqlite3", door)
        sync = SiteSync(engine, door, spool, _NoSnapshot(), now=lambda: dt.datetime.now(dt.UTC),
                        poll_seconds=30)
        with engine.connect() as conn:
            from accessd.site.ingest import start_of

            spool.seed(*start_of(conn, door))
        at = dt.datetime.now(dt.UTC)
        spooled = time.perf_counter()
        for n in range(count):
            person, customer = ids[n % len(ids)] if n % 10 else (None, None)
            spool.append(kind="granted" if person else "denied",
                         at=at + dt.timedelta(milliseconds=n), method="finger",
                         reason="allowed" if person else "unknown_credential",
                         customer_public_id=customer, person_public_id=person)
        spooled = time.perf_counter() - spooled
        resend = spool.oldest(1000)  # a sender that crashed after the commit resends these
        start = time.perf_counter()
        delivered = sync._deliver()
        with engine.begin() as conn:
            from accessd.site.ingest import ingest

            again = ingest(conn, door, resend, now=at)
        elapsed = time.perf_counter() - start
        with Session(engine) as session:
            rows = session.scalar(select(func.count()).select_from(AccessEvent))
            distinct = session.scalar(select(func.count(func.distinct(AccessEvent.door_seq))))
            in_order = session.scalar(text(
                "SELECT bool_and(door_seq = rn) FROM (SELECT door_seq, row_number() OVER "
                "(ORDER BY id) AS rn FROM access_events) t"))
            intact = not list(verify_chains(session))
        spool.close()
        engine.dispose()
    lost, twice = count - int(distinct or 0), int(rows or 0) - int(distinct or 0)
    ok = lost == 0 and twice == 0 and bool(in_order) and intact and again.stored == 0
    return Row(f"{count:,} events spooled during an outage (spooling: {count / spooled:,.0f} "
               f"events/s, synchronous=FULL), delivered to PostgreSQL after it returns "
               f"(batches of 1,000), a batch resent, chains verified",
               f"{elapsed:.1f} s ({delivered / elapsed:,.0f} events/s); lost {lost}, twice "
               f"{twice}", "0 lost, 0 twice, in order, chains intact", ok)


class _NoSnapshot:
    """Delivery alone is measured here."""

    version = 0
