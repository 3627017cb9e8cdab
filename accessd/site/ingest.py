"""The site database's side of a door's spool: events arrive exactly once, in order, and each
link of the door's chains is checked before it is stored.

One transaction per batch: the door's ``door_sync`` row is locked, events at or below its
``delivered_seq`` are skipped (a resend), the others are checked against their chain's head and
inserted with ``INSERT ... ON CONFLICT (door_id, door_seq) DO NOTHING``, chain heads advance,
and ``delivered_seq`` moves to the batch's last event, all committed together. A crash anywhere
before the commit leaves nothing; after it, the resend is skipped.

An event of a customer the site purged meanwhile is dropped (the purge removed that customer's
chains: nothing of it may come back); an event naming a person erased meanwhile arrives without
the person (its subject digest stays, so the chain still verifies).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from accessd.errors import ChainBrokenError
from accessd.models import (
    GENESIS_DIGEST,
    AccessEvent,
    Customer,
    DoorSync,
    EventChain,
    Person,
)
from accessd.site.spool import SpooledEvent, spool_digest_check

_EVENTS = cast(Table, AccessEvent.__table__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one batch did: the door's new mark, events stored, resends skipped, events of
    purged customers dropped."""

    delivered_seq: int
    stored: int
    skipped: int
    dropped: int


