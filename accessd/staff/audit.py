"""The staff audit log: who did what, when (UTC), from where, and how it ended.

Every string is sanitised before it is stored: a user name typed as
``"bob\\n2025-01-01 admin login ok"`` must not forge a line when the log is exported or
printed, and bidirectional-override characters must not reorder what a reader sees.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from accessd.models import AuditOutcome, AuditRecord, utcnow
from accessd.models.staff import ADDRESS_LENGTH

ACTOR_LENGTH = 64
ACTION_LENGTH = 64
TARGET_LENGTH = 200
DETAIL_LENGTH = 500
_DETAIL_DEPTH = 4
# Control characters, format characters (bidi overrides, zero-width), line and paragraph
# separators: anything that can break a line or change how the text reads.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def sanitise(value: object, limit: int = DETAIL_LENGTH) -> str:
    """``value`` as a single line of visible text at most ``limit`` characters long.

    Unsafe characters become ``\\xNN``/``\\uNNNN`` escapes, so nothing is silently lost.
    """
    text = value if isinstance(value, str) else str(value)
    out = []
    for char in text:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    safe = "".join(out)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def _sanitise_details(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _DETAIL_DEPTH:
        return sanitise(value)
    if isinstance(value, Mapping):
        return {
            sanitise(k, ACTION_LENGTH): _sanitise_details(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_sanitise_details(v, depth + 1) for v in value]
    return sanitise(value)


def record_audit(
    db: Session,
    *,
    actor: str,
    action: str,
    outcome: AuditOutcome,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
    source_address: str | None = None,
    at: dt.datetime | None = None,
) -> AuditRecord:
    """Add an audit record to ``db`` (the caller commits).

    :param actor: a user name, ``"cli:<unix user>"``, ``"token:<name>"`` or ``"anonymous"``.
    :param action: what was done, e.g. ``"staff.disable"`` or ``"POST auth.login"``.
    :param target: what it was done to, e.g. ``"staff:<public id>"``.
    :param details: small JSON-able facts (never a password or personal data in bulk).
    """
    record = AuditRecord(
        at=at or utcnow(),
        actor=sanitise(actor, ACTOR_LENGTH),
        action=sanitise(action, ACTION_LENGTH),
        target=None if target is None else sanitise(target, TARGET_LENGTH),
        details=None if details is None else _sanitise_details(details),
        source_address=None if source_address is None else sanitise(source_address, ADDRESS_LENGTH),
        outcome=outcome,
    )
    db.add(record)
    return record
