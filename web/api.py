"""The JSON API under /api/v1, for the provider's ticketing and customer portal.

Authenticated by ``Authorization: Bearer <token>`` only (tokens from ``accessd token add``,
each with a role); it takes no cookies, so it needs no CSRF token. Errors are JSON:
``{"error": {"status": 403, "title": ..., "message": ...}}`` (``web.errors``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, g, jsonify, request
from werkzeug.wrappers import Response

from accessd.models import ApiToken, StaffRole
from accessd.staff import role_allows, verify_api_token
from web.audit import audit
from web.panel import current_panel, db
from web.security import Access, csrf, mark_access

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])


def current_token() -> ApiToken:
    """The token this API request was made with (inside ``token_required`` views)."""
    token = g.get("api_token")
    assert isinstance(token, ApiToken)
    return token


def token_required(*roles: StaffRole | str) -> Callable[[F], F]:
    """Open to API tokens with one of ``roles`` (any role when none given; admin always).

    No or a bad token: 401; a token whose role does not fit: 403.
    """
    allowed = frozenset(StaffRole(role) for role in roles)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            token = None
            if scheme.lower() == "bearer" and presented.strip():
                token = verify_api_token(db(), presented.strip(), now=current_panel().now())
                db().commit()
            if token is None:
                abort(401)
            g.api_token = token
            audit().actor = f"token:{token.name}"
            if allowed and not role_allows(token.role, allowed):
                abort(403)
            return view(*args, **kwargs)

        return mark_access(cast(F, guarded), Access("token", allowed))

    return decorate


@bp.get("/whoami")
@token_required()
def whoami() -> Response:
    """The token's own name, role and expiry: a cheap check that a token works."""
    token = current_token()
    return jsonify(
        {
            "name": token.name,
            "role": token.role.value,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
    )
