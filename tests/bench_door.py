"""Door figures for ``make bench``: the daemon's own share of a decision, finger-to-relay against
the physical floor, and the daemon's memory over many identifications."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import insert, select

from accessd.cli.door import SCRUBBING_ALLOCATOR
from accessd.config import Settings, load_settings, write_default_config
from accessd.crypto import FileKeyProvider
from accessd.db import create_db_engine, make_sessionmaker, upgrade
from accessd.door.daemon import Daemon
from accessd.door.logic import Pulse
from accessd.fingers.sealed import seal
from accessd.history.chain import chain_scope, event_digest
from accessd.models import (
    GENESIS_DIGEST,
    AccessEvent,
    Consent,
    Credential,
    Customer,
    EventChain,
    Finger,
    FingerLabel,
    LawfulBasis,
    Person,
)
from accessd.models.base import new_public_id
from accessd.zones.grants import grant_default_zones
from firmware_bridge.doorboard import SerialDoorBoard, provision_board
from firmware_bridge.firmware import doorlink
from firmware_bridge.zfm_sensor import ZfmSensor
from hardware_sim import fingers
from hardware_sim.door import SimulatedDoorBoard
from hardware_sim.port import wire_time
from hardware_sim.rig import RigOptions, SimRig
from hardware_sim.sensor_firmware import Timing
from tests.bench import IDENTIFY_BYTES, Row, percentile
from tests.installation import provision_door, set_config


def make_installation(directory: Path, **config: object) -> tuple[Path, Settings]:
    path = directory / "accessd.toml"
    write_default_config(path, directory / "data")
    set_config(path, config)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    settings = load_settings(path)
    assert settings.keys.master_key_file is not None
    FileKeyProvider.create(settings.keys.master_key_file)
    engine = create_db_engine(settings.database.url)
    upgrade(engine)
    engine.dispose()
    return path, settings


def seed_site(settings: Settings, *, customers: int, persons: int, events: int,
              enrol: dict[str, int] | None = None) -> None:
    """Customers, persons with a finger each (dummy ciphertext unless named in ``enrol``:
    finger name -> person index, sealed for real), and hash-chained events."""
    engine = create_db_engine(settings.database.url)
    sessions = make_sessionmaker(engine)
    provider = FileKeyProvider(settings.keys.master_key_file)  # type: ignore[arg-type]
    today = dt.date.today()
    with sessions.begin() as session:
        rows = [Customer(name=f"Customer {c}", contract_start=today - dt.timedelta(days=10),
                         contract_end=today + dt.timedelta(days=365), grace_days=0,
                         lawful_basis=LawfulBasis.CONSENT) for c in range(customers)]
        session.add_all(rows)
        session.flush()
        for row in rows:
            grant_default_zones(session, row)  # the site's zone, as `customer add` does
        customer_ids = [c.id for c in rows]
        person_rows = [{"public_id": new_public_id(), "customer_id": customer_ids[i % customers],
                        "name": f"Person {i}", "active": True, "restricted": False,
                        "credential": Credential.FINGER.value, "pin_failures": 0,
                        "created_at": dt.datetime.now(dt.UTC),
                        "updated_at": dt.datetime.now(dt.UTC)} for i in range(persons)]
        session.execute(insert(Person), person_rows)
        person_ids = session.scalars(select(Person.id).order_by(Person.id)).all()
    wanted = {index: name for name, index in (enrol or {}).items()}
    with sessions.begin() as session:
        from accessd.fingers.sealed import data_key_row

        keys = {cid: data_key_row(session, provider, session.get_one(Customer, cid)).id
                for cid in customer_ids}
        finger_rows = []
        for i, pid in enumerate(person_ids):
            if i in wanted:
                continue
            finger_rows.append({"public_id": new_public_id(), "customer_id": customer_ids[
                i % customers], "person_id": pid, "label": FingerLabel.RIGHT_INDEX.value,
                "sensor_slot": 1000 + i, "template_ciphertext": b"x" * 528,
                "template_nonce": b"n" * 12, "data_key_id": keys[customer_ids[i % customers]],
                "enrolled_at": dt.datetime.now(dt.UTC)})
        if finger_rows:
            session.execute(insert(Finger), finger_rows)
        for slot, (index, name) in enumerate(sorted(wanted.items())):
            person = session.get_one(Person, person_ids[index])
            customer = session.get_one(Customer, person.customer_id)
            session.add(Consent(person_id=person.id, customer_id=customer.id, text_version="1",
                                witnessed_by="bench"))
            finger = Finger(public_id=uuid.uuid4(), customer_id=customer.id,
                            person_id=person.id, label=FingerLabel.RIGHT_INDEX, sensor_slot=slot)
            template = fingers.combine(*(fingers.characteristics(fingers.impression(name, n))
                                         for n in (900, 901)))
            assert template is not None
            seal(session, provider, finger, person, customer, template)
            session.add(finger)
    _seed_events(sessions, customer_ids, person_ids, events)
    engine.dispose()


def _seed_events(sessions, customer_ids: list[int], person_ids: list[int], n: int) -> None:  # type: ignore[no-untyped-def]
    heads: dict[int, tuple[int, bytes, int]] = {}
    with sessions.begin() as session:
        for cid in customer_ids:
            chain = EventChain(scope=chain_scope(session.get_one(Customer, cid)), customer_id=cid,
                               head_digest=GENESIS_DIGEST, last_seq=0,
                               anchor_digest=GENESIS_DIGEST, anchor_seq=0)
            session.add(chain)
            session.flush()
            heads[cid] = (chain.id, GENESIS_DIGEST, 0)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    batch: list[dict[str, object]] = []
    for i in range(n):
        cid = customer_ids[i % len(customer_ids)]
        chain_id, prev, seq = heads[cid]
        fields = SimpleNamespace(seq=seq + 1, at=start + dt.timedelta(seconds=i * 25),
                                 door_id=None, kind="granted", method="finger", reason="allowed",
                                 subject_digest=None)
        digest = event_digest(prev, fields)  # type: ignore[arg-type]
        batch.append({"chain_id": chain_id, "seq": seq + 1, "customer_id": cid,
                      "person_id": person_ids[i % len(person_ids)], "door_id": None,
                      "at": fields.at, "kind": "granted", "method": "finger",
                      "reason": "allowed", "prev_digest": prev, "digest": digest})
        heads[cid] = (chain_id, digest, seq + 1)
        if len(batch) >= 50_000:
            with sessions.begin() as session:
                session.execute(insert(AccessEvent), batch)
            batch = []
    with sessions.begin() as session:
        if batch:
            session.execute(insert(AccessEvent), batch)
        for chain_id, digest, seq in heads.values():
            chain = session.get_one(EventChain, chain_id)
            chain.head_digest, chain.last_seq = digest, seq


@contextmanager
def simulator_process(directory: Path, *args: str) -> Iterator[dict[str, str]]:
    """``accessd-sim`` in a process of its own; yields its paths."""
    with subprocess.Popen([sys.executable, "-m", "hardware_sim.cli", "--dir", str(directory),
                           *args], stdout=subprocess.PIPE, text=True) as sim:
        assert sim.stdout is not None
        try:
            yield json.loads(sim.stdout.readline())
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=15)


@contextmanager
def daemon_on(settings: Settings, where: SimRig | dict[str, str]) -> Iterator[Daemon]:
    engine = create_db_engine(settings.database.url, autocheckpoint=False)  # as `accessd run`
    provider = FileKeyProvider(settings.keys.master_key_file)  # type: ignore[arg-type]
    paths = where if isinstance(where, dict) else where.paths()
    if provider.door_link_key() is None:  # `accessd door provision`, as an installer runs it
        key = os.urandom(32)
        provision_board(paths["door"], key)
        provider.set_door_link_key(key)
    daemon = Daemon(settings, engine, make_sessionmaker(engine), provider,
                    ZfmSensor(paths["sensor"], baud=settings.sensor.baud),
                    SerialDoorBoard(paths["door"], link_key=provider.door_link_key()))
    try:
        yield daemon
    finally:
        engine.dispose()


def bench_decision(directory: Path, persons: int = 10_000, events: int = 1_000_000,
                   n: int = 2000) -> Row:
    _, settings = make_installation(directory, **{"sensor.port": "unused"})
    seeded = time.perf_counter()
    seed_site(settings, customers=100, persons=persons, events=events)
    seeded = time.perf_counter() - seeded
    # The simulator runs in its own process, as the hardware would: in this process its
    # threads would compete for the GIL with the code being measured.
    with simulator_process(directory / "sim") as paths, daemon_on(settings, paths) as daemon:
        daemon.preflight()
        daemon.door.open()
        logic = daemon.logic
        assert logic is not None
        rng = random.Random(7)
        decided, acked = [], []
        for _ in range(n):
            slot = 1000 + rng.randrange(persons)
            start = time.perf_counter()
            actions = logic.finger(slot, time.monotonic())
            records = [a for a in actions if not isinstance(a, Pulse)]
            daemon._execute(records)  # lookup, decision, event committed
            sent = time.perf_counter()
            daemon._execute([a for a in actions if isinstance(a, Pulse)])
            decided.append(sent - start)
            acked.append(time.perf_counter() - sent)
            daemon.door.heartbeat()
            if len(decided) % 200 == 0:
                daemon._checkpoint()  # the daemon's idle thread does this every 10 s
        daemon.door.close()
    p50, p99 = percentile(decided, 50), percentile(decided, 99)
    return Row(f"daemon's share of a door decision (search result -> person looked up -> decided "
               f"-> event committed, synchronous=FULL -> relay command sent), {persons} "
               f"persons, {events} events in SQLite (seeded in {seeded:.0f} s), p50 / p99; "
               f"then the board's acknowledgement p50 / p99",
               f"{p50 * 1e3:.2f} ms / {p99 * 1e3:.2f} ms; ack {percentile(acked, 50) * 1e3:.2f}"
               f" / {percentile(acked, 99) * 1e3:.2f} ms", "p99 < 5 ms", p99 < 0.005)


def bench_finger_to_relay(directory: Path, trials: int = 20, image: float = 0.3,
                          search: float = 0.15, empty: float = 0.02,
                          door_baud: int | None = None) -> Row:
    baud = 57600
    _, settings = make_installation(directory, **{"sensor.port": "unused", "sensor.baud": baud,
                                                  "access.release_seconds": 3})
    seed_site(settings, customers=1, persons=1, events=0, enrol={"bench-finger": 0})
    options = RigOptions(baud=baud, image_time=image, search_time=search,
                         empty_image_time=empty, door_baud=door_baud)
    with SimRig(directory / "sim", options) as rig, daemon_on(settings, rig) as daemon:
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        samples = []
        try:  # the daemon stops before the simulator, also when a trial fails
            deadline = time.monotonic() + 30
            while rig.sensor.template_count < 1 or not daemon.door_health.connected:
                assert time.monotonic() < deadline, "daemon did not start"
                time.sleep(0.05)
            for _ in range(trials):
                time.sleep(random.uniform(0, 0.05))  # fingers arrive at any phase of the polling
                placed = time.monotonic()
                rig.sensor.place("bench-finger")
                samples.append(_until_unlocked(rig, placed) - placed)
                lifted = time.monotonic()
                rig.sensor.lift()
                # A person's next attempt comes after the reader saw the empty glass; placed
                # again sooner (within one 0.3 s image), it is the same placement to the reader.
                _wait_for_empty_glass(rig, lifted)
                with daemon._door_lock:
                    daemon.door.lock()
        finally:
            daemon.stop()
            thread.join(timeout=10)
    floor = image + search + wire_time(IDENTIFY_BYTES, baud)
    ratio = statistics.median(samples) / floor
    return Row(f"finger placed -> relay unlocked, end to end at {baud} baud (image {image} s, "
               f"search {search} s, empty look {empty} s, sensor polled every "
               f"{settings.sensor.poll_interval_seconds} s), median of {trials}",
               f"{statistics.median(samples) * 1e3:.0f} ms = {ratio:.3f} x floor "
               f"{floor * 1e3:.0f} ms (p90 {percentile(samples, 90) / floor:.3f} x)",
               "<= 1.15 x floor", ratio <= 1.15)


CODE_AND_FINGER_BYTES = (
    (11 + 2) + (11 + 1)  # DownChar to buffer 2 and its acknowledgement
    + 4 * (11 + 128)  # the 512-byte template in four 128-byte data packets
    + (11 + 1) + (11 + 1)  # GenImg (the finger's image)
    + (11 + 2) + (11 + 1)  # Img2Tz into buffer 1
    + (11 + 1) + (11 + 3))  # Match, with its score


def bench_code_and_finger(directory: Path, trials: int = 15, image: float = 0.3,
                          empty: float = 0.02) -> Row:
    """A person code typed, the finger placed the moment the daemon has the code, timed from
    then: the template upload is on the critical path (the worst case; a person reaching
    from the keypad to the sensor gives it time)."""
    baud = 57600
    _, settings = make_installation(directory, **{"sensor.port": "unused", "sensor.baud": baud,
                                                  "access.release_seconds": 3})
    seed_site(settings, customers=1, persons=1, events=0, enrol={"bench-finger": 0})
    engine = create_db_engine(settings.database.url)
    with make_sessionmaker(engine).begin() as session:
        person = session.scalars(select(Person)).one()
        person.keypad_code = "4242"
    engine.dispose()
    options = RigOptions(baud=baud, image_time=image, empty_image_time=empty)
    with SimRig(directory / "sim", options) as rig, daemon_on(settings, rig) as daemon:
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        samples = []
        try:
            deadline = time.monotonic() + 30
            while rig.sensor.template_count < 1 or not daemon.door_health.connected:
                assert time.monotonic() < deadline, "daemon did not start"
                time.sleep(0.05)
            rig.sensor.lose(0)  # the library does not hold this finger: code and finger only
            for _ in range(trials):
                time.sleep(random.uniform(0, 0.05))
                rig.door.keys("4242#")
                while daemon.logic is None or daemon.logic.awaiting_finger(
                        time.monotonic()) is None:  # the code has reached the daemon
                    time.sleep(0.0005)
                placed = time.monotonic()
                rig.sensor.place("bench-finger")
                samples.append(_until_unlocked(rig, placed) - placed)
                lifted = time.monotonic()
                rig.sensor.lift()
                _wait_for_empty_glass(rig, lifted)
                with daemon._door_lock:
                    daemon.door.lock()
        finally:
            daemon.stop()
            thread.join(timeout=10)
    floor = image + wire_time(CODE_AND_FINGER_BYTES, baud)
    ratio = statistics.median(samples) / floor
    return Row(f"code and finger, 1:1 on the chip: finger placed as the code arrives -> "
               f"relay unlocked at {baud} baud (image {image} s, template {CODE_AND_FINGER_BYTES}"
               f" bytes of protocol minimum with its commands), median of {trials}",
               f"{statistics.median(samples) * 1e3:.0f} ms = {ratio:.3f} x floor "
               f"{floor * 1e3:.0f} ms (p90 {percentile(samples, 90) / floor:.3f} x)",
               "<= 1.1 x floor", ratio <= 1.1)


def _until_unlocked(rig: SimRig, placed: float) -> float:
    """When the relay unlocked after ``placed``; fails with what the reader last answered."""
    while True:
        unlocked = [c.at for c in rig.door.history
                    if c.what == "relay_locked" and not c.value and c.at > placed]
        if unlocked:
            return unlocked[0]
        if time.monotonic() - placed > 10:
            seen = [(f"{h.at - placed:+.2f} s", h.instruction, h.code)
                    for h in rig.sensor.history[-6:]]
            raise AssertionError(f"the door did not open within 10 s; the reader's last "
                                 f"answers: {seen}")
        time.sleep(0.001)


def _until_pulsed(rig: SimRig, since: float) -> float:
    """When the board first heard a relay pulse after ``since`` (the relay may be open already:
    a pulse that extends it is a decision carried out all the same)."""
    door = rig.door
    assert isinstance(door, SimulatedDoorBoard)
    while True:
        pulses = [c.at for c in door.commands if c.name == "PULSE" and c.at > since]
        if pulses:
            return pulses[0]
        assert time.monotonic() - since < 10, "no relay pulse within 10 s"
        time.sleep(0.001)


def _wait_for_empty_glass(rig: SimRig, lifted: float) -> None:
    deadline = time.monotonic() + 10
    while not any(h.at > lifted and h.instruction == "GenImg" and h.code == 0x02
                  for h in rig.sensor.history[-20:]):
        assert time.monotonic() < deadline, "the reader never looked at the empty glass"
        time.sleep(0.001)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _wait_for(rig: SimRig, start: int, instruction: str, code: int | None = None) -> int:
    """Index just past the first history entry at or after ``start`` that matches."""
    deadline = time.monotonic() + 10
    while True:
        history = rig.sensor.history
        for index in range(start, len(history)):
            entry = history[index]
            if entry.instruction == instruction and (code is None or entry.code == code):
                return index + 1
        assert time.monotonic() < deadline, f"the daemon sent no {instruction}"
        time.sleep(0.0005)


def bench_memory(directory: Path, identifications: int = 10_000) -> Row:
    config, settings = make_installation(directory, **{"sensor.poll_interval_seconds": 0.001,
                                                       "access.backoff_seconds": 0})
    seed_site(settings, customers=1, persons=1, events=0, enrol={"mem-finger": 0})
    figures: list[tuple[int, float]] = []
    with SimRig(directory / "sim") as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        provision_door(config)
        daemon = subprocess.Popen([sys.executable, "-m", "accessd.cli", "--config",
                                   str(config), "run", "--log-level", "WARNING"],
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while rig.sensor.template_count < 1:
                assert time.monotonic() < deadline, "the daemon did not fill the sensor"
                time.sleep(0.1)
            figures.append((0, _rss_mb(daemon.pid)))
            seen = len(rig.sensor.history)
            for i in range(1, identifications + 1):
                rig.sensor.place("mem-finger" if i % 2 else f"stranger-{i % 50}")
                seen = _wait_for(rig, seen, "Search")
                rig.sensor.lift()
                seen = _wait_for(rig, seen, "GenImg", 0x02)
                if i % (identifications // 4) == 0:
                    figures.append((i, _rss_mb(daemon.pid)))
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
    engine = create_db_engine(settings.database.url)
    with engine.connect() as conn:
        counted = len(conn.execute(select(AccessEvent.id)).all())
    engine.dispose()
    peak = max(mb for _, mb in figures)
    half, last = figures[2][1], figures[-1][1]
    series = ", ".join(f"{n}: {mb:.1f}" for n, mb in figures)
    return Row(f"daemon resident memory over {identifications} identifications "
               f"({counted} events recorded), MB after N",
               series, "< 60 MB, not growing", peak < 60 and last - half < 2)


# --- the door under faults (issue 11) ----------------------------------------------------------


def bench_recovery(directory: Path, device: str, outages: int = 4, down: float = 1.5,
                   every: float = 0.5) -> Row:
    """A device unplugged ``outages`` times for ``down`` s while a finger is presented every
    ``every`` s throughout: from its replug to the door opening again."""
    _, settings = make_installation(directory, **{"sensor.port": "unused",
                                                  "access.release_seconds": 3,
                                                  "access.backoff_seconds": 0})
    seed_site(settings, customers=1, persons=1, events=0, enrol={"bench-finger": 0})
    back: list[float] = []
    reopened: list[float] = []
    with SimRig(directory / "sim") as rig, daemon_on(settings, rig) as daemon:
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        stop = threading.Event()

        def fingers() -> None:
            while not stop.is_set():
                rig.sensor.place("bench-finger")
                stop.wait(every / 2)
                rig.sensor.lift()
                stop.wait(every / 2)

        presenter = threading.Thread(target=fingers, daemon=True)
        health = daemon.sensor_health if device == "sensor" else daemon.door_health
        port = rig.sensor.port if device == "sensor" else rig.door.port
        try:
            deadline = time.monotonic() + 30
            while rig.sensor.template_count < 1 or not daemon.door_health.connected:
                assert time.monotonic() < deadline, "daemon did not start"
                time.sleep(0.05)
            presenter.start()
            rng = random.Random(5)
            for _ in range(outages):
                time.sleep(1.0)
                port.unplug()
                time.sleep(down + rng.uniform(0, 0.5))  # at any phase of the retries
                returned = time.monotonic()
                port.replug()
                while not health.connected:
                    assert time.monotonic() - returned < 15, f"the {device} never came back"
                    time.sleep(0.001)
                reopened.append(time.monotonic() - returned)
                back.append(_until_pulsed(rig, returned) - returned)
        finally:
            stop.set()
            daemon.stop()
            thread.join(timeout=10)
    name = "sensor" if device == "sensor" else "door board"
    return Row(f"{name} unplugged {down:g}-{down + 0.5:g} s and replugged, a finger presented "
               f"every {every:g} s "
               f"throughout: replug -> next relay pulse, median / worst of {outages} "
               f"(replug -> {name} reopened)",
               f"{statistics.median(back) * 1e3:.0f} / {max(back) * 1e3:.0f} ms "
               f"({statistics.median(reopened) * 1e3:.0f} / {max(reopened) * 1e3:.0f} ms)",
               "< 1 s", max(back) < 1.0)


_LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    time.sleep(3)
    db.execute("BEGIN IMMEDIATE")
    time.sleep(2)
    db.execute("COMMIT")
"""


