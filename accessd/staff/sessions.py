"""Server-side panel sessions: a random token in the cookie, only its digest in the table.

A session ends when its user logs out, changes password or is disabled (``session_version``
is bumped and open sessions are revoked), after 30 minutes without a request, or 12 hours
after sign-in, whichever comes first.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from accessd.models import StaffSession, StaffUser
from accessd.models.staff import ADDRESS_LENGTH
from accessd.staff.policy import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, TOUCH_INTERVAL

_TOKEN_BYTES = 32


class SessionState(enum.Enum):
    """Why a session token was or was not accepted."""

    ACTIVE = "active"
    IDLE_EXPIRED = "idle_expired"
    ABSOLUTE_EXPIRED = "absolute_expired"
    ENDED = "ended"  # logged out, revoked, unknown, user disabled or password changed


@dataclass(frozen=True, slots=True)
class ResumedSession:
    """The outcome of ``resume_session``: the state, and the session when it is active."""

    state: SessionState
    session: StaffSession | None = None

    @property
    def user(self) -> StaffUser | None:
        """The signed-in staff member, when the session is active."""
        return self.session.user if self.session is not None else None


def token_digest(token: str) -> bytes:
    """What the table stores for a token (SHA-256; tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def start_session(
    db: Session, user: StaffUser, *, source_address: str | None, now: dt.datetime
) -> str:
    """Open a new session for ``user`` and return its token (the cookie's content).

    A new token at every sign-in: a token planted before login is never promoted.
    """
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    db.add(
        StaffSession(
            token_digest=token_digest(token),
            user=user,
            session_version=user.session_version,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT,
            source_address=None if source_address is None else source_address[:ADDRESS_LENGTH],
        )
    )
    return token


def resume_session(db: Session, token: str, *, now: dt.datetime) -> ResumedSession:
    """Check a session token on a request and keep an active session alive (caller commits).

    An expired session is revoked on the spot, so it stays dead even if the clock goes back.
    """
    found = db.scalars(
        select(StaffSession)
        .options(joinedload(StaffSession.user))
        .where(StaffSession.token_digest == token_digest(token))
    ).one_or_none()
    if found is None or found.revoked_at is not None:
        return ResumedSession(SessionState.ENDED)
    user = found.user
    if user.disabled or found.session_version != user.session_version:
        found.revoked_at = now
        return ResumedSession(SessionState.ENDED)
    if now >= found.expires_at:
        found.revoked_at = now
        return ResumedSession(SessionState.ABSOLUTE_EXPIRED)
    if now - found.last_seen_at >= IDLE_TIMEOUT:
        found.revoked_at = now
        return ResumedSession(SessionState.IDLE_EXPIRED)
    if now - found.last_seen_at >= TOUCH_INTERVAL:
        found.last_seen_at = now
    return ResumedSession(SessionState.ACTIVE, found)


def end_session(db: Session, token: str, *, now: dt.datetime) -> None:
    """Revoke the session with this token (logout); unknown tokens are ignored."""
    db.execute(
        update(StaffSession)
        .where(StaffSession.token_digest == token_digest(token), StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def end_all_sessions(db: Session, user: StaffUser, *, now: dt.datetime) -> None:
    """End every session of ``user``: bump the session version and revoke open sessions."""
    user.session_version += 1
    db.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user.id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
