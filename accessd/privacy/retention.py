"""Retention of everything a purge does not cover: each category deleted once past its period.

The periods come from ``settings.retention`` (every category must have one; the config loader
refuses a ``[retention]`` table that leaves one out):

- ``access_history``: ``contract_end`` by default, i.e. kept until the customer is purged
  (``accessd.privacy.purge``); given a period instead, each customer's oldest events go after it;
- ``unknown_finger_events``: the facility's chain, which holds every event without a customer
  (unknown fingers, and tamper, forced-door and fault events alongside them); it is pruned as one
  chain, oldest first, so what is kept still verifies;
- ``staff_audit_log`` and ``login_history``: by the time of the record;
- ``data_subject_requests``: closed requests, counted from their closing;
- ``open_data_subject_requests``: requests never closed, counted from their receipt (local
  days at the site), after staff were reminded of them (``accessd.rights.requests``).

Hash-chained history can only lose its oldest part: pruning deletes a prefix of a chain and
moves the chain's anchor to the last deleted event in the same transaction, so ``verify-log``
tells pruning from tampering. Every step deletes in committed batches and is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from sqlalchemy import Delete, delete, func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from accessd.clock import SiteClock
from accessd.config import AccessSettings, RetentionSettings
from accessd.db import BUSY_TIMEOUT_MS
from accessd.models import (
    AccessEvent,
    AuditRecord,
    DataSubjectRequest,
    EventChain,
    LoginAttempt,
    PersonEvent,
    RequestStatus,
)
from accessd.rights.requests import expired_open_requests

log = logging.getLogger(__name__)

DEFAULT_BATCH = 250_000
"""The most rows one committed transaction deletes (bounds the WAL a batch adds)."""
LOCK_SECONDS = BUSY_TIMEOUT_MS / 1000 / 5
"""How long one batch should hold the write lock: a fifth of the busy timeout the door's own
writes wait, so recording a door event never fails behind a purge. Batches are sized by time,
not by a fixed row count: a Pi deletes several times fewer rows per second than a PC."""
_FIRST_BATCH = 5_000
_SMALLEST_BATCH = 100


class BatchSizer:
    """Rows for the next batch, adapted after each so that a batch takes about ``seconds``
    (commit included), growing at most twofold per step and never beyond ``cap``."""

    def __init__(self, cap: int, seconds: float = LOCK_SECONDS) -> None:
        self.cap, self.seconds = max(1, cap), seconds
        self.size = min(_FIRST_BATCH, self.cap)

    @contextmanager
    def timed(self) -> Iterator[int]:
        """Time one batch of ``size`` rows (enter it before the transaction, so the commit
        counts), then adapt ``size``."""
        started = time.monotonic()
        yield self.size
        ratio = self.seconds / max(time.monotonic() - started, 1e-3)
        self.size = max(min(self.cap, _SMALLEST_BATCH), min(self.cap, int(self.size *
                                                                          min(2.0, ratio))))


def prune_chain(sessions: sessionmaker[Session], chain_id: int, upto_seq: int | None, *,
                batch_size: int = DEFAULT_BATCH, people_too: bool = True,
                deleted: Callable[[int], None] = lambda n: None) -> int:
    """Delete the events of one chain up to ``upto_seq`` (``None``: all), oldest first.

    Each batch moves the chain's anchor to its last deleted event in the same transaction, so
    the chain verifies after every commit. Returns how many events were deleted.
    ``batch_size`` caps a batch (see ``BatchSizer``). The deleted events' ``PersonEvent``
    rows go in the same transaction, unless ``people_too`` is False: a purge deletes those
    first, person by person, which is far cheaper than one lookup per event. ``deleted`` is
    told each committed batch's count (a purge's progress).
    """
    total = 0
    sizer = BatchSizer(batch_size)
    while True:
        with sizer.timed() as size, sessions.begin() as session:
            chain = session.scalars(select(EventChain).where(EventChain.id == chain_id)
                                    .with_for_update()).first()
            if chain is None:
                return total
            limit = chain.last_seq if upto_seq is None else min(upto_seq, chain.last_seq)
            if chain.anchor_seq >= limit:
                return total
            in_range = (AccessEvent.chain_id == chain_id, AccessEvent.seq > chain.anchor_seq,
                        AccessEvent.seq <= limit)
            # The batch's last event: the size-th after the anchor, or the last in range.
            end = session.execute(select(AccessEvent.seq, AccessEvent.digest).where(*in_range)
                                  .order_by(AccessEvent.seq).offset(size - 1).limit(1)
                                  ).first() or session.execute(
                select(AccessEvent.seq, AccessEvent.digest).where(*in_range)
                .order_by(AccessEvent.seq.desc()).limit(1)).first()
            if end is None:
                return total  # nothing left in range (a gap the verifier will report)
            batch = (AccessEvent.chain_id == chain_id, AccessEvent.seq <= end.seq)
            if people_too:
                session.execute(delete(PersonEvent).where(
                    tuple_(PersonEvent.person_id, PersonEvent.at, PersonEvent.event_id).in_(
                        select(AccessEvent.person_id, AccessEvent.at, AccessEvent.id)
                        .where(*batch, AccessEvent.person_id.is_not(None))))
                    .execution_options(synchronize_session=False))
            result = session.execute(delete(AccessEvent).where(*batch)
                                     .execution_options(synchronize_session=False))
            chain.anchor_seq, chain.anchor_digest = end.seq, end.digest
            count = int(getattr(result, "rowcount", 0) or 0)
            total += count
        deleted(count)


def prune_chain_before(sessions: sessionmaker[Session], chain_id: int, cutoff: dt.datetime, *,
                       batch_size: int = DEFAULT_BATCH) -> int:
    """Delete a chain's oldest events, those recorded before ``cutoff``.

    Only a prefix can go: everything before the first event at or after ``cutoff``. An older
    event recorded after a newer one (a clock set back) waits until that one is due as well.
    """
    with sessions() as session:
        first_kept = session.scalar(select(func.min(AccessEvent.seq)).where(
            AccessEvent.chain_id == chain_id, AccessEvent.at >= cutoff))
    return prune_chain(sessions, chain_id, None if first_kept is None else first_kept - 1,
                       batch_size=batch_size)


def enforce_retention(sessions: sessionmaker[Session], now: dt.datetime,
                      retention: RetentionSettings | None = None, *,
                      batch_size: int = DEFAULT_BATCH,
                      today: dt.date | None = None) -> dict[str, int]:
    """Delete what is past its retention period at ``now``; returns deleted rows per category.

    ``retention`` defaults to the defaults; pass ``settings.retention``. ``today`` is the local
    day at the site (``SiteClock.today()``; default: ``now``'s day in the default time zone),
    for what is counted in days: open requests. Idempotent: a second run at the same ``now``
    deletes nothing. The caller truncates the SQLite WAL afterwards
    (``accessd.db.checkpoint_wal``) when anything was deleted.
    """
    retention = retention or RetentionSettings()
    if today is None:
        today = SiteClock(ZoneInfo(AccessSettings().timezone), lambda: now).today()
    deleted = {
        "access_history": _access_history(sessions, now, retention, batch_size),
        "unknown_finger_events": _facility_events(sessions, now, retention, batch_size),
        "staff_audit_log": _older_than(sessions, retention.staff_audit_log.cutoff(now),
                                       AuditRecord, batch_size),
        "login_history": _older_than(sessions, retention.login_history.cutoff(now),
                                     LoginAttempt, batch_size),
        "data_subject_requests": _closed_requests(sessions, now, retention, batch_size),
        "open_data_subject_requests": _expired_open_requests(sessions, today, retention),
    }
    if any(deleted.values()):
        log.info("retention deleted %s", ", ".join(f"{n} {c}" for c, n in deleted.items() if n))
    return deleted


def _access_history(sessions: sessionmaker[Session], now: dt.datetime,
                    retention: RetentionSettings, batch_size: int) -> int:
    cutoff = retention.access_history.cutoff(now)
    if cutoff is None:
        return 0  # until contract end: the purge deletes it with the customer
    with sessions() as session:
        chains = session.scalars(select(EventChain.id).where(
            EventChain.customer_id.is_not(None)).order_by(EventChain.id)).all()
    return sum(prune_chain_before(sessions, c, cutoff, batch_size=batch_size) for c in chains)


def _facility_events(sessions: sessionmaker[Session], now: dt.datetime,
                     retention: RetentionSettings, batch_size: int) -> int:
    cutoff = retention.unknown_finger_events.cutoff(now)
    if cutoff is None:  # refused by the config loader; a hand-built settings object may try
        return 0
    with sessions() as session:
        # The facility's chain, and each site door's own (``facility@door:<id>``).
        chains = session.scalars(select(EventChain.id).where(
            EventChain.customer_id.is_(None)).order_by(EventChain.id)).all()
    return sum(prune_chain_before(sessions, c, cutoff, batch_size=batch_size) for c in chains)


def _older_than(sessions: sessionmaker[Session], cutoff: dt.datetime | None,
                model: type[AuditRecord] | type[LoginAttempt], batch_size: int) -> int:
    if cutoff is None:
        return 0
    return delete_in_batches(sessions, lambda n: delete(model).where(model.id.in_(
        select(model.id).where(model.at < cutoff).limit(n))), batch_size)


def _closed_requests(sessions: sessionmaker[Session], now: dt.datetime,
                     retention: RetentionSettings, batch_size: int) -> int:
    cutoff = retention.data_subject_requests.cutoff(now)
    if cutoff is None:
        return 0
    return delete_in_batches(sessions, lambda n: delete(DataSubjectRequest).where(
        DataSubjectRequest.id.in_(select(DataSubjectRequest.id).where(
            DataSubjectRequest.status == RequestStatus.CLOSED,
            DataSubjectRequest.closed_at < cutoff).limit(n))), batch_size)


def _expired_open_requests(sessions: sessionmaker[Session], today: dt.date,
                           retention: RetentionSettings) -> int:
    # Open requests are few (each must be answered within months): one transaction.
    with sessions.begin() as session:
        expired = expired_open_requests(session, today, retention.open_data_subject_requests)
        if not expired:
            return 0
        session.execute(delete(DataSubjectRequest).where(
            DataSubjectRequest.id.in_(expired), DataSubjectRequest.status == RequestStatus.OPEN)
            .execution_options(synchronize_session=False))
    log.warning("deleted %d data-subject request(s) never closed, %s after receipt "
                "(retention.open_data_subject_requests)", len(expired),
                retention.open_data_subject_requests)
    return len(expired)


def delete_in_batches(sessions: sessionmaker[Session], build: Callable[[int], Delete],
                      batch_size: int = DEFAULT_BATCH, *,
                      deleted: Callable[[int], None] = lambda n: None) -> int:
    """Run ``build(n)``, a DELETE of at most n rows (``id IN (SELECT ... LIMIT n)``, which
    SQLite and PostgreSQL both accept), until it deletes nothing, committing each batch and
    sizing batches with ``BatchSizer``; returns the total."""
    total = 0
    sizer = BatchSizer(batch_size)
    while True:
        with sizer.timed() as size, sessions.begin() as session:
            result = session.execute(build(size).execution_options(synchronize_session=False))
            count = int(getattr(result, "rowcount", 0) or 0)
        total += count
        deleted(count)
        if count == 0:
            return total