def bench_decision_under_lock(directory: Path, seconds: float = 15.0, persons: int = 1000,
                              events: int = 100_000) -> Row:
    """Decisions while another process holds the write lock 2 s in every 5 s."""
    _, settings = make_installation(directory, **{"sensor.port": "unused"})
    seed_site(settings, customers=10, persons=persons, events=events)
    database = settings.database.url.removeprefix("sqlite:///")
    with simulator_process(directory / "sim") as paths, daemon_on(settings, paths) as daemon:
        daemon.preflight()
        daemon.door.open()
        logic, recorder = daemon.logic, daemon.recorder
        assert logic is not None and recorder is not None and recorder.journal is not None
        journal = recorder.journal
        stop = threading.Event()

        def main_thread() -> None:  # what Daemon.run does meanwhile: move the journal
            while not stop.wait(0.25):
                daemon._main_step(daemon._tend_storage)

        mover = threading.Thread(target=main_thread, daemon=True)
        mover.start()
        rng = random.Random(7)
        samples, journaled = [], 0
        with subprocess.Popen([sys.executable, "-c", _LOCKER, database, str(seconds)]) as locker:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                slot = 1000 + rng.randrange(persons)
                kept = journal.pending
                start = time.perf_counter()
                actions = logic.finger(slot, time.monotonic())
                daemon._execute([a for a in actions if not isinstance(a, Pulse)])
                samples.append(time.perf_counter() - start)
                journaled += journal.pending > kept
                daemon.door.heartbeat()
                time.sleep(0.01)
            locker.wait(timeout=30)
        deadline = time.monotonic() + 30
        while journal.pending:
            assert time.monotonic() < deadline, "the journal was not moved"
            time.sleep(0.05)
        stop.set()
        mover.join(timeout=5)
        daemon.door.close()
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    return Row(f"door decision (lookup, decision, event recorded) while another process holds "
               f"the write lock 2 s in every 5 s, {len(samples)} decisions in {seconds:g} s, "
               f"{journaled} of them through the reserve journal: p50 / p99 / worst",
               f"{p50 * 1e3:.2f} / {p99 * 1e3:.2f} / {max(samples) * 1e3:.0f} ms",
               "p99 < 5 ms", p99 < 0.005)


