"""The database schema as SQLAlchemy 2.0 models; ``Base.metadata`` is what migrations build.

Split by owner: ``customers`` (a customer and what its contract allows us to hold),
``events`` (what happens at the doors), ``privacy`` (purges, erasures, requests) and
``staff`` (the facility's own accounts and audit log). Import from here.
"""

from accessd.models.base import Base, UTCDateTime, new_public_id, utcnow
from accessd.models.customers import (
    MAX_GRACE_DAYS,
    Consent,
    Customer,
    DataKey,
    Door,
    Finger,
    Person,
    door_customers,
)
from accessd.models.enums import (
    AlarmKind,
    AuditOutcome,
    CommandKind,
    CommandState,
    Credential,
    EventKind,
    EventMethod,
    FingerLabel,
    LawfulBasis,
    LedgerAction,
    LoginOutcome,
    PurgeStatus,
    RequestKind,
    RequestStatus,
    StaffRole,
)
from accessd.models.events import (
    FACILITY_SCOPE,
    GENESIS_DIGEST,
    AccessEvent,
    Alarm,
    DeviceCommand,
    DoorStatus,
    EventChain,
)
from accessd.models.privacy import (
    RESTORE_KEEPS,
    DataSubjectRequest,
    ErasureLedgerEntry,
    PurgeRecord,
)
from accessd.models.sensors import SensorSlot
from accessd.models.staff import ApiToken, AuditRecord, LoginAttempt, StaffSession, StaffUser

__all__ = [
    "FACILITY_SCOPE",
    "GENESIS_DIGEST",
    "MAX_GRACE_DAYS",
    "RESTORE_KEEPS",
    "AccessEvent",
    "Alarm",
    "AlarmKind",
    "ApiToken",
    "AuditOutcome",
    "AuditRecord",
    "Base",
    "CommandKind",
    "CommandState",
    "Consent",
    "Credential",
    "Customer",
    "DataKey",
    "DataSubjectRequest",
    "DeviceCommand",
    "Door",
    "DoorStatus",
    "ErasureLedgerEntry",
    "EventChain",
    "EventKind",
    "EventMethod",
    "Finger",
    "FingerLabel",
    "LawfulBasis",
    "LedgerAction",
    "LoginAttempt",
    "LoginOutcome",
    "Person",
    "PurgeRecord",
    "PurgeStatus",
    "RequestKind",
    "RequestStatus",
    "SensorSlot",
    "StaffRole",
    "StaffSession",
    "StaffUser",
    "UTCDateTime",
    "door_customers",
    "new_public_id",
    "utcnow",
]
