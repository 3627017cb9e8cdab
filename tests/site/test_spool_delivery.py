"""A site door's events: spooled with the door's own sequence and chains, delivered to the
site's PostgreSQL exactly once and in order, every link checked on arrival."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from accessd.crypto import FileKeyProvider
from accessd.door.doors import register_door
from accessd.errors import ChainBrokenError, SpoolError
from accessd.history.chain import verify_chains
from accessd.models import AccessEvent, Customer, DoorSync, EventChain
from accessd.site.ingest import ingest, start_of
from accessd.site.spool import EventSpool
from tests.accessd_core.factories import add_customer, add_person_with_finger

pytestmark = pytest.mark.postgres
AT = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)


def _door(engine: Engine, name: str = "cage-7") -> int:
    with Session(engine) as session, session.begin():
        return register_door(session, name)


def _spool(engine: Engine, path: Path, door_id: int) -> EventSpool:
    path.parent.mkdir(parents=True, exist_ok=True)
    spool = EventSpool.open(path, door_id)
    with engine.connect() as conn:
        spool.seed(*start_of(conn, door_id))
    return spool


def _deliver(engine: Engine, spool: EventSpool, door_id: int, batch: int = 100) -> int:
    sent = 0
    while spool.depth:
        events = spool.oldest(batch)
        with engine.begin() as conn:
            done = ingest(conn, door_id, events, now=AT, spool_depth=spool.depth)
        spool.delivered(done.delivered_seq)
        sent += len(events)
    return sent


def _people(engine: Engine, keyring: FileKeyProvider) -> tuple[Customer, list]:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        customer = add_customer(session, keyring)
        people = [add_person_with_finger(session, keyring, customer, f"Person {n}")[0]
                  for n in range(3)]
    return customer, people


def test_spooled_events_arrive_once_in_order_and_their_chains_verify(
        site_engine: Engine, spool_path: Path, keyring: FileKeyProvider) -> None:
    door_id = _door(site_engine)
    customer, people = _people(site_engine, keyring)
    spool = _spool(site_engine, spool_path, door_id)
    for n in range(300):
        person = people[n % 3] if n % 4 else None
        spool.append(kind="granted" if person else "denied", at=AT + dt.timedelta(seconds=n),
                     method="finger", reason=None if person else "unknown_credential",
                     customer_public_id=customer.public_id if person else None,
                     person_public_id=person.public_id if person else None)
    # A sender that crashed after the database committed, before the spool heard of it:
    first = spool.oldest(120)
    with site_engine.begin() as conn:
        ingest(conn, door_id, first, now=AT)
    _deliver(site_engine, spool, door_id)  # starts again from the first event

    with Session(site_engine) as session:
        seqs = session.scalars(select(AccessEvent.door_seq).where(
            AccessEvent.door_id == door_id).order_by(AccessEvent.id)).all()
        assert seqs == list(range(1, 301))  # each once, in the door's order
        assert not list(verify_chains(session))
        scopes = set(session.scalars(select(EventChain.scope)))
        assert scopes == {f"customer:{customer.public_id.hex}@door:{door_id}",
                          f"facility@door:{door_id}"}
        assert session.get_one(DoorSync, door_id).delivered_seq == 300
    assert spool.depth == 0


def test_a_new_spool_continues_the_doors_sequence_and_chains(
        site_engine: Engine, tmp_path: Path, keyring: FileKeyProvider) -> None:
    door_id = _door(site_engine)
    customer, people = _people(site_engine, keyring)
    for round_ in range(2):  # the Pi's card replaced between the two rounds
        spool = _spool(site_engine, tmp_path / f"card{round_}" / "spool.sqlite3", door_id)
        for _ in range(5):
            spool.append(kind="granted", at=AT, method="finger",
                         customer_public_id=customer.public_id,
                         person_public_id=people[0].public_id)
        _deliver(site_engine, spool, door_id)
        spool.close()
    with Session(site_engine) as session:
        assert session.scalar(select(func.max(AccessEvent.door_seq))) == 10
        assert not list(verify_chains(session))


def test_a_spool_never_started_from_the_database_refuses_to_record(spool_path: Path) -> None:
    spool_path.parent.mkdir(parents=True)
    spool = EventSpool.open(spool_path, 3)
    with pytest.raises(SpoolError, match="not been started"):
        spool.append(kind="granted", at=AT)


def test_an_altered_spool_is_refused_on_arrival_and_nothing_of_its_batch_is_stored(
        site_engine: Engine, spool_path: Path, keyring: FileKeyProvider) -> None:
    door_id = _door(site_engine)
    customer, people = _people(site_engine, keyring)
    spool = _spool(site_engine, spool_path, door_id)
    for _ in range(4):
        spool.append(kind="denied", at=AT, method="finger", reason="contract_ended",
                     customer_public_id=customer.public_id,
                     person_public_id=people[1].public_id)
    raw = sqlite3.connect(spool_path)
    raw.execute("UPDATE events SET kind = 'granted', reason = NULL WHERE door_seq = 3")
    raw.commit()
    raw.close()
    with pytest.raises(ChainBrokenError, match="altered"), site_engine.begin() as conn:
        ingest(conn, door_id, spool.oldest(10), now=AT)
    with Session(site_engine) as session:
        assert session.scalar(select(func.count()).select_from(AccessEvent)) == 0
    assert spool.depth == 4  # kept for someone to look at


def test_events_of_a_customer_purged_while_the_door_was_cut_off_never_arrive(
        site_engine: Engine, spool_path: Path, keyring: FileKeyProvider) -> None:
    door_id = _door(site_engine)
    customer, people = _people(site_engine, keyring)
    spool = _spool(site_engine, spool_path, door_id)
    spool.append(kind="granted", at=AT, method="finger", customer_public_id=customer.public_id,
                 person_public_id=people[0].public_id)
    spool.append(kind="tamper", at=AT)
    with Session(site_engine) as session, session.begin():
        session.delete(session.get_one(Customer, customer.id))
    _deliver(site_engine, spool, door_id)
    with Session(site_engine) as session:
        kinds = session.scalars(select(AccessEvent.kind)).all()
        assert [str(k) for k in kinds] == ["tamper"]
        assert session.get_one(DoorSync, door_id).delivered_seq == 2


def test_a_door_restarted_with_events_spooled_delivers_them_once_after_its_new_ones(
        site_engine: Engine, spool_path: Path, keyring: FileKeyProvider) -> None:
    door_id = _door(site_engine)
    customer, people = _people(site_engine, keyring)
    spool = _spool(site_engine, spool_path, door_id)
    for _ in range(5):
        spool.append(kind="granted", at=AT, method="finger",
                     customer_public_id=customer.public_id, person_public_id=people[2].public_id)
    with site_engine.begin() as conn:  # delivered, then the daemon died before it noted so
        ingest(conn, door_id, spool.oldest(3), now=AT)
    spool.close()

    spool = EventSpool.open(spool_path, door_id)  # the daemon's next start
    assert spool.depth == 5 and spool.next_seq == 6
    for _ in range(5):
        spool.append(kind="granted", at=AT, method="finger",
                     customer_public_id=customer.public_id, person_public_id=people[2].public_id)
    _deliver(site_engine, spool, door_id)
    with Session(site_engine) as session:
        seqs = session.scalars(select(AccessEvent.door_seq).order_by(AccessEvent.id)).all()
        assert seqs == list(range(1, 11))
        assert not list(verify_chains(session))
