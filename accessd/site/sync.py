"""A site door's link to the site's database: deliver the spool, keep the snapshot current.

One thread per door daemon. Each round: deliver the spooled events (oldest first, in batches,
``accessd.site.ingest``), then read the site's version and copy the door's slice if it moved
(``accessd.site.snapshot``), forget the spool's chains of customers no longer in it, and write
the door's ``door_sync`` row (last contact, snapshot version, spool depth). Between rounds it
waits on LISTEN ``accessd_site`` (a dedicated psycopg connection: a notification only wakes it,
the version is read from the table) or ``poll_seconds``, whichever comes first; while the
database cannot be reached it retries with a growing pause (at most ``poll_seconds``). The door
never waits for any of this: it decides from the snapshot and records into the spool.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from sqlalchemy import Engine, make_url, update
from sqlalchemy.exc import SQLAlchemyError

from accessd.errors import ChainBrokenError, SnapshotError, SpoolError
from accessd.models import SITE_CHANNEL, DoorSync
from accessd.site.ingest import ingest, lock_mark, start_of
from accessd.site.snapshot import Snapshot
from accessd.site.spool import EventSpool

log = logging.getLogger("accessd.site")

DELIVER_BATCH = 1000
MIN_RETRY = 0.5


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did."""

    delivered: int
    copied: bool


class SiteSync:
    """Delivers ``spool`` and refreshes ``snapshot`` through ``engine`` (the site's database).

    :param poll_seconds: the longest wait between two rounds without a notification.
    """

    def __init__(self, engine: Engine, door_id: int, spool: EventSpool, snapshot: Snapshot, *,
                 now: Callable[[], dt.datetime], poll_seconds: float) -> None:
        self.engine = engine
        self.door_id = door_id
        self.spool = spool
        self.snapshot = snapshot
        self._now = now
        self.poll_seconds = poll_seconds
        self.error: str | None = None  # the last round's failure, None once one succeeds
        self.reached_at: dt.datetime | None = None  # when a round last reached the database
        self.broken: str | None = None  # a chain the database refused: delivery stops
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one round at a time (the thread, or ``sync_now``)
        self._listener: psycopg.Connection[tuple[object, ...]] | None = None

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set."""
        pause = MIN_RETRY
        while not stop.is_set():
            try:
                self.sync_now()
            except (SQLAlchemyError, psycopg.Error, SpoolError, SnapshotError):
                self._close_listener()
                stop.wait(pause)
                pause = min(pause * 2, self.poll_seconds)
                continue
            pause = MIN_RETRY
            self._wait(stop)
        self._close_listener()

    def wake(self) -> None:
        """Start a round now (an event was spooled)."""
        self._wake.set()

    def sync_now(self) -> Round:
        """One round, in the caller's thread.

        :raises SQLAlchemyError: the database could not be reached (``error`` says so).
        """
        with self._lock:
            try:
                result = self._round()
            except (SQLAlchemyError, psycopg.Error, SpoolError, SnapshotError) as exc:
                text = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
                if self.error is None:
                    log.warning("the site's database cannot be reached (%s); the door decides "
                                "from its snapshot and spools its events", text)
                self.error = text
                raise
            if self.error is not None:
                log.info("the site's database answers again")
            self.error = None
            self.reached_at = self._now()
            return result

    def _round(self) -> Round:
        if not self.spool.seeded:
            with self.engine.connect() as conn:
                self.spool.seed(*start_of(conn, self.door_id))
        delivered = self._deliver()
        with self.engine.connect() as conn:
            copied = self.snapshot.refresh(
                conn.execution_options(isolation_level="REPEATABLE READ"))
        if copied:
            dropped = self.spool.forget_customers(self.snapshot.customers())
            if dropped:
                log.info("dropped %d spooled event(s) of purged customers", dropped)
        with self.engine.begin() as conn:
            lock_mark(conn, self.door_id, self._now())
            conn.execute(update(DoorSync).where(DoorSync.door_id == self.door_id).values(
                snapshot_version=self.snapshot.version, snapshot_synced_at=self._now(),
                spool_depth=self.spool.depth, contact_at=self._now()))
        return Round(delivered, copied)

    def _deliver(self) -> int:
        delivered = 0
        while self.spool.depth and self.broken is None:
            events = self.spool.oldest(DELIVER_BATCH)
            if not events:
                break
            try:
                with self.engine.begin() as conn:
                    done = ingest(conn, self.door_id, events, now=self._now(),
                                  spool_depth=max(0, self.spool.depth - len(events)))
            except ChainBrokenError as exc:
                self.broken = str(exc)
                log.error("delivery stopped: %s", exc)
                break
            self.spool.delivered(done.delivered_seq)
            delivered += done.stored
        if delivered:
            log.info("delivered %d spooled event(s) to the site's database", delivered)
        return delivered

    def _wait(self, stop: threading.Event) -> None:
        """Until a notification, ``wake``, ``stop`` or ``poll_seconds``."""
        deadline = self.poll_seconds
        step = 0.25  # how often ``stop`` and ``wake`` are looked at while listening
        waited = 0.0
        try:
            listener = self._listen()
        except psycopg.Error:
            listener = None
        while waited < deadline and not stop.is_set() and not self._wake.is_set():
            if listener is None:
                stop.wait(step)
            else:
                try:
                    if any(True for _ in listener.notifies(timeout=step, stop_after=1)):
                        break
                except psycopg.Error:
                    self._close_listener()
                    listener = None
            waited += step
        self._wake.clear()

    def _listen(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._listener is None or self._listener.closed:
            self._close_listener()  # a broken one (its backend ended) is released, not dropped
            url = make_url(self.engine.url).set(drivername="postgresql")
            self._listener = psycopg.connect(url.render_as_string(hide_password=False),
                                             autocommit=True, connect_timeout=5)
            self._listener.execute(f"LISTEN {SITE_CHANNEL}")
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except psycopg.Error:
                pass
            self._listener = None
