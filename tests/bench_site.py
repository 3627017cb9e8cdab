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


def bench_ten_doors(directory: Path, doors: int = 10, seconds: float = 30.0,
                    persons: int = 1000) -> Row:
    """``doors`` site doors on one PostgreSQL, each deciding once per second, the database up
    for ``seconds`` and then refusing connections for ``seconds``."""
    from accessd.door.logic import DoorLogic, DoorRules, Record
    from accessd.models import DataKey, Finger, FingerLabel
    from accessd.models.base import new_public_id
    from accessd.site.door import SpoolRecorder
    from accessd.site.snapshot import Snapshot
    from tests.bench import percentile

    with postgres(directory) as server:
        admin = create_db_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE site"))
        url = server.rsplit("/", 1)[0] + "/site"
        engine = create_db_engine(url)
        upgrade(engine)
        with Session(engine) as session, session.begin():
            door_ids = [register_door(session, f"door-{n}") for n in range(doors)]
            customer = Customer(name="Acme", contract_start=dt.date(2025, 1, 1))
            customer.data_key = DataKey(master_key_id="bench", wrapped_key=b"\0" * 60)
            session.add(customer)
            session.flush()
            people = [Person(customer_id=customer.id, name=f"Person {n}") for n in range(persons)]
            session.add_all(people)
            session.flush()
            session.add_all([Finger(public_id=new_public_id(), customer_id=customer.id,
                                    person_id=p.id, label=FingerLabel.RIGHT_INDEX,
                                    sensor_slot=n + 1, data_key_id=customer.data_key.id,
                                    template_ciphertext=b"x", template_nonce=b"x")
                             for n, p in enumerate(people)])
        stop = __import__("threading").Event()
        now = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        sites = []
        for door_id in door_ids:
            own = create_db_engine(url, connect_args={"connect_timeout": 2})
            spool = EventSpool.open(directory / f"spool-{door_id}.sqlite3", door_id)
            snapshot = Snapshot.open(directory / f"snapshot-{door_id}.sqlite3", door_id, now=now,
                                     max_staleness=dt.timedelta(hours=24))
            sync = SiteSync(own, door_id, spool, snapshot, now=now, poll_seconds=5)
            sync.sync_now()
            thread = __import__("threading").Thread(target=sync.run, args=(stop,), daemon=True)
            thread.start()
            logic = DoorLogic(door_id, DoorRules(), snapshot, today=dt.date.today)
            sites.append((logic, SpoolRecorder(spool, sync, now=now), own, spool))

        recorded = [0]

        def phase() -> list[float]:
            timings = []
            end = time.monotonic() + seconds
            tick = 0
            while time.monotonic() < end:
                started = time.monotonic()
                for logic, recorder, _, _ in sites:
                    tick += 1
                    t0 = time.perf_counter()
                    actions = logic.finger(1 + tick % persons, time.monotonic())
                    for action in actions:
                        if isinstance(action, Record):
                            assert recorder.record(action) is not None
                            recorded[0] += 1
                    timings.append(time.perf_counter() - t0)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            return timings

        up = phase()
        # A change for every person (a restriction lifted, say) reaching every door's snapshot.
        changed = time.monotonic()
        with engine.begin() as conn:
            conn.execute(text("UPDATE persons SET restricted = false"))
            version = conn.execute(text("SELECT version FROM site_version")).scalar()
        snapshots = [logic.directory for logic, *_ in sites]
        while any(getattr(s, "version", None) != version for s in snapshots):
            time.sleep(0.005)
        propagated = time.monotonic() - changed
        with admin.connect() as conn:
            conn.execute(text("ALTER DATABASE site ALLOW_CONNECTIONS false"))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = 'site'"))
        down = phase()
        with admin.connect() as conn:
            conn.execute(text("ALTER DATABASE site ALLOW_CONNECTIONS true"))
        engine.dispose()
        deadline = time.monotonic() + 120
        while any(spool.depth for *_, spool in sites) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        with Session(engine) as session:
            stored = int(session.scalar(select(func.count()).select_from(AccessEvent)) or 0)
            intact = not list(verify_chains(session))
        for _, _, own, spool in sites:
            own.dispose()
            spool.close()
        engine.dispose()
        admin.dispose()
    p99_up, p99_down = percentile(up, 99) * 1e3, percentile(down, 99) * 1e3
    ok = p99_up < 5 and p99_down < 5 and stored == recorded[0] and intact
    return Row(f"{doors} site doors (snapshot, spool and sync thread each; lookup, decision, "
               f"event committed in the spool, no serial devices) on one PostgreSQL, each "
               f"deciding once per second, {seconds:.0f} s with the database up, then "
               f"{seconds:.0f} s refusing connections: p50 / p99 up; down; events delivered; "
               f"a change to all {persons} people until the last door's snapshot has it",
               f"{percentile(up, 50) * 1e3:.2f} / {p99_up:.2f} ms; {percentile(down, 50) * 1e3:.2f}"
               f" / {p99_down:.2f} ms; {stored} of {recorded[0]} events; "
               f"{propagated * 1e3:.0f} ms",
               "p99 < 5 ms both; all delivered", ok)
