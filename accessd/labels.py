"""What people read for the codes accessd stores: one place for the words of every stored
vocabulary (event kinds, how someone asked, why the door decided, roles, outcomes, requests).

The codes (``wrong_pin``, ``unknown_finger``) stay in the database, the API, the JSON and CSV
exports and the command line's filters, where programs read them; the panel and the CLI's
tables show these words instead. Each text is marked ``N_`` so the panel's message catalogue
extracts it (``babel.cfg``); the panel translates it at display time (``web.i18n``), so the
English text here is the catalogue's message id. ``tests/web/test_words.py`` fails when a code
reaches a page.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

from accessd.models import (
    AlarmKind,
    AuditOutcome,
    CommandKind,
    CommandState,
    Credential,
    EventKind,
    EventMethod,
    FingerLabel,
    LawfulBasis,
    LoginOutcome,
    RequestKind,
    RequestStatus,
    StaffRole,
)


def N_(text: str) -> str:
    """Marks ``text`` for the message catalogue without translating it here."""
    return text


# Keyed by type too: StrEnum members equal their value, so LoginOutcome.SUCCESS and
# AuditOutcome.SUCCESS would be one key (and one label) in a plain dict.
_WORDS: list[tuple[enum.Enum, str]] = [
    (EventKind.GRANTED, N_("granted")),
    (EventKind.DENIED, N_("refused")),
    (EventKind.UNKNOWN_FINGER, N_("unknown finger")),
    (EventKind.DOOR_FORCED, N_("door forced open")),
    (EventKind.DOOR_HELD_OPEN, N_("door held open")),
    (EventKind.EXIT, N_("exit button")),
    (EventKind.TAMPER, N_("reader housing")),
    (EventKind.FAULT, N_("device fault")),
    (EventKind.RECOVERED, N_("device recovered")),
    (EventKind.SENSOR_INSTALLED, N_("new sensor installed")),
    (EventKind.ALARM, N_("alarm")),
    (EventKind.ALARM_CLEARED, N_("alarm cleared")),
    (EventKind.PULSE_FAILED, N_("pulse failed: the door stayed locked")),
    (EventKind.PULSE_UNKNOWN, N_("pulse not confirmed: the door may have opened")),
    (EventMethod.FINGER, N_("finger")),
    (EventMethod.PIN, N_("PIN")),
    (EventMethod.REMOTE, N_("remote unlock")),
    (Credential.NONE, N_("none chosen")),
    (Credential.FINGER, N_("finger")),
    (Credential.PIN, N_("PIN")),
    (Credential.FINGER_OR_PIN, N_("finger or PIN")),
    (LawfulBasis.CONSENT, N_("consent")),
    (LawfulBasis.NECESSITY, N_("necessity")),
    (AlarmKind.FAILURE_BACKOFF, N_("many failed attempts: the reader pauses")),
    (AlarmKind.TAMPER, N_("reader housing opened")),
    (AlarmKind.DOOR_FORCED, N_("door forced open")),
    (AlarmKind.DOOR_HELD_OPEN, N_("door held open")),
    (AlarmKind.FAULT, N_("device fault")),
    (AlarmKind.INTEGRITY, N_("database integrity check failed")),
    (AlarmKind.DATABASE, N_("database cannot be written")),
    (CommandKind.ENROLL, N_("enrol a finger")),
    (CommandKind.RESYNC, N_("resynchronise the sensor")),
    (CommandKind.TEST_RELAY, N_("test the lock")),
    (CommandKind.CLEAR_ALARM, N_("clear alarms")),
    (CommandKind.REMOTE_UNLOCK, N_("remote unlock")),
    (CommandState.PENDING, N_("waiting")),
    (CommandState.RUNNING, N_("running")),
    (CommandState.DONE, N_("done")),
    (CommandState.FAILED, N_("failed")),
    (RequestKind.ACCESS, N_("access")),
    (RequestKind.PORTABILITY, N_("portability")),
    (RequestKind.RECTIFICATION, N_("rectification")),
    (RequestKind.ERASURE, N_("erasure")),
    (RequestKind.RESTRICTION, N_("restriction")),
    (RequestKind.OBJECTION, N_("objection")),
    (RequestKind.WITHDRAW_CONSENT, N_("withdrawal of consent")),
    (RequestStatus.OPEN, N_("open")),
    (RequestStatus.CLOSED, N_("closed")),
    (StaffRole.ADMIN, N_("admin")),
    (StaffRole.OPERATOR, N_("operator")),
    (StaffRole.AUDITOR, N_("auditor")),
    (LoginOutcome.SUCCESS, N_("signed in")),
    (LoginOutcome.BAD_PASSWORD, N_("wrong password")),
    (LoginOutcome.BAD_TOTP, N_("wrong code")),
    (LoginOutcome.TOTP_REPLAY, N_("code used twice")),
    (LoginOutcome.UNKNOWN_USER, N_("no such user")),
    (LoginOutcome.DISABLED, N_("account disabled")),
    (LoginOutcome.LOCKED_OUT, N_("paused: too many failures for this name")),
    (LoginOutcome.THROTTLED, N_("paused: too many failures from this address")),
    (LoginOutcome.UNLOCKED, N_("unlocked by an admin")),
    (AuditOutcome.SUCCESS, N_("done")),
    (AuditOutcome.DENIED, N_("not allowed")),
    (AuditOutcome.REFUSED, N_("refused")),
    (AuditOutcome.FAILED, N_("failed")),
    (FingerLabel.RIGHT_THUMB, N_("right thumb")),
    (FingerLabel.RIGHT_INDEX, N_("right index finger")),
    (FingerLabel.RIGHT_MIDDLE, N_("right middle finger")),
    (FingerLabel.RIGHT_RING, N_("right ring finger")),
    (FingerLabel.RIGHT_LITTLE, N_("right little finger")),
    (FingerLabel.LEFT_THUMB, N_("left thumb")),
    (FingerLabel.LEFT_INDEX, N_("left index finger")),
    (FingerLabel.LEFT_MIDDLE, N_("left middle finger")),
    (FingerLabel.LEFT_RING, N_("left ring finger")),
    (FingerLabel.LEFT_LITTLE, N_("left little finger")),
]
_LABELS: dict[tuple[type, str], str] = {
    (type(member), str(member.value)): text for member, text in _WORDS
}

REASONS: Mapping[str, str] = {
    "allowed": N_("allowed"),
    "unknown_credential": N_("not known here"),
    "contract_not_started": N_("the contract has not started"),
    "contract_ended": N_("the contract has ended"),
    "person_inactive": N_("the person is not active"),
    "person_restricted": N_("the person is restricted"),
    "door_not_allowed": N_("not allowed at this door"),
    "credential_not_chosen": N_("no way in chosen yet"),
    "pin_locked": N_("PIN locked after wrong attempts"),
    "wrong_pin": N_("wrong PIN"),
    "reader_backoff": N_("the reader pauses after many failures"),
    "reader_tampered": N_("the reader's housing is open: fingers are not read"),
    "malformed_entry": N_("keypad entry not understood"),
    "slot_not_in_database": N_("finger on the sensor but no longer in the database"),
    "zone_not_granted": N_("no grant of this door's zone"),
    "outside_schedule": N_("outside the grant's schedule"),
    "holiday": N_("a site holiday, and the grant is closed on holidays"),
    "grant_not_yet_valid": N_("the grant is not valid yet"),
    "grant_expired": N_("the grant has expired"),
    "method_not_allowed": N_("this door does not take that credential"),
    "second_factor_missing": N_("the second factor did not follow in time"),
    "second_factor_mismatch": N_("finger and PIN of different people"),
    "finger_not_matched": N_("the finger is not the code owner's"),
    "snapshot_stale": N_("the door has not reached the site's database for too long"),
    "database_unavailable": N_("the database could not be read"),
    "reader_opened": N_("the reader's housing was opened"),
    "reader_closed": N_("the reader's housing was closed"),
    "board_refused": N_("the door board refused"),
    "board_unreachable": N_("the door board did not answer"),
    "no_answer": N_("the door board confirmed nothing"),
    "not_recorded": N_("the opening could not be recorded"),
    AlarmKind.FAILURE_BACKOFF.value: N_("many failed attempts: the reader pauses"),
}
"""The reasons an event records as codes (``accessd.door.decision.Reason``, the relay's
outcomes, the reader's housing); other reasons are already sentences and read as they are."""


def label(value: enum.Enum) -> str:
    """The words for a stored code, in English (the panel translates them)."""
    return _LABELS.get((type(value), str(value.value))) or str(value.value).replace("_", " ")


def reason_label(reason: str | None) -> str:
    """An event's reason as people read it ("" for none); a sentence stays as it is."""
    if not reason:
        return ""
    return REASONS.get(reason, reason)


def codes() -> frozenset[str]:
    """Every code of every stored vocabulary and every coded reason, for tests that check no
    page shows one."""
    from accessd import models

    found = {str(member.value) for value in vars(models).values()
             if isinstance(value, type) and issubclass(value, enum.Enum)
             for member in value}
    return frozenset(found | set(REASONS))


def describe_value(value: Any, translate: Callable[[str], str] = str) -> str:
    """A value of an audit record's details in words: no Python repr (None, {}, [] or quotes),
    codes as their words, lists joined; ``translate`` turns each of these words into the
    reader's language (the panel passes gettext)."""
    if value is None or value == {} or value == [] or value == "":
        return translate(N_("none"))
    if isinstance(value, bool):
        return translate(N_("yes") if value else N_("no"))
    if isinstance(value, dict):
        return "; ".join(f"{translate(describe_key(str(k)))} {describe_value(v, translate)}"
                         for k, v in sorted(value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(describe_value(item, translate) for item in value)
    text = str(value)
    return translate(_BY_CODE[text]) if text in _BY_CODE else text


def describe_key(key: str) -> str:
    """An audit detail's name in words: ``paused_everywhere_until`` -> "paused everywhere
    until"."""
    return key.replace("_", " ")


_BY_CODE: dict[str, str] = {
    **{value: text for (_type, value), text in _LABELS.items() if "_" in value},
    **REASONS,
}