def bench_drain(directory: Path, count: int = 10_000) -> Row:
    """A full reserve journal moved into the database."""
    from accessd.door.doors import register_door
    from accessd.door.journal import JournalEntry, ReserveJournal
    from accessd.door.recorder import EventRecorder
    from accessd.history.chain import verify_chains

    _, settings = make_installation(directory, **{"sensor.port": "unused"})
    seed_site(settings, customers=10, persons=1000, events=10_000)
    engine = create_db_engine(settings.database.url, autocheckpoint=False)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        door = register_door(session, "main")
        people = session.execute(select(Person.id, Person.public_id, Customer.id,
                                        Customer.public_id)
                                 .join(Customer, Customer.id == Person.customer_id)).all()
    journal = ReserveJournal.open(directory / "events.journal", capacity=count)
    at = dt.datetime.now(dt.UTC)
    for n in range(count):
        pid, puid, cid, cuid = people[n % len(people)]
        journal.append(JournalEntry(kind="granted", at=at + dt.timedelta(milliseconds=n),
                                    method="finger", reason="allowed", door_id=door,
                                    customer_id=cid, person_id=pid, customer_public_id=cuid,
                                    person_public_id=puid))
    recorder = EventRecorder(engine, door, journal, now=lambda: dt.datetime.now(dt.UTC),
                             monotonic=time.monotonic)
    start = time.perf_counter()
    moved = 0
    while journal.pending:
        moved += recorder.drain(budget=60)
    elapsed = time.perf_counter() - start
    with sessions() as session:
        intact = not list(verify_chains(session))
    journal.close()
    engine.dispose()
    return Row(f"reserve journal of {count:,} events moved into the database (batches of "
               f"500, synchronous=FULL, 10,000 events there already), chains verified after",
               f"{elapsed:.2f} s ({moved / elapsed:,.0f} events/s)",
               "figure; chains intact", intact and moved == count)