def door_sync_row(conn: Connection, door_id: int, *, lock: bool = False) -> int | None:
    """The door's delivered mark (None: no row yet), locked on PostgreSQL if ``lock``."""
    query = select(DoorSync.delivered_seq).where(DoorSync.door_id == door_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return cast(int | None, conn.execute(query).scalar())


def start_of(conn: Connection, door_id: int) -> tuple[int, dict[str, tuple[bytes, int]]]:
    """Where a new spool of door ``door_id`` starts: the delivered mark and the heads of the
    door's chains."""
    mark = conn.execute(select(DoorSync.delivered_seq).where(
        DoorSync.door_id == door_id)).scalar() or 0
    heads = {scope: (bytes(head), int(last)) for scope, head, last in conn.execute(
        select(EventChain.scope, EventChain.head_digest, EventChain.last_seq)
        .where(EventChain.scope.like(f"%@door:{door_id}")))}
    return int(mark), heads


def ingest(conn: Connection, door_id: int, events: Sequence[SpooledEvent], *,
           now: dt.datetime, spool_depth: int = 0) -> Delivery:
    """Store ``events`` (in ``door_seq`` order) of door ``door_id``; the caller commits.

    :raises ChainBrokenError: an event does not continue its chain, or its digest is not what
        its fields give: nothing of the batch is stored (the caller rolls back) and the door's
        spool keeps it for a person to look at.
    """
    mark = lock_mark(conn, door_id, now)
    fresh = [e for e in events if e.door_seq > mark]
    skipped = len(events) - len(fresh)
    customers = _ids(conn, Customer, {e.customer_public_id for e in fresh})
    people = _ids(conn, Person, {e.person_public_id for e in fresh})
    chains: dict[str, list[Any]] = {}  # scope -> [id, head, last_seq, changed]
    rows: list[dict[str, Any]] = []
    dropped = 0
    for event in fresh:
        customer_id = customers.get(event.customer_public_id) if event.customer_public_id else None
        if event.customer_public_id is not None and customer_id is None:
            dropped += 1  # purged meanwhile: nothing of it comes back
            continue
        chain = chains.get(event.scope) or _chain(conn, event.scope, customer_id, now)
        chains[event.scope] = chain
        _check(event, chain, door_id)
        person_id = people.get(event.person_public_id) if event.person_public_id else None
        rows.append({
            "chain_id": chain[0], "seq": event.chain_seq, "customer_id": customer_id,
            "person_id": person_id,
            "subject_salt": event.subject_salt if person_id is not None else None,
            "subject_digest": event.subject_digest, "door_id": door_id, "at": event.at,
            "kind": event.kind, "method": event.method, "reason": event.reason,
            "prev_digest": event.prev_digest, "digest": event.digest,
            "door_seq": event.door_seq, "refers_door_seq": event.refers_door_seq})
        chain[1], chain[2], chain[3] = event.digest, event.chain_seq, True
    if rows:
        conn.execute(_insert_ignoring_resends(conn), rows)
        _resolve_references(conn, door_id, [r["door_seq"] for r in rows
                                            if r["refers_door_seq"] is not None])
    for chain_id, head, last, changed in chains.values():
        if changed:
            conn.execute(update(EventChain).where(EventChain.id == chain_id).values(
                head_digest=head, last_seq=last, updated_at=now))
    last_seq = max([mark, *(e.door_seq for e in events)])
    conn.execute(update(DoorSync).where(DoorSync.door_id == door_id).values(
        delivered_seq=last_seq, spool_depth=spool_depth, contact_at=now))
    return Delivery(last_seq, len(rows), skipped, dropped)


def lock_mark(conn: Connection, door_id: int, now: dt.datetime) -> int:
    """The door's delivered mark, its ``door_sync`` row created if missing and locked."""
    row = door_sync_row(conn, door_id, lock=True)
    if row is None:
        conn.execute(_insert_or_nothing(conn, DoorSync.__table__, ["door_id"]), [{
            "door_id": door_id, "delivered_seq": 0, "snapshot_version": 0, "spool_depth": 0,
            "contact_at": now}])
        row = door_sync_row(conn, door_id, lock=True)
    assert row is not None
    return int(row)


def _ids(conn: Connection, model: type[Customer] | type[Person],
         public_ids: set[uuid.UUID | None]) -> dict[uuid.UUID, int]:
    wanted = [p for p in public_ids if p is not None]
    if not wanted:
        return {}
    return {public: ident for public, ident in conn.execute(
        select(model.public_id, model.id).where(model.public_id.in_(wanted)))}


def _chain(conn: Connection, scope: str, customer_id: int | None,
           now: dt.datetime) -> list[Any]:
    query = select(EventChain.id, EventChain.head_digest, EventChain.last_seq).where(
        EventChain.scope == scope)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        chain_id = conn.execute(cast(Table, EventChain.__table__).insert().values(
            scope=scope, customer_id=customer_id, head_digest=GENESIS_DIGEST, last_seq=0,
            anchor_digest=GENESIS_DIGEST, anchor_seq=0, updated_at=now)
        ).inserted_primary_key[0]  # type: ignore[index]
        return [chain_id, GENESIS_DIGEST, 0, False]
    return [row[0], bytes(row[1]), int(row[2]), False]


def _check(event: SpooledEvent, chain: list[Any], door_id: int) -> None:
    _, head, last, _ = chain
    where = f"door #{door_id}'s event {event.door_seq} (chain {event.scope}, seq {event.chain_seq})"
    if event.chain_seq != last + 1:
        raise ChainBrokenError(f"{where} does not follow the chain's last seq {last}: events "
                               "were lost or reordered before delivery; the spool keeps them")
    if event.prev_digest != head:
        raise ChainBrokenError(f"{where} does not link to the chain's head: the spool or the "
                               "database was altered; the spool keeps the events")
    if not spool_digest_check(event, door_id):
        raise ChainBrokenError(f"{where} was altered after the door recorded it; the spool "
                               "keeps the events")


def _insert_or_nothing(conn: Connection, table: Any, keys: list[str]) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)


def _insert_ignoring_resends(conn: Connection) -> Any:
    statement = _insert_or_nothing(conn, _EVENTS, ["door_id", "door_seq"])
    return statement


def _resolve_references(conn: Connection, door_id: int, seqs: list[int]) -> None:
    """Give events that refer to another (a pulse outcome to its opening) that one's id."""
    if not seqs:
        return
    referred = _EVENTS.alias("referred")
    conn.execute(
        update(_EVENTS)
        .where(and_(_EVENTS.c.door_id == door_id, _EVENTS.c.door_seq.in_(seqs)))
        .values(refers_to=select(referred.c.id).where(
            referred.c.door_id == door_id,
            referred.c.door_seq == _EVENTS.c.refers_door_seq).scalar_subquery()))
