"""The access history: append-only, hash-chained per customer, and checkable with one command.

Each event's digest covers the previous event's digest, its own fields and a salted digest of
the person, so editing, removing or reordering a row breaks the chain at that row. Erasing a
person later drops the salt (the event becomes anonymous) without breaking the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.models import (
    FACILITY_SCOPE,
    GENESIS_DIGEST,
    AccessEvent,
    Customer,
    EventChain,
    EventKind,
    EventMethod,
    Person,
)


def chain_scope(customer: Customer | None) -> str:
    return FACILITY_SCOPE if customer is None else f"customer:{customer.public_id.hex}"


def subject_digest(salt: bytes, person: Person) -> bytes:
    return hashlib.sha256(salt + person.public_id.bytes).digest()


def event_digest(prev: bytes, event: AccessEvent) -> bytes:
    """The chain's hash of one event: previous digest, canonical fields, subject digest."""
    at = event.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = "|".join((
        str(event.seq), at, str(event.door_id or ""), str(event.kind),
        str(event.method or ""), event.reason or "",
    ))
    return hashlib.sha256(prev + fields.encode() + (event.subject_digest or b"")).digest()


def _chain_for(session: Session, customer: Customer | None) -> EventChain:
    scope = chain_scope(customer)
    chain = session.scalars(select(EventChain).where(EventChain.scope == scope)).first()
    if chain is None:
        chain = EventChain(scope=scope, customer_id=customer.id if customer else None,
                           head_digest=GENESIS_DIGEST, last_seq=0,
                           anchor_digest=GENESIS_DIGEST, anchor_seq=0)
        session.add(chain)
        session.flush()
    return chain


def append_event(
    session: Session,
    *,
    kind: EventKind,
    customer: Customer | None = None,
    person: Person | None = None,
    door_id: int | None = None,
    method: EventMethod | None = None,
    reason: str | None = None,
    at: dt.datetime | None = None,
) -> AccessEvent:
    """Add one event at the head of its chain. The caller's transaction commits it.

    Must run in a write transaction (IMMEDIATE on SQLite, which ``accessd.db`` gives every
    transaction), so that two writers cannot both extend the same head.
    """
    chain = _chain_for(session, customer)
    salt = secrets.token_bytes(16) if person is not None else None
    event = AccessEvent(
        chain_id=chain.id, seq=chain.last_seq + 1,
        customer_id=customer.id if customer else None,
        person_id=person.id if person else None, door_id=door_id,
        at=at or dt.datetime.now(dt.UTC),
        kind=kind, method=method, reason=reason, subject_salt=salt,
        subject_digest=subject_digest(salt, person) if salt is not None and person else None,
        prev_digest=chain.head_digest, digest=b"")
    event.digest = event_digest(chain.head_digest, event)
    chain.head_digest = event.digest
    chain.last_seq = event.seq
    session.add(event)
    return event


@dataclass(frozen=True)
class ChainProblem:
    """The first place a chain does not hold, in words an auditor can act on."""

    scope: str
    event_id: int | None
    seq: int
    message: str


def verify_chains(session: Session, *, batch: int = 10_000) -> Iterator[ChainProblem]:
    """Yield the first problem of each chain that does not verify (nothing when all hold)."""
    for chain in session.scalars(select(EventChain).order_by(EventChain.id)).all():
        problem = _verify_chain(session, chain, batch)
        if problem is not None:
            yield problem


def _verify_chain(session: Session, chain: EventChain, batch: int) -> ChainProblem | None:
    expected_seq = chain.anchor_seq + 1
    running = chain.anchor_digest
    rows = session.scalars(
        select(AccessEvent).where(AccessEvent.chain_id == chain.id)
        .order_by(AccessEvent.seq).execution_options(yield_per=batch))
    for event in rows:
        if event.seq != expected_seq:
            what = ("removed" if event.seq > expected_seq else "duplicated or reordered")
            return ChainProblem(chain.scope, event.id, event.seq,
                                f"event(s) before #{event.id} (seq {event.seq}) were {what}: "
                                f"expected seq {expected_seq}")
        if event.prev_digest != running:
            return ChainProblem(chain.scope, event.id, event.seq,
                                f"event #{event.id} (seq {event.seq}) does not follow its "
                                "predecessor: an event before it was altered, removed or "
                                "reordered")
        if event_digest(running, event) != event.digest:
            return ChainProblem(chain.scope, event.id, event.seq,
                                f"event #{event.id} (seq {event.seq}) was altered after it "
                                "was recorded")
        running = event.digest
        expected_seq += 1
    if expected_seq - 1 != chain.last_seq or running != chain.head_digest:
        return ChainProblem(chain.scope, None, expected_seq,
                            f"the newest events were removed: the chain's head says seq "
                            f"{chain.last_seq}, the history ends at seq {expected_seq - 1}")
    return None