# --- the authenticated wire and the daemon's start (issue 14) ----------------------------------


def bench_wire_cost(directory: Path, n: int = 20_000) -> Row:
    """What authenticating the door wire adds to finger -> relay: the PULSE's 20 more bytes on
    the wire at 115200 baud (the board moves the relay when the frame is in, so only they count),
    and sealing it on the Pi, as a share of the identification floor."""
    from firmware_bridge.firmware import doorauth

    key = os.urandom(32)
    body = doorlink.pack_pulse(3000)
    start = time.perf_counter()
    for counter in range(1, n + 1):
        sealed = doorauth.seal(key, doorauth.TO_BOARD, doorlink.PULSE, 1, body, counter)
        doorauth.unseal(key, doorauth.TO_BOARD, doorlink.PULSE, 1, sealed)
    seal_s = (time.perf_counter() - start) / n
    floor = 0.3 + 0.15 + wire_time(IDENTIFY_BYTES, 57600)
    wire = wire_time(doorauth.AUTH_LEN, 115200)
    share = (wire + seal_s) / floor
    return Row("authenticated door wire's cost on finger -> relay: the PULSE's counter and MAC "
               f"({doorauth.AUTH_LEN} bytes at 115200 baud) plus sealing and checking it "
               "(HMAC-SHA256, CPython), as a share of the identification floor",
               f"{wire * 1e3:.2f} ms + {seal_s * 1e6:.1f} us = {share * 100:.2f} % of "
               f"{floor * 1e3:.0f} ms", "< 1 % of the floor", share < 0.01)


