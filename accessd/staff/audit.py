"""The staff audit log and the login history: written here, and read back for auditors.

Writing: who did what, when (UTC), from where, and how it ended. Every string is sanitised
before it is stored: a user name typed as ``"bob\\n2025-01-01 admin login ok"`` must not forge
a line when the log is exported or printed, and bidirectional-override characters must not
reorder what a reader sees.

Reading: both are read newest first and keyset-paginated on ``(at, id)`` (the tables' ``at``
indexes), so a year of records pages as fast as a day; a period is given in local days at the
site.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from accessd.clock import SiteClock
from accessd.models import AuditOutcome, AuditRecord, LoginAttempt, LoginOutcome, utcnow
from accessd.models.staff import ADDRESS_LENGTH

Row = TypeVar("Row", AuditRecord, LoginAttempt)

ACTOR_LENGTH = 64
ACTION_LENGTH = 64
TARGET_LENGTH = 200
DETAIL_LENGTH = 500
_DETAIL_DEPTH = 4
# Control characters, format characters (bidi overrides, zero-width), line and paragraph
# separators: anything that can break a line or change how the text reads.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
PAGE_SIZE = 50


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


@dataclass(frozen=True, slots=True)
class RecordPage(Generic[Row]):
    """Rows newest first, and the id to continue before (``None``: the last page)."""

    rows: list[Row]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class AuditLogFilter:
    """Which audit records to read; every condition given must hold. ``since`` and ``until``
    are local days at the site, both included."""

    actor: str | None = None  # exact; API tokens act as token:<name>
    action_prefix: str | None = None  # "person." matches every action on persons
    outcome: AuditOutcome | None = None
    since: dt.date | None = None
    until: dt.date | None = None


@dataclass(frozen=True, slots=True)
class LoginHistoryFilter:
    """Which sign-in attempts to read; ``since`` and ``until`` as in ``AuditLogFilter``."""

    username: str | None = None  # as typed; user names are stored in lower case
    outcome: LoginOutcome | None = None
    since: dt.date | None = None
    until: dt.date | None = None


def page_audit_log(session: Session, where: AuditLogFilter, clock: SiteClock, *,
                   before: int | None = None, limit: int = PAGE_SIZE) -> RecordPage[AuditRecord]:
    """One page of the audit log, newest first, after the record ``before`` (an id)."""
    conditions = _period(AuditRecord.at, where.since, where.until, clock)
    if where.actor is not None:
        conditions.append(AuditRecord.actor == where.actor)
    if where.action_prefix is not None:
        prefix = where.action_prefix
        conditions.append(func.substr(AuditRecord.action, 1, len(prefix)) == prefix)
    if where.outcome is not None:
        conditions.append(AuditRecord.outcome == where.outcome)
    return _page(session, AuditRecord, select(AuditRecord).where(*conditions), before, limit)


def page_login_history(session: Session, where: LoginHistoryFilter, clock: SiteClock, *,
                       before: int | None = None,
                       limit: int = PAGE_SIZE) -> RecordPage[LoginAttempt]:
    """One page of the login history, newest first, after the attempt ``before`` (an id)."""
    conditions = _period(LoginAttempt.at, where.since, where.until, clock)
    if where.username is not None:
        conditions.append(LoginAttempt.username == where.username.lower())
    if where.outcome is not None:
        conditions.append(LoginAttempt.outcome == where.outcome)
    return _page(session, LoginAttempt, select(LoginAttempt).where(*conditions), before, limit)


def _period(column: InstrumentedAttribute[dt.datetime], since: dt.date | None,
            until: dt.date | None, clock: SiteClock) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if since:
        where.append(column >= clock.day_start(since))
    if until:
        where.append(column < clock.day_start(until + dt.timedelta(days=1)))
    return where


def _page(session: Session, model: type[Row], query: Select[Any], before: int | None,
          limit: int) -> RecordPage[Row]:
    """Keyset pagination on ``(at, id)`` descending; one row more says if a next page exists."""
    if before is not None:
        at = session.scalar(select(model.at).where(model.id == before))
        if at is not None:
            query = query.where(model.at <= at, or_(model.at < at, model.id < before))
    rows = list(session.scalars(query.order_by(model.at.desc(), model.id.desc())
                                .limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return RecordPage(rows, rows[-1].id if more else None)


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """What an audit record was about, as staff read it: its kind (``person``, ``customer``,
    ``staff``, ``request``, ``door``, ``other``) and its name now, or ``None`` when it is gone
    (an erased person, a purged customer): the record keeps only the public id, which tells
    staff nothing."""

    kind: str
    name: str | None


def audit_targets(session: Session, targets: Iterable[str | None]) -> dict[str, AuditTarget]:
    """The people, customers, staff accounts and requests that audit targets (``person:<public
    id>`` and so on) name, read in one query per kind; a target that names nothing any more is
    there with ``name=None``, one of another form as it was written."""
    from accessd.models import Customer, DataSubjectRequest, Person, StaffUser

    models: dict[str, tuple[Any, Any, Any]] = {
        "person": (Person, Person.public_id, Person.name),
        "customer": (Customer, Customer.public_id, Customer.name),
        "staff": (StaffUser, StaffUser.public_id, StaffUser.username),
        "request": (DataSubjectRequest, DataSubjectRequest.public_id, None),
    }
    wanted: dict[str, dict[uuid.UUID, str]] = {kind: {} for kind in models}
    named: dict[str, AuditTarget] = {}
    for target in filter(None, targets):
        kind, _, ref = target.partition(":")
        if kind in models:
            try:
                wanted[kind][uuid.UUID(ref)] = target
                continue
            except ValueError:
                pass  # the CLI names staff by user name: "staff:ada"
        if kind == "door" or kind == "staff":
            named[target] = AuditTarget(kind, ref)
        else:
            named[target] = AuditTarget("other", target)
    for kind, refs in wanted.items():
        if not refs:
            continue
        model, public_id, name = models[kind]
        found = {row.public_id: row for row in
                 session.scalars(select(model).where(public_id.in_(list(refs))))}
        for public, written in refs.items():
            row = found.get(public)
            named[written] = AuditTarget(kind, None if row is None else
                                         _request_name(row) if name is None else getattr(
                                             row, name.key))
    return named


def _request_name(request: Any) -> str:
    from accessd.labels import label

    return f"{label(request.kind)}, received {request.received_on.isoformat()}"
