"""The closed vocabularies stored in the database, as ``StrEnum``s the services can share.

Stored as their values in plain string columns (see ``enum_column``): adding a member needs no
migration, removing or renaming one does (old rows keep the old value).
"""

from __future__ import annotations

import enum


class LawfulBasis(enum.StrEnum):
    """Why a customer's people may be identified by fingerprint (GDPR art. 9, UAVG art. 29)."""

    CONSENT = "consent"  # explicit consent of each person, recorded as a Consent row
    NECESSITY = "necessity"  # documented security need; Customer.necessity_reference names it


class Credential(enum.StrEnum):
    """Which way in a person chose; a non-biometric one must always be possible."""

    NONE = "none"  # not yet chosen, or let in by staff
    FINGER = "finger"
    PIN = "pin"
    FINGER_OR_PIN = "finger_or_pin"


class AuthMode(enum.StrEnum):
    """What a door asks of whoever wants in (set per door)."""

    FINGER = "finger"
    PIN = "pin"
    FINGER_OR_PIN = "finger_or_pin"  # either factor alone: the default, as before zones
    FINGER_AND_PIN = "finger_and_pin"  # two factors: code and PIN typed, then the finger 1:1


class ZoneKind(enum.StrEnum):
    """What a zone is, for people reading the plan; the rules treat every kind alike."""

    SITE = "site"
    BUILDING = "building"
    HALL = "hall"
    SUITE = "suite"
    CAGE = "cage"
    ROOM = "room"


class FingerLabel(enum.StrEnum):
    """Which finger a template is of, so staff can ask for the right one."""

    RIGHT_THUMB = "right_thumb"
    RIGHT_INDEX = "right_index"
    RIGHT_MIDDLE = "right_middle"
    RIGHT_RING = "right_ring"
    RIGHT_LITTLE = "right_little"
    LEFT_THUMB = "left_thumb"
    LEFT_INDEX = "left_index"
    LEFT_MIDDLE = "left_middle"
    LEFT_RING = "left_ring"
    LEFT_LITTLE = "left_little"


class EventKind(enum.StrEnum):
    """What happened at a door."""

    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN_FINGER = "unknown_finger"
    DOOR_FORCED = "door_forced"
    DOOR_HELD_OPEN = "door_held_open"
    EXIT = "exit"
    TAMPER = "tamper"
    FAULT = "fault"
    RECOVERED = "recovered"  # a device came back after a fault
    SENSOR_INSTALLED = "sensor_installed"  # a sensor on its factory password was taken over
    SENSOR_SWAPPED = "sensor_swapped"  # a sensor other than the provisioned one: refused
    SENSOR_APPROVED = "sensor_approved"  # staff approved a replaced sensor
    ALARM = "alarm"
    ALARM_CLEARED = "alarm_cleared"
    # What the door did after an opening (granted, exit) was recorded; ``refers_to`` names it.
    PULSE_FAILED = "pulse_failed"  # the relay was not released: the door stayed locked
    PULSE_UNKNOWN = "pulse_unknown"  # the board confirmed nothing: the door may have opened


class EventMethod(enum.StrEnum):
    """How someone asked to come in."""

    FINGER = "finger"
    PIN = "pin"
    REMOTE = "remote"  # staff unlocked the door from the panel
    CODE_AND_FINGER = "code_and_finger"  # person code typed, finger checked 1:1 against theirs
    FINGER_AND_PIN = "finger_and_pin"  # both factors, at a two-factor door


class AlarmKind(enum.StrEnum):
    """Why an alarm was raised."""

    FAILURE_BACKOFF = "failure_backoff"  # K failures within T seconds
    TAMPER = "tamper"
    DOOR_FORCED = "door_forced"
    DOOR_HELD_OPEN = "door_held_open"
    FAULT = "fault"
    INTEGRITY = "integrity"  # the database failed its integrity check: the door stays locked
    DATABASE = "database"  # the database could not be written: events went to the reserve journal
    DOOR_WIRE = "door_wire"  # a door-board frame did not authenticate: someone may be on the wire
    SENSOR_SWAPPED = "sensor_swapped"  # not the sensor this door provisioned: no decisions
    SNAPSHOT_STALE = "snapshot_stale"  # a site door's snapshot is past its limit: it refuses all


class CommandKind(enum.StrEnum):
    """Hardware work the panel or the CLI asks the daemon to do."""

    ENROLL = "enroll"
    RESYNC = "resync"
    TEST_RELAY = "test_relay"
    CLEAR_ALARM = "clear_alarm"
    REMOTE_UNLOCK = "remote_unlock"  # staff let someone in, with a reason (audited)


class CommandState(enum.StrEnum):
    """Where a device command is; only the daemon moves it past ``pending``."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class PurgeStatus(enum.StrEnum):
    """A purge is recorded as started before anything is deleted, so a crash is resumed; it
    is completed (and certified) only once every door confirmed its sensor dropped the data."""

    STARTED = "started"
    AWAITING_DOORS = "awaiting_doors"  # the database holds nothing; sensors not all confirmed
    COMPLETED = "completed"


class LedgerAction(enum.StrEnum):
    """Destruction a restore must re-apply."""

    PURGE_CUSTOMER = "purge_customer"
    ERASE_PERSON = "erase_person"
    DELETE_FINGER = "delete_finger"  # also what withdrawing consent does


class RequestKind(enum.StrEnum):
    """A data subject's request (GDPR art. 15-21)."""

    ACCESS = "access"
    PORTABILITY = "portability"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    WITHDRAW_CONSENT = "withdraw_consent"


class RequestStatus(enum.StrEnum):
    """Open until answered; overdue is derived from the due dates, not stored."""

    OPEN = "open"
    CLOSED = "closed"


class StaffRole(enum.StrEnum):
    """Access levels per function."""

    ADMIN = "admin"
    OPERATOR = "operator"
    AUDITOR = "auditor"


class LoginOutcome(enum.StrEnum):
    """How a login attempt ended; the user only ever sees a generic failure."""

    SUCCESS = "success"
    BAD_PASSWORD = "bad_password"  # noqa: S105  an outcome, not a password
    BAD_TOTP = "bad_totp"
    TOTP_REPLAY = "totp_replay"
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"
    LOCKED_OUT = "locked_out"  # refused unchecked: this name is paused (from here, or everywhere)
    THROTTLED = "throttled"  # refused unchecked: this source address is paused
    UNLOCKED = "unlocked"  # not an attempt: an admin ended the name's locks (a reset point)


class AuditOutcome(enum.StrEnum):
    """How an audited staff action ended."""

    SUCCESS = "success"
    DENIED = "denied"  # not allowed: no session or token, wrong role, CSRF, method, rate limit
    REFUSED = "refused"  # allowed to ask, but not done: invalid input, a rule, no such target
    FAILED = "failed"  # an error (a bug, the database): nothing may be assumed done
