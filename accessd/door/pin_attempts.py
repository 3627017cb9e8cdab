"""Counting typed PINs towards a person's lockout: the write the door's logic asks for with a
``CountPinAttempt`` action, carried out by the daemon's shell before the attempt's event.

A right PIN clears the count; each wrong one adds to it, and at ``max_failures`` in a row the
person's PIN locks for ``lockout`` (the count starts again). The directory's ``check_pin``
reads the lock; only this writes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from accessd.door.logic import CountPinAttempt
from accessd.models import Person


class PinAttempts:
    """The PIN failure count of the site's people.

    :param max_failures: wrong PINs in a row before the person's PIN locks.
    :param lockout: how long it stays locked.
    :param clock: the current moment, aware UTC.
    """

    def __init__(self, sessions: sessionmaker[Session], *, max_failures: int,
                 lockout: dt.timedelta, clock: Callable[[], dt.datetime]) -> None:
        self._sessions = sessions
        self._max_failures = max_failures
        self._lockout = lockout
        self._clock = clock

    def count(self, attempt: CountPinAttempt) -> None:
        """Count one attempt, in a transaction of its own (committed on return)."""
        with self._sessions.begin() as session:
            # Read and written in one write transaction: two doors counting the same
            # person's attempts at once cannot lose one.
            person = session.get(Person, attempt.person_id, with_for_update=True)
            if person is None:
                return  # erased since the PIN was typed: nothing left to count
            if attempt.right:
                person.pin_failures = 0
                person.pin_locked_until = None
                return
            person.pin_failures += 1
            if person.pin_failures >= self._max_failures:
                person.pin_failures = 0
                person.pin_locked_until = self._clock() + self._lockout
