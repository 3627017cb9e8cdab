"""What the door does, as a state machine with an injected clock; it writes nothing.

The daemon's threads feed it what the hardware saw (a search result, a keypad key, a door board
event, the passing of time) and carry out the actions it returns, in order: events are recorded
(committed) before the relay is pulsed, so every opening is on record and a database that
cannot be written keeps the door shut. Tests drive it with a moving clock instead of sleeping.

It reads through a ``Directory`` (who holds this slot, whose code and PIN is this), whose
lookups only read; whatever must be written (an event, an alarm, a PIN attempt counted towards
the person's lockout, a wiped sensor) is an action the daemon's shell carries out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal, Protocol
from uuid import UUID

from accessd.door.decision import (
    Access,
    CustomerView,
    Decision,
    PersonView,
    Reason,
    decide,
)
from accessd.models.enums import AlarmKind, AuthMode, EventKind, EventMethod
from firmware_bridge.door import DoorEvent, DoorEventKind

MIN_RELEASE_SECONDS = 3.0
KEYPAD_MAX_KEYS = 24  # longer entries are dropped: nobody types a 24-digit code at a door


@dataclass(frozen=True, slots=True)
class DoorRules:
    """The access section of the configuration, as the door loop uses it."""

    release_seconds: float = 5.0
    held_open_alarm_seconds: float = 15.0
    max_failures: int = 5
    failure_window_seconds: float = 60.0
    backoff_seconds: float = 30.0
    keypad_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.release_seconds < MIN_RELEASE_SECONDS:
            raise ValueError(f"release time must be at least {MIN_RELEASE_SECONDS:g} s")


# --- actions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """An event to append to the access history (customer's chain, or the facility's)."""

    kind: EventKind
    method: EventMethod | None = None
    reason: str | None = None
    customer_id: int | None = None
    person_id: int | None = None
    customer_public_id: UUID | None = field(default=None, compare=False)
    person_public_id: UUID | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Pulse:
    """Unlock for ``seconds`` (the board relocks by itself)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class RaiseAlarm:
    kind: AlarmKind
    detail: str


@dataclass(frozen=True, slots=True)
class WipeSensor:
    """Empty the sensor's library now (tamper: the reader sits outside the door)."""


@dataclass(frozen=True, slots=True)
class CountPinAttempt:
    """Count a typed PIN towards its holder's lockout: a right one clears the count, a wrong
    one adds to it (and locks the PIN for a while at the configured maximum). Comes before
    the attempt's event: a count that cannot be written keeps the door shut."""

    person_id: int
    right: bool


@dataclass(frozen=True, slots=True)
class VerifyFinger:
    """Check the next finger 1:1 against ``person_id``'s templates (uploaded to the chip's
    character buffer), for at most ``seconds``; answer with ``DoorLogic.finger_checked``."""

    person_id: int
    seconds: float


Action = Record | Pulse | RaiseAlarm | WipeSensor | CountPinAttempt | VerifyFinger


@dataclass(frozen=True, slots=True)
class Pending:
    """One factor given and accepted; ``awaits`` the other until ``expires`` (monotonic)."""

    customer: CustomerView
    person: PersonView
    awaits: Literal["finger", "pin"]
    expires: float
    method: EventMethod


# --- what the logic asks of the database ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinCheck:
    """The directory's answer to a typed code and PIN: whose code it is, whether the PIN is
    that person's, and whether their PIN is locked after too many wrong ones."""

    customer: CustomerView | None
    person: PersonView | None
    accepted: bool
    locked: bool = False


class Directory(Protocol):
    """The lookups the door needs. They only read: the PIN failure count is kept through
    ``CountPinAttempt`` actions. The daemon's implementation reads the database each time,
    so that a restriction set in the panel applies at the very next finger."""

    def by_slot(self, slot: int) -> tuple[CustomerView, PersonView] | None: ...

    def check_pin(self, code: str, pin: str) -> PinCheck: ...

    def by_code(self, code: str) -> tuple[CustomerView, PersonView] | None:
        """Whose person code this is (no PIN: a finger checked 1:1 follows)."""
        ...

    def access(self, person: PersonView, door_id: int, day: date) -> Access:
        """The person's grants covering the door, the door's mode, and whether ``day`` is a
        site holiday."""
        ...


