"""Rows for the privacy tests, made the way the services make them (sealed templates, chained
events), plus a fast bulk seeder (executemany, digests computed here) for big histories."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import KeyProvider
from accessd.fingers.sealed import seal
from accessd.history.chain import append_event, chain_scope, event_digest
from accessd.models import (
    AccessEvent,
    CommandKind,
    CommandState,
    Consent,
    Customer,
    DeviceCommand,
    Door,
    EventChain,
    EventKind,
    EventMethod,
    Finger,
    FingerLabel,
    LawfulBasis,
    Person,
    PurgeRecord,
    new_public_id,
    to_epoch_micros,
)
from accessd.models.customers import door_customers
from accessd.privacy.purge import run_due_purges

LABELS = list(FingerLabel)


def template_bytes(tag: str) -> bytes:
    """A 512-byte stand-in for a sensor template, unique per tag."""
    return (f"TPL<{tag}>".encode() + secrets.token_bytes(16)) * 20 + bytes(512)


def add_customer(session: Session, name: str, *, contract_end: dt.date | None = None,
                 grace_days: int = 0, basis: LawfulBasis | None = LawfulBasis.CONSENT,
                 reference: str | None = None) -> Customer:
    customer = Customer(public_id=new_public_id(), name=name, contract_start=dt.date(2024, 1, 1),
                        contract_end=contract_end, grace_days=grace_days, lawful_basis=basis,
                        necessity_reference=reference)
    session.add(customer)
    session.flush()
    return customer


def add_door(session: Session, name: str = "main", customers: Sequence[Customer] = ()) -> Door:
    door = Door(name=name)
    session.add(door)
    session.flush()
    for customer in customers:
        session.execute(insert(door_customers).values(door_id=door.id, customer_id=customer.id))
    return door


def enrol(session: Session, provider: KeyProvider, customer: Customer, name: str, *,
          label: FingerLabel = FingerLabel.RIGHT_INDEX, template: bytes | None = None,
          person: Person | None = None) -> tuple[Person, Finger]:
    """A consenting person (or ``person``) with one more sealed finger."""
    if person is None:
        person = Person(public_id=new_public_id(), customer_id=customer.id, name=name,
                        email=f"{name.split()[0].lower()}@example.com")
        session.add(person)
        session.flush()
        session.add(Consent(person_id=person.id, customer_id=customer.id, text_version="1",
                            witnessed_by="operator1"))
    slot = (session.scalar(select(func.max(Finger.sensor_slot))) or 0) + 1
    finger = Finger(public_id=new_public_id(), customer_id=customer.id, person_id=person.id,
                    label=label, sensor_slot=slot)
    seal(session, provider, finger, person, customer, template or template_bytes(name))
    session.add(finger)
    session.flush()
    return person, finger


def access(session: Session, customer: Customer | None, person: Person | None,
           at: dt.datetime, kind: EventKind = EventKind.GRANTED, door_id: int | None = None
           ) -> AccessEvent:
    return append_event(session, kind=kind, customer=customer, person=person, door_id=door_id,
                        method=EventMethod.FINGER, at=at)


def bulk_history(engine: Engine, customer: Customer, person_ids: Sequence[int],
                 n_events: int, start: dt.datetime, *,
                 step: dt.timedelta = dt.timedelta(seconds=7), chunk: int = 50_000) -> None:
    """Append ``n_events`` chained events to a customer's chain with the driver's executemany.

    Digests are computed with ``accessd.history.chain.event_digest`` on light stand-ins, so the
    chain verifies exactly as one written by ``append_event``. SQLite only.
    """
    scope = chain_scope(customer)
    with engine.begin() as conn:
        chain = conn.execute(select(EventChain.id, EventChain.head_digest, EventChain.last_seq)
                             .where(EventChain.scope == scope)).first()
        if chain is None:
            chain_id = conn.execute(insert(EventChain).values(
                scope=scope, customer_id=customer.id, head_digest=bytes(32), last_seq=0,
                anchor_digest=bytes(32), anchor_seq=0,
                updated_at=dt.datetime.now(dt.UTC))).inserted_primary_key[0]
            head, seq = bytes(32), 0
        else:
            chain_id, head, seq = chain
    sql = ("INSERT INTO access_events (chain_id, seq, customer_id, person_id, door_id, at, kind,"
           " method, reason, subject_salt, subject_digest, prev_digest, digest)"
           " VALUES (?, ?, ?, ?, NULL, ?, 'granted', 'finger', NULL, ?, ?, ?, ?)")
    done = 0
    while done < n_events:
        rows = []
        for i in range(done, min(n_events, done + chunk)):
            seq += 1
            person_id = person_ids[i % len(person_ids)] if person_ids else None
            salt = secrets.token_bytes(16) if person_id is not None else None
            at = start + step * i
            stand_in = SimpleNamespace(
                seq=seq, at=at, door_id=None, kind=EventKind.GRANTED,
                method=EventMethod.FINGER, reason=None,
                subject_digest=hashlib.sha256(salt).digest() if salt else None)
            digest = event_digest(head, stand_in)  # type: ignore[arg-type]
            rows.append((chain_id, seq, customer.id, person_id, to_epoch_micros(at), salt,
                         stand_in.subject_digest, head, digest))
            head = digest
        with engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)
            conn.execute(update(EventChain).where(EventChain.id == chain_id)
                         .values(head_digest=head, last_seq=seq))
        done += len(rows)


def confirm_resyncs(sessions: sessionmaker[Session], *, ok: bool = True) -> int:
    """Play every door's daemon: finish each pending resync as ``accessd run`` does once its
    sensor is in step with the database (``ok``), or as it does when the sensor failed."""
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as session:
        result = session.execute(
            update(DeviceCommand).where(DeviceCommand.kind == CommandKind.RESYNC,
                                        DeviceCommand.state == CommandState.PENDING)
            .values(state=CommandState.DONE if ok else CommandState.FAILED, started_at=now,
                    finished_at=now, progress="sensor in step" if ok else "sensor fault",
                    result={"uploaded": 0, "deleted": 1, "kept": 0} if ok else None))
        return int(getattr(result, "rowcount", 0) or 0)


def purge_completely(sessions: sessionmaker[Session], provider: KeyProvider, engine: Engine,
                     now: dt.datetime, **options: Any) -> list[PurgeRecord]:
    """``run_due_purges``, the doors confirming their resyncs, and the next run certifying:
    the records moved by either run, in their final state."""
    moved = {r.id: r for r in run_due_purges(sessions, provider, engine, now, **options)}
    if confirm_resyncs(sessions):
        moved.update({r.id: r for r in run_due_purges(sessions, provider, engine, now,
                                                        **options)})
    return [moved[record_id] for record_id in sorted(moved)]
