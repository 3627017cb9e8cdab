"""The facility's own records: staff accounts, their sessions and logins, the audit log, API tokens.

Tokens and session ids are stored only as SHA-256 digests, so reading the database does not
let anyone take over a session; TOTP secrets are encrypted under the master key.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accessd.models.base import Base, BigIntegerPK, UTCDateTime, enum_column, new_public_id, utcnow
from accessd.models.enums import AuditOutcome, LoginOutcome, StaffRole

ADDRESS_LENGTH = 64  # an IPv6 address with a zone index fits


class StaffUser(Base):
    """A facility staff account for the panel and the CLI's audited actions."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_public_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    role: Mapped[StaffRole] = mapped_column(enum_column(StaffRole, 16))
    # Sealed under master key ``totp_key_id`` (accessd.crypto.seal_staff_secret); key
    # rotation rewraps it together with the data keys.
    totp_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_key_id: Mapped[str | None] = mapped_column(String(64))
    # The last accepted TOTP time step: a code is accepted once (pyotp's verify alone replays).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(default=False)
    # Bumped by logout-everywhere, password change and disabling: older sessions are refused.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    sessions: Mapped[list[StaffSession]] = relationship(
        back_populates="user", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<StaffUser {self.id} {self.username!r} {self.role}>"


class StaffSession(Base):
    """A server-side panel session; the cookie holds the token, the table only its digest."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    session_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the absolute timeout
    source_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[StaffUser] = relationship(back_populates="sessions")


class LoginAttempt(Base):
    """One login attempt, successful or not: the login history and the throttling counters
    (``accessd.staff.throttle``), so counting survives restarts. An admin's unlock is a row
    too (outcome ``unlocked``): the point from which a name's failures count again.

    ``username`` is what was typed (the account may not exist), so counting does not reveal
    which accounts exist.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index(None, "username", "at"),
        Index(None, "source_address", "at"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    source_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    outcome: Mapped[LoginOutcome] = mapped_column(enum_column(LoginOutcome))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditRecord(Base):
    """A staff action: who, what, when (UTC), from where, and how it ended."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index(None, "at"),
        Index(None, "actor", "at"),
        Index(None, "action", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A username, "cli:<unix user>" or "daemon": not a foreign key, the log outlives accounts.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))  # e.g. "person.erase", "events.export"
    target: Mapped[str | None] = mapped_column(String(200))  # e.g. "person:<public id>"
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    outcome: Mapped[AuditOutcome] = mapped_column(enum_column(AuditOutcome, 16))


class ApiToken(Base):
    """A token for the JSON API (ticketing, customer portal), with its own role."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    role: Mapped[StaffRole] = mapped_column(enum_column(StaffRole, 16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
