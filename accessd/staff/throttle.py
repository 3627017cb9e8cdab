"""Sign-in throttling that a stranger cannot turn into a denial of service.

Counted in ``LoginAttempt`` rows (the login history), so a restart resets nothing. Three
counters, numbers in ``accessd.staff.policy``:

1. **An address** (password spraying): 30 failed or refused attempts from one source address
   within 15 minutes pause that address, for every name, until it has been quiet long enough
   (refused attempts count, so an address that keeps hammering stays paused).
2. **A name from an address**: 10 failures of one name from one address, since that address's
   last success for it, pause the name *from that address only*: 15 minutes, doubling with
   each further failure up to 24 hours. The owner signing in from elsewhere is not affected.
3. **A name from everywhere** (guessing from many addresses): 20 *checked* failures of one name
   within 15 minutes (the password was actually tried; attempts refused by 1 or 2 are not)
   pause the name for everyone, until the oldest of them is 15 minutes old.

The bound this gives the owner of an account, whatever strangers do:

- from **one** address, no number of failures keeps the owner out anywhere else: that address
  is checked at most 10 times per name per 15 minutes (then 1 per doubling lock), so it can
  never reach the 20 of counter 3 alone;
- from **several** addresses, the name is paused for everyone **at most 15 minutes after the
  latest checked failure**; the pause never escalates and refused attempts never extend it.
  Keeping it paused costs 20 fresh guesses every 15 minutes from addresses not yet paused;
- an admin ends every pause of a name at once: ``accessd user unlock NAME`` or the staff page
  (``unlock``, audited). Address pauses are about the address, not the account: they end by
  themselves once the address is quiet.

A success resets counters 2 (for its address) and 3; an unlock resets both for every address.
Unknown names are counted like real ones, so throttling reveals nothing about which exist.
Behind a reverse proxy, ``proxy_hops`` must be set so the address is the client's: otherwise
every request comes from the proxy and counter 1 would pause everyone together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from accessd.models import LoginAttempt, LoginOutcome
from accessd.models.staff import ADDRESS_LENGTH
from accessd.staff.accounts import normalise_username
from accessd.staff.audit import sanitise
from accessd.staff.policy import (
    ACCOUNT_THRESHOLD,
    ACCOUNT_WINDOW,
    ADDRESS_THRESHOLD,
    ADDRESS_WINDOW,
    LOCKOUT_BASE,
    LOCKOUT_MAX,
    LOCKOUT_THRESHOLD,
)

CHECKED_FAILURES = (
    LoginOutcome.BAD_PASSWORD,
    LoginOutcome.BAD_TOTP,
    LoginOutcome.TOTP_REPLAY,
    LoginOutcome.UNKNOWN_USER,
    LoginOutcome.DISABLED,
)
"""Attempts whose password was tried and failed: what the name counters count."""
REFUSED = (LoginOutcome.LOCKED_OUT, LoginOutcome.THROTTLED)
"""Attempts refused before any check: counted against their address only."""
_USERNAME_COLUMN = 64
_MAX_LISTED_ADDRESSES = 50  # pair locks a summary looks at; more is an attack, said as such


def attempt_name(typed: str) -> str:
    """The user name as a ``LoginAttempt`` row stores it."""
    return sanitise(normalise_username(typed), _USERNAME_COLUMN)


def attempt_address(address: str | None) -> str | None:
    """The source address as a ``LoginAttempt`` row stores it."""
    return None if address is None else address[:ADDRESS_LENGTH]


@dataclass(frozen=True, slots=True)
class Pause:
    """Why and until when an attempt is refused unchecked."""

    until: dt.datetime
    outcome: LoginOutcome  # THROTTLED (the address) or LOCKED_OUT (the name)


@dataclass(frozen=True, slots=True)
class NameLocks:
    """What keeps a name out right now, for admins: everywhere, and from which addresses."""

    everywhere_until: dt.datetime | None
    addresses: dict[str | None, dt.datetime] = field(default_factory=dict)
    more_addresses: bool = False  # more locked addresses than were looked at

    @property
    def locked(self) -> bool:
        """Whether anything keeps the name out anywhere."""
        return self.everywhere_until is not None or bool(self.addresses)

    @property
    def until(self) -> dt.datetime | None:
        """When the last of these locks ends (``None``: nothing is locked)."""
        ends = [*self.addresses.values(), *filter(None, [self.everywhere_until])]
        return max(ends, default=None)

    def describe(self) -> str:
        """In words, for admins: "the pause for everyone (until 2026-03-02 09:45 UTC) and the
        pause from 2 addresses"."""
        parts = []
        if self.everywhere_until is not None:
            parts.append(f"the pause for everyone (until "
                         f"{self.everywhere_until:%Y-%m-%d %H:%M} UTC)")
        if self.addresses:
            count = len(self.addresses)
            more = " or more" if self.more_addresses else ""
            parts.append(f"the pause from {count}{more} address{'es' if count > 1 else ''} "
                         f"(the last until {max(self.addresses.values()):%Y-%m-%d %H:%M} UTC)")
        return " and ".join(parts) or "nothing"

    def audit_details(self) -> dict[str, Any]:
        """What an unlock ended, for its audit record (the CLI's and the panel's alike)."""
        return {
            "was_locked": self.locked,
            "paused_everywhere_until": None if self.everywhere_until is None
            else self.everywhere_until.isoformat(),
            "paused_from": sorted(str(address) for address in self.addresses),
        }


def _from(address: str | None) -> ColumnElement[bool]:
    column = LoginAttempt.source_address
    return column.is_(None) if address is None else column == address


def _last_id(db: Session, *conditions: Any) -> int:
    return int(db.scalar(select(func.max(LoginAttempt.id)).where(*conditions)) or 0)