def bench_finger_to_relay_wire_timed(directory: Path) -> Row:
    """``bench_finger_to_relay`` with the door board's wire timed too (115200 baud), so that the
    authenticated frames' bytes count."""
    row = bench_finger_to_relay(directory, door_baud=115200)
    return Row(row.what.replace("end to end", "end to end, door wire timed at 115200 baud,"),
               row.figure, row.target, row.ok)


def bench_start_to_decision(directory: Path, templates: int = 1000) -> Row:
    """``accessd run`` started (a new process, the scrubbing allocator's re-exec included) with
    a finger already on a sensor holding ``templates`` templates: until the relay unlocks."""
    baud, image, search, empty = 57600, 0.3, 0.15, 0.02
    config, settings = make_installation(directory, **{"sensor.baud": baud})
    seed_site(settings, customers=1, persons=templates, events=0,
              enrol={f"start-{i}": i for i in range(templates)})
    with SimRig(directory / "sim", RigOptions(capacity=templates)) as rig:
        set_config(config, {"sensor.port": rig.sensor.path, "door.port": rig.door.path})
        provision_door(config)
        settings = load_settings(config)
        with daemon_on(settings, rig) as daemon:  # the library's first fill, untimed
            thread = threading.Thread(target=daemon.run, daemon=True)
            thread.start()
            try:
                deadline = time.monotonic() + 120
                while rig.sensor.template_count < templates or daemon.jobs:
                    assert time.monotonic() < deadline, "the sensor was not filled"
                    time.sleep(0.1)
            finally:
                daemon.stop()
                thread.join(timeout=15)
        # From now on the sensor and its wire take their real time.
        rig.sensor.port.baud = baud
        rig.sensor._firmware.timing = Timing(image=image, search=search, empty_image=empty)
        rig.sensor.place(f"start-{templates // 2}")
        started = time.monotonic()
        # The allocator's settings in the environment, as the systemd unit sets them: no
        # second interpreter start (`accessd run` re-executes itself only without them).
        process = subprocess.Popen([sys.executable, "-m", "accessd.cli", "--config",
                                    str(config), "run", "--log-level", "WARNING"],
                                   stderr=subprocess.DEVNULL,
                                   env={**os.environ, **SCRUBBING_ALLOCATOR})
        try:
            opened = _until_unlocked(rig, started) - started
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
    return Row(f"daemon start (`accessd run`, a new process, allocator set as by its unit) -> "
               f"first decision carried out "
               f"(relay unlocked), a finger already on a sensor holding {templates} templates "
               f"at {baud} baud (image {image} s, search {search} s)",
               f"{opened:.2f} s", "< 2 s", opened < 2.0)