@dataclass
class DoorLogic:
    """One door's state: relay, contact, failures, keypad entry, alarms."""

    door_id: int
    rules: DoorRules
    directory: Directory
    today: Callable[[], date]
    # The site's wall-clock time (schedules, validity); without it, midnight of ``today``.
    local_now: Callable[[], datetime] | None = None
    unlocked_until: float = 0.0
    door_open_since: float | None = None
    held_alarm_raised: bool = False
    backoff_until: float = 0.0
    tamper: bool = False
    _failures: deque[float] = field(default_factory=deque)
    _keys: str = ""
    _last_key_at: float = 0.0
    _pending: Pending | None = None  # one factor given, the other awaited

    # --- inputs -----------------------------------------------------------------------------

    def accepting(self, now: float) -> bool:
        """False while the reader backs off after repeated failures."""
        return now >= self.backoff_until

    def finger(self, slot: int | None, now: float) -> list[Action]:
        """A finger was searched on the chip: ``slot`` is the match, or ``None``.

        While the tamper alarm is open the sensor is wiped and not searched: a finger placed
        then is refused on record (someone tried the door), counted as no failure.
        """
        if self.tamper:
            return [Record(EventKind.DENIED, EventMethod.FINGER, Reason.READER_TAMPERED.value)]
        if not self.accepting(now):
            return [Record(EventKind.DENIED, EventMethod.FINGER, Reason.READER_BACKOFF.value)]
        if slot is None:
            # Recorded without personal data: an unknown finger belongs to nobody we know.
            return [Record(EventKind.UNKNOWN_FINGER, EventMethod.FINGER),
                    *self._failure(now)]
        found = self.directory.by_slot(slot)
        if found is None:
            return [Record(EventKind.UNKNOWN_FINGER, EventMethod.FINGER, "slot_not_in_database"),
                    *self._failure(now)]
        customer, person = found
        access = self.directory.access(person, self.door_id, self._local().date())
        if access.mode is AuthMode.PIN:
            return self._apply(Decision(False, Reason.METHOD_NOT_ALLOWED), customer, person,
                               EventMethod.FINGER, now)
        decision = self._decide(customer, person, "finger", access)
        pending = self._pending
        if access.mode is not AuthMode.FINGER_AND_PIN or not decision.allowed:
            if pending is not None and pending.person.id == person.id:
                self._pending = None  # found by search while a 1:1 check was awaited
            return self._apply(decision, customer, person, EventMethod.FINGER, now)
        if pending is not None and pending.awaits == "finger" and pending.expires > now:
            # A PIN typed first waits for a 1:1 check; a searched finger answers it too.
            self._pending = None
            if pending.person.id != person.id:
                return self._apply(Decision(False, Reason.SECOND_FACTOR_MISMATCH), customer,
                                   person, EventMethod.FINGER_AND_PIN, now)
            return self._apply(decision, customer, person, EventMethod.FINGER_AND_PIN, now)
        self._pending = Pending(customer, person, "pin", now + self.rules.keypad_timeout_seconds,
                                EventMethod.FINGER_AND_PIN)
        return []

    def key(self, key: str, now: float) -> list[Action]:
        """One keypad key. Entries are ``<person code>*<PIN>#``, or ``<person code>#`` then a
        finger checked 1:1 against that person's; ``*`` alone restarts."""
        if self._keys and now - self._last_key_at > self.rules.keypad_timeout_seconds:
            self._keys = ""
        self._last_key_at = now
        if key != "#":
            self._keys = (self._keys + key)[-KEYPAD_MAX_KEYS:]
            return []
        entry, self._keys = self._keys, ""
        code, sep, pin = entry.partition("*")
        if not self.accepting(now):
            return [Record(EventKind.DENIED, EventMethod.PIN, Reason.READER_BACKOFF.value)]
        if code and not sep:
            return self._code_then_finger(code, now)
        if not sep or not code or not pin:
            return [Record(EventKind.DENIED, EventMethod.PIN, "malformed_entry"),
                    *self._failure(now)]
        check = self.directory.check_pin(code, pin)
        if check.customer is None or check.person is None:
            return [Record(EventKind.DENIED, EventMethod.PIN, Reason.UNKNOWN_CREDENTIAL.value),
                    *self._failure(now)]
        if check.locked:  # a locked PIN is not tried, so not counted either
            return self._apply(Decision(False, Reason.PIN_LOCKED), check.customer,
                               check.person, EventMethod.PIN, now)
        count = CountPinAttempt(check.person.id, right=check.accepted)
        if not check.accepted:
            return [count, *self._apply(Decision(False, Reason.WRONG_PIN), check.customer,
                                        check.person, EventMethod.PIN, now)]
        access = self.directory.access(check.person, self.door_id, self._local().date())
        if access.mode is AuthMode.FINGER:
            return [count, *self._apply(Decision(False, Reason.METHOD_NOT_ALLOWED),
                                        check.customer, check.person, EventMethod.PIN, now)]
        decision = self._decide(check.customer, check.person, "pin", access)
        if access.mode is not AuthMode.FINGER_AND_PIN or not decision.allowed:
            return [count, *self._apply(decision, check.customer, check.person,
                                        EventMethod.PIN, now)]
        pending = self._pending
        if pending is not None and pending.awaits == "pin" and pending.expires > now:
            self._pending = None
            if pending.person.id != check.person.id:
                decision = Decision(False, Reason.SECOND_FACTOR_MISMATCH)
            return [count, *self._apply(decision, check.customer, check.person,
                                        EventMethod.FINGER_AND_PIN, now)]
        return [count, *self._await_finger(check.customer, check.person,
                                           EventMethod.FINGER_AND_PIN, now)]

    def _code_then_finger(self, code: str, now: float) -> list[Action]:
        """``<person code>#``: the finger that follows is checked 1:1 against that person's
        templates (for people whose templates the sensor's library does not hold)."""
        found = self.directory.by_code(code)
        if found is None:
            return [Record(EventKind.DENIED, EventMethod.CODE_AND_FINGER,
                           Reason.UNKNOWN_CREDENTIAL.value), *self._failure(now)]
        customer, person = found
        access = self.directory.access(person, self.door_id, self._local().date())
        if access.mode in (AuthMode.PIN, AuthMode.FINGER_AND_PIN):
            # A code is no secret: it chooses whose finger to check, it is not a PIN.
            return self._apply(Decision(False, Reason.METHOD_NOT_ALLOWED), customer, person,
                               EventMethod.CODE_AND_FINGER, now)
        decision = self._decide(customer, person, "finger", access)
        if not decision.allowed:
            return self._apply(decision, customer, person, EventMethod.CODE_AND_FINGER, now)
        return self._await_finger(customer, person, EventMethod.CODE_AND_FINGER, now)

    def _await_finger(self, customer: CustomerView, person: PersonView, method: EventMethod,
                      now: float) -> list[Action]:
        expires = now + self.rules.keypad_timeout_seconds
        self._pending = Pending(customer, person, "finger", expires, method)
        return [VerifyFinger(person.id, self.rules.keypad_timeout_seconds)]

    def awaiting_finger(self, now: float) -> tuple[int, float] | None:
        """The person whose finger the sensor should check 1:1 now, and until when
        (monotonic), if any."""
        pending = self._pending
        if pending is not None and pending.awaits == "finger" and pending.expires > now:
            return pending.person.id, pending.expires
        return None

    def finger_checked(self, person_id: int, matched: bool, now: float) -> list[Action]:
        """The 1:1 check asked for by ``VerifyFinger`` ended: ``matched`` says whether the
        finger presented is one of ``person_id``'s templates."""
        pending = self._pending
        if (pending is None or pending.awaits != "finger" or pending.person.id != person_id
                or pending.expires <= now):
            return []  # answered late: the timeout already refused, on record
        self._pending = None
        decision = Decision(True, Reason.ALLOWED) if matched else Decision(
            False, Reason.FINGER_NOT_MATCHED)
        return self._apply(decision, pending.customer, pending.person, pending.method, now)

    def _decide(self, customer: CustomerView, person: PersonView, method: str,
                access: Access) -> Decision:
        local = self._local()
        return decide(customer, person, self.door_id, local.date(), method=method,
                      access=access, local=local)

    def _local(self) -> datetime:
        if self.local_now is not None:
            return self.local_now()
        return datetime.combine(self.today(), time())

    def board(self, event: DoorEvent, now: float) -> list[Action]:
        """Something the door board reported."""
        kind = event.kind
        if kind is DoorEventKind.KEY and event.key:
            return self.key(event.key, now)
        if kind is DoorEventKind.EXIT_PRESSED:
            self.unlocked_until = now + self.rules.release_seconds
            return [Record(EventKind.EXIT), Pulse(self.rules.release_seconds)]
        if kind is DoorEventKind.DOOR_OPENED:
            self.door_open_since = now
            self.held_alarm_raised = False
            return []
        if kind is DoorEventKind.DOOR_CLOSED:
            self.door_open_since = None
            self.held_alarm_raised = False
            return []
        if kind is DoorEventKind.DOOR_FORCED:
            self.door_open_since = now
            return [Record(EventKind.DOOR_FORCED),
                    RaiseAlarm(AlarmKind.DOOR_FORCED, "the door was opened while locked")]
        if kind is DoorEventKind.TAMPER_ON and not self.tamper:
            self.tamper = True
            return [WipeSensor(), Record(EventKind.TAMPER, reason="reader_opened"),
                    RaiseAlarm(AlarmKind.TAMPER, "the reader's housing was opened; its "
                               "templates were wiped; clear the alarm to refill it")]
        if kind is DoorEventKind.TAMPER_OFF:
            return [Record(EventKind.TAMPER, reason="reader_closed")]
        if kind is DoorEventKind.WIRE_REJECTED:
            return [Record(EventKind.FAULT, reason=f"door board wire: {event.reason}"),
                    RaiseAlarm(AlarmKind.DOOR_WIRE, wire_alarm_text(
                        f"the door board refused a {event.reason} on its wire"))]
        if kind is DoorEventKind.RELOCKED:
            self.unlocked_until = min(self.unlocked_until, now)
        return []

    def remote_unlock(self, now: float, reason: str) -> list[Action]:
        """Staff let someone in (an escorted visitor, a person without a credential)."""
        self.unlocked_until = now + self.rules.release_seconds
        return [Record(EventKind.GRANTED, EventMethod.REMOTE, reason),
                Pulse(self.rules.release_seconds)]

    def tick(self, now: float) -> list[Action]:
        """Time passed: held-open alarm, keypad entry timeout."""
        actions: list[Action] = []
        if (self.door_open_since is not None and not self.held_alarm_raised
                and now - self.door_open_since > self.rules.held_open_alarm_seconds):
            self.held_alarm_raised = True
            actions += [Record(EventKind.DOOR_HELD_OPEN),
                        RaiseAlarm(AlarmKind.DOOR_HELD_OPEN,
                                   f"the door stayed open longer than "
                                   f"{self.rules.held_open_alarm_seconds:g} s")]
        if self._keys and now - self._last_key_at > self.rules.keypad_timeout_seconds:
            self._keys = ""
        pending = self._pending
        if pending is not None and pending.expires <= now:
            self._pending = None
            actions += self._apply(Decision(False, Reason.SECOND_FACTOR_MISSING),
                                   pending.customer, pending.person, pending.method, now)
        return actions

    def tamper_cleared(self) -> None:
        self.tamper = False

    # --- decisions --------------------------------------------------------------------------

    def _apply(self, decision: Decision, customer: CustomerView, person: PersonView,
               method: EventMethod, now: float) -> list[Action]:
        kind = EventKind.GRANTED if decision.allowed else EventKind.DENIED
        record = Record(kind, method, decision.reason.value, customer.id, person.id,
                        customer.public_id, person.public_id)
        if decision.allowed:
            self.unlocked_until = now + self.rules.release_seconds
            return [record, Pulse(self.rules.release_seconds)]
        return [record, *self._failure(now)]

    def _failure(self, now: float) -> list[Action]:
        window = self.rules.failure_window_seconds
        self._failures.append(now)
        while self._failures and now - self._failures[0] > window:
            self._failures.popleft()
        if len(self._failures) < self.rules.max_failures:
            return []
        self._failures.clear()
        self.backoff_until = now + self.rules.backoff_seconds
        return [Record(EventKind.ALARM, reason=AlarmKind.FAILURE_BACKOFF.value),
                RaiseAlarm(AlarmKind.FAILURE_BACKOFF,
                           # Past tense: the alarm stays open until staff clear it, long
                           # after the pause is over (issue 12).
                           f"{self.rules.max_failures} refusals within {window:g} s; the reader "
                           f"then ignored fingers and PINs for "
                           f"{self.rules.backoff_seconds:g} s")]


def wire_alarm_text(what: str) -> str:
    """The door-wire alarm's text: what happened, and what staff should do."""
    return (f"{what}; the relay did not move. Someone may be on the cable between the Pi and "
            "the door board: inspect the cable and the board's case, then clear the alarm")