def _last_unlock(db: Session, name: str, now: dt.datetime) -> int:
    return _last_id(db, LoginAttempt.username == name,
                    LoginAttempt.outcome == LoginOutcome.UNLOCKED,
                    LoginAttempt.at >= now - LOCKOUT_MAX)


def _nth_newest_at(db: Session, n: int, *conditions: Any) -> dt.datetime | None:
    """The time of the ``n``-th newest attempt matching ``conditions`` (a sliding window's
    edge: when it leaves the window, fewer than ``n`` remain)."""
    at: dt.datetime | None = db.scalar(
        select(LoginAttempt.at).where(*conditions)
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc()).offset(n - 1).limit(1))
    return at


def address_paused_until(db: Session, address: str | None, *,
                         now: dt.datetime) -> dt.datetime | None:
    """Until when every sign-in from ``address`` is refused (counter 1), or ``None``."""
    edge = _nth_newest_at(db, ADDRESS_THRESHOLD, _from(attempt_address(address)),
                          LoginAttempt.outcome.in_(CHECKED_FAILURES + REFUSED),
                          LoginAttempt.at > now - ADDRESS_WINDOW)
    return None if edge is None else edge + ADDRESS_WINDOW


def _pair_until(db: Session, name: str, address: str | None, reset: int,
                now: dt.datetime) -> dt.datetime | None:
    horizon = now - LOCKOUT_MAX
    # By id, not time: attempts within one clock tick still have an order.
    last_success = _last_id(db, LoginAttempt.username == name, _from(address),
                            LoginAttempt.outcome == LoginOutcome.SUCCESS,
                            LoginAttempt.at >= horizon)
    count, last_failure = db.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            LoginAttempt.username == name, _from(address),
            LoginAttempt.outcome.in_(CHECKED_FAILURES), LoginAttempt.at >= horizon,
            LoginAttempt.id > max(last_success, reset))
    ).one()
    if count < LOCKOUT_THRESHOLD or last_failure is None:
        return None
    # Cap the exponent: 2**7 * 15 min already exceeds the 24 h maximum.
    lock = min(LOCKOUT_BASE * 2 ** min(count - LOCKOUT_THRESHOLD, 7), LOCKOUT_MAX)
    until: dt.datetime = last_failure + lock
    return until if until > now else None


def _everywhere_until(db: Session, name: str, reset: int,
                      now: dt.datetime) -> dt.datetime | None:
    since = now - ACCOUNT_WINDOW
    last_success = _last_id(db, LoginAttempt.username == name,
                            LoginAttempt.outcome == LoginOutcome.SUCCESS, LoginAttempt.at > since)
    edge = _nth_newest_at(db, ACCOUNT_THRESHOLD, LoginAttempt.username == name,
                          LoginAttempt.outcome.in_(CHECKED_FAILURES), LoginAttempt.at > since,
                          LoginAttempt.id > max(last_success, reset))
    return None if edge is None else edge + ACCOUNT_WINDOW


def sign_in_pause(db: Session, username: str, source_address: str | None, *,
                  now: dt.datetime) -> Pause | None:
    """Whether an attempt for ``username`` from ``source_address`` is refused unchecked now."""
    until = address_paused_until(db, source_address, now=now)
    if until is not None:
        return Pause(until, LoginOutcome.THROTTLED)
    name = attempt_name(username)
    reset = _last_unlock(db, name, now)
    ends = [until for until in (_pair_until(db, name, attempt_address(source_address), reset, now),
                                _everywhere_until(db, name, reset, now)) if until is not None]
    return Pause(max(ends), LoginOutcome.LOCKED_OUT) if ends else None


def locked_until(db: Session, username: str, *, now: dt.datetime,
                 source_address: str | None = None) -> dt.datetime | None:
    """Until when sign-in for this (typed) user name from ``source_address`` is paused, by any
    counter, or ``None`` if it is not."""
    pause = sign_in_pause(db, username, source_address, now=now)
    return None if pause is None else pause.until


def name_locks(db: Session, username: str, *, now: dt.datetime) -> NameLocks:
    """What keeps ``username`` out right now: the pause everywhere and the paused addresses."""
    name = attempt_name(username)
    reset = _last_unlock(db, name, now)
    candidates = list(db.scalars(
        select(LoginAttempt.source_address).where(
            LoginAttempt.username == name, LoginAttempt.outcome.in_(CHECKED_FAILURES),
            LoginAttempt.at >= now - LOCKOUT_MAX, LoginAttempt.id > reset)
        .group_by(LoginAttempt.source_address)
        .having(func.count() >= LOCKOUT_THRESHOLD)
        .order_by(func.max(LoginAttempt.at).desc())
        .limit(_MAX_LISTED_ADDRESSES + 1)))
    addresses = {}
    for address in candidates[:_MAX_LISTED_ADDRESSES]:
        until = _pair_until(db, name, address, reset, now)
        if until is not None:
            addresses[address] = until
    return NameLocks(_everywhere_until(db, name, reset, now), addresses,
                     more_addresses=len(candidates) > _MAX_LISTED_ADDRESSES)


def unlock_name(db: Session, username: str, *, source_address: str | None,
                now: dt.datetime) -> NameLocks:
    """End every pause of ``username`` (from every address, and everywhere) at once; returns
    what was locked. The caller checks the account exists and audits; address pauses stay.

    Adds a ``LoginAttempt`` with outcome ``unlocked``: the name's failures count from there.
    """
    before = name_locks(db, username, now=now)
    db.add(LoginAttempt(username=attempt_name(username),
                        source_address=attempt_address(source_address),
                        outcome=LoginOutcome.UNLOCKED, at=now))
    db.flush()
    return before
