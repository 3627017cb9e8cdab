"""API tokens for the JSON API (the provider's ticketing, a customer portal), each with a role.

The token is shown once at creation; the table keeps only its SHA-256 digest. The
``accessd_`` prefix lets secret scanners recognise a leaked token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.errors import ApiTokenError
from accessd.models import ApiToken, StaffRole
from accessd.staff.policy import TOUCH_INTERVAL

TOKEN_PREFIX = "accessd_"  # noqa: S105  a public prefix, not a secret
_TOKEN_BYTES = 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}")
# A bearer token longer than this is not one of ours; refuse before hashing it.
_MAX_TOKEN_LENGTH = 200


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def create_api_token(
    db: Session,
    name: str,
    role: StaffRole,
    *,
    created_by: str,
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return its row and the token itself (show it once; caller commits).

    :raises ApiTokenError: the name is invalid or already used (revoked tokens keep theirs).
    """
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise ApiTokenError(
            "a token name has 1 to 100 characters: letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit (for example 'ticketing')"
        )
    if db.scalars(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise ApiTokenError(
            f"an API token named {name!r} exists (revoked names stay taken, so the audit "
            "log stays unambiguous); choose another name"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    row = ApiToken(
        name=name,
        token_digest=_digest(token),
        role=StaffRole(role),
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return row, token


def verify_api_token(db: Session, token: str, *, now: dt.datetime) -> ApiToken | None:
    """The live token row for a presented token, or ``None`` (unknown, revoked or expired).

    Records when it was last used (at most once a minute; caller commits).
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    row = db.scalars(select(ApiToken).where(ApiToken.token_digest == _digest(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and now >= row.expires_at:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
        row.last_used_at = now
    return row


def revoke_api_token(db: Session, name: str, *, now: dt.datetime) -> ApiToken:
    """Revoke the token of this name at once (caller commits); revoking twice is harmless.

    :raises ApiTokenError: no token has this name.
    """
    row = db.scalars(select(ApiToken).where(ApiToken.name == name.strip())).first()
    if row is None:
        raise ApiTokenError(f"no API token named {name!r}; `accessd token list` shows them")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def list_api_tokens(db: Session) -> list[ApiToken]:
    """Every token, newest first (revoked ones included, for the record)."""
    return list(db.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id)))
