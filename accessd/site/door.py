"""What the door daemon uses in site mode (``[site] snapshot`` set): its snapshot as the
logic's directory and PIN counter, its spool as the event recorder, and the sync thread.

``SpoolRecorder`` has the reserve-journal recorder's interface (``accessd.door.recorder``): an
event is recorded once committed in the spool, whatever the network does; the sync thread
delivers it. ``EventRef.journal_seq`` is the event's ``door_seq``, so a pulse outcome names its
opening by it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from accessd.config import Settings
from accessd.door.devices import DeviceProblem
from accessd.door.logic import Record
from accessd.door.recorder import EventRef
from accessd.errors import SpoolError
from accessd.site.snapshot import Snapshot, SnapshotPinAttempts
from accessd.site.spool import EventSpool
from accessd.site.sync import SiteSync

log = logging.getLogger("accessd.door.daemon")


class SpoolRecorder:
    """The door's events into its spool (any thread)."""

    journal = None  # the daemon's reserve journal: none in site mode (the spool is the one)

    def __init__(self, spool: EventSpool, sync: SiteSync, *,
                 now: Callable[[], dt.datetime]) -> None:
        self.spool = spool
        self.sync = sync
        self._now = now

    def record(self, record: Record, *, about: EventRef | None = None) -> EventRef | None:
        """Commit ``record`` to the spool; None when it could not be (the door stays shut)."""
        at = self._now()
        try:
            seq = self.spool.append(
                kind=record.kind.value, at=at,
                method=record.method.value if record.method else None,
                reason=record.reason, customer_public_id=record.customer_public_id,
                person_public_id=record.person_public_id,
                refers_door_seq=about.journal_seq if about else None)
        except SpoolError as exc:
            log.error("could not record %s: %s", record.kind, exc)
            return None
        self.sync.wake()
        return EventRef(at, journal_seq=seq)

    def noticed(self, exc: Exception) -> None:
        """Another write failed on the site's database: the sync thread's error says why."""

    def succeeded(self) -> None:
        """Another write went through."""

    @property
    def healthy(self) -> bool:
        return self.sync.error is None and self.sync.broken is None

    def fault_text(self) -> str | None:
        parts = []
        if self.sync.broken is not None:
            parts.append(f"delivery stopped: {self.sync.broken}")
        if self.sync.error is not None:
            parts.append(f"site database unreachable ({self.sync.error}); deciding from the "
                         f"snapshot, {self.spool.depth} event(s) spooled")
        return "; ".join(parts) or None

    def database_problem(self) -> tuple[DeviceProblem | None, int, dt.datetime]:
        """The site's database as the status reports it: failing while the sync thread cannot
        reach it (the door decides from its snapshot and spools), catching up while spooled
        events wait, and how many."""
        kept = self.spool.depth
        now = self._now()
        if not self.healthy:
            return DeviceProblem.DB_FAILING, kept, self.sync.reached_at or now
        return (DeviceProblem.DB_CATCHING_UP if kept else None), kept, now

    def drain(self, budget: float = 0.5) -> int:
        return 0  # the sync thread delivers

    def tick(self, sessions: Any) -> None:
        return None


@dataclass
class SiteDoor:
    """A site door's local state and its link to the site's database."""

    spool: EventSpool
    snapshot: Snapshot
    sync: SiteSync
    recorder: SpoolRecorder
    pin_attempts: SnapshotPinAttempts
    thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        self.thread = threading.Thread(target=self.sync.run, args=(stop,), name="site-sync",
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.spool.close()
        self.snapshot.close()


def open_site_door(settings: Settings, engine: Engine, door_id: int, *,
                   now: Callable[[], dt.datetime]) -> SiteDoor:
    """Open the door's spool and snapshot and try one round with the site's database (a door
    that cannot reach it decides from the snapshot it has, while that is fresh enough).

    :raises SpoolError, SnapshotError: the local files cannot be opened.
    """
    site = settings.site
    assert site.snapshot is not None
    spool = EventSpool.open(site.spool, door_id)
    snapshot = Snapshot.open(site.snapshot, door_id, now=now,
                             max_staleness=dt.timedelta(hours=site.max_staleness_hours))
    sync = SiteSync(engine, door_id, spool, snapshot, now=now, poll_seconds=site.poll_seconds)
    try:
        sync.sync_now()
    except Exception as exc:  # any failure here leaves the sync thread to try again
        log.warning("the door starts without reaching the site's database: %s", exc)
    a = settings.access
    pins = SnapshotPinAttempts(snapshot, max_failures=a.pin_max_failures,
                               lockout=dt.timedelta(seconds=a.pin_lockout_seconds))
    return SiteDoor(spool, snapshot, sync, SpoolRecorder(spool, sync, now=now), pins)
