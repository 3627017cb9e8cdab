"""The access history: append-only, hash-chained per customer, and checkable with one command.

Each event's digest covers the previous event's digest, its own fields and a salted digest of
the person, so editing, removing or reordering a row breaks the chain at that row. Erasing a
person later drops the salt (the event becomes anonymous) without breaking the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
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
    PersonEvent,
)


def chain_scope(customer: Customer | None) -> str:
    return FACILITY_SCOPE if customer is None else f"customer:{customer.public_id.hex}"


def subject_digest(salt: bytes, person: Person | uuid.UUID) -> bytes:
    """The salted digest that stands for the person in the chain (erasure drops the salt)."""
    public_id = person if isinstance(person, uuid.UUID) else person.public_id
    return hashlib.sha256(salt + public_id.bytes).digest()


def event_digest(prev: bytes, event: AccessEvent) -> bytes:
    """The chain's hash of one event: previous digest, canonical fields, subject digest.

    ``refers_to`` (the event this one is about) is a field only when set, so the digests of
    events recorded before it existed stay what they were. A site door's events carry its
    ``door_seq`` and name what they refer to by ``refers_door_seq`` instead (the door knows no
    database ids).
    """
    at = event.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    parts = [str(event.seq), at, str(event.door_id or ""), str(event.kind),
             str(event.method or ""), event.reason or ""]
    door_seq = getattr(event, "door_seq", None)
    if door_seq is not None:  # spooled at a site door: it named what it refers to by its seq
        parts.append(f"door_seq={door_seq}")
        refers_door_seq = getattr(event, "refers_door_seq", None)
        if refers_door_seq is not None:
            parts.append(f"refers_door_seq={refers_door_seq}")
    else:
        refers_to = getattr(event, "refers_to", None)
        if refers_to is not None:
            parts.append(f"refers_to={refers_to}")
    fields = "|".join(parts)
    return hashlib.sha256(prev + fields.encode() + (event.subject_digest or b"")).digest()


# Built once: constructing statements costs more than running them on the door's hot path.
_CHAINS = cast(Table, EventChain.__table__)
_EVENTS = cast(Table, AccessEvent.__table__)
_HEAD = select(_CHAINS.c.id, _CHAINS.c.head_digest, _CHAINS.c.last_seq).where(
    _CHAINS.c.scope == bindparam("scope"))
_INSERT_EVENT = insert(_EVENTS)
_ADVANCE = update(_CHAINS).where(_CHAINS.c.id == bindparam("chain")).values(
    head_digest=bindparam("head"), last_seq=bindparam("seq"), updated_at=bindparam("now"))


def record_event(
    conn: Connection,
    *,
    kind: EventKind,
    customer_id: int | None = None,
    customer_public_id: uuid.UUID | None = None,
    person_id: int | None = None,
    person_public_id: uuid.UUID | None = None,
    door_id: int | None = None,
    method: EventMethod | None = None,
    reason: str | None = None,
    at: dt.datetime | None = None,
    refers_to: int | None = None,
) -> int:
    """Append one event at the head of its chain; returns its id. The caller commits.

    ``refers_to``: the id of the event this one is about (a ``pulse_failed``'s ``granted``).

    Core statements only (three of them): this is the door's hot path. Must run in a write
    transaction (IMMEDIATE on SQLite, which ``accessd.db`` gives every transaction), so that two
    writers cannot both extend the same head.
    """
    scope = FACILITY_SCOPE if customer_public_id is None else f"customer:{customer_public_id.hex}"
    now = dt.datetime.now(dt.UTC)
    head = conn.execute(_HEAD, {"scope": scope}).first()
    if head is None:
        chain_id = _new_id(conn.execute(insert(_CHAINS), {
            "scope": scope, "customer_id": customer_id, "head_digest": GENESIS_DIGEST,
            "last_seq": 0, "anchor_digest": GENESIS_DIGEST, "anchor_seq": 0, "updated_at": now}))
        prev, last = GENESIS_DIGEST, 0
    else:
        chain_id, prev, last = head
    salt = secrets.token_bytes(16) if person_public_id is not None else None
    fields = SimpleNamespace(
        seq=last + 1, at=at or now, door_id=door_id, kind=kind, method=method, reason=reason,
        refers_to=refers_to, subject_digest=(subject_digest(salt, person_public_id)
                        if salt is not None and person_public_id is not None else None))
    digest = event_digest(prev, fields)  # type: ignore[arg-type]
    event_id = _new_id(conn.execute(_INSERT_EVENT, {
        "chain_id": chain_id, "customer_id": customer_id, "person_id": person_id,
        "subject_salt": salt, "prev_digest": prev, "digest": digest, **vars(fields)}))
    conn.execute(_ADVANCE, {"chain": chain_id, "head": digest, "seq": fields.seq, "now": now})
    return event_id


def _new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


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
    """``record_event`` for callers holding ORM objects; returns the new event's row."""
    event_id = record_event(
        session.connection(), kind=kind,
        customer_id=customer.id if customer else None,
        customer_public_id=customer.public_id if customer else None,
        person_id=person.id if person else None,
        person_public_id=person.public_id if person else None,
        door_id=door_id, method=method, reason=reason, at=at)
    return session.get_one(AccessEvent, event_id)


def naming_person(person_id: Any, since: Any = None, until: Any = None) -> ColumnElement[bool]:
    """An ``AccessEvent`` condition: the events that name the person (``PersonEvent``), recorded
    in ``[since, until)`` when given. ``person_id`` may be a value or a bound parameter."""
    wanted = select(PersonEvent.event_id).where(PersonEvent.person_id == person_id)
    if since is not None:
        wanted = wanted.where(PersonEvent.at >= since)
    if until is not None:
        wanted = wanted.where(PersonEvent.at < until)
    return AccessEvent.id.in_(wanted)


def unlink_people(session: Session, people: Any) -> int:
    """Anonymise every event naming one of ``people`` (ids, or a SELECT of ids): the person and
    the subject salt go, the chain still verifies. Returns how many events were changed; runs
    in the caller's transaction, before the people themselves are deleted."""
    result = session.execute(
        update(AccessEvent)
        .where(AccessEvent.id.in_(select(PersonEvent.event_id)
                                  .where(PersonEvent.person_id.in_(people))))
        .values(person_id=None, subject_salt=None)
        .execution_options(synchronize_session=False))
    session.execute(delete(PersonEvent).where(PersonEvent.person_id.in_(people)))
    return int(getattr(result, "rowcount", 0) or 0)


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
