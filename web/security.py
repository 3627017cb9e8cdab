"""Who may see what, and the protections every response carries.

- Access is declared at each route: ``@public``, ``@login_required`` or
  ``@role_required("operator")`` (``web.pages.api`` declares token access). ``create_app`` refuses
  to start if any view declares nothing, so a new page cannot be open by mistake.
- The cookie carries only a random session token (inside Flask's signed cookie, named
  ``__Host-accessd``); the session itself lives in the ``staff_sessions`` table and is
  checked on every request, with its idle and absolute timeouts.
- Every form is CSRF-protected (Flask-WTF), with tokens living as long as an idle session;
  over TLS a form must also come with a Referer of this very origin (``same_origin``: our own
  check, which refuses a malformed Referer with a 400 instead of raising as Flask-WTF's does).
- Every response gets CSP without inline script, frame-ancestors none, nosniff,
  Referrer-Policy, no-store caching, and HSTS when served over TLS.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect

from accessd.models import StaffRole
from accessd.staff import (
    IDLE_TIMEOUT,
    SessionState,
    end_session,
    must_change_password,
    resume_session,
    role_allows,
    start_session,
)
from web.panel import current_panel, db, source_address
from web.request_audit import audit

if TYPE_CHECKING:
    from accessd.models import StaffUser

logger = logging.getLogger(__name__)

csrf = CSRFProtect()

F = TypeVar("F", bound=Callable[..., Any])

SESSION_KEY = "staff_session"
ACCESS_ATTRIBUTE = "accessd_access"
SECURE_COOKIE = "__Host-accessd"
DEMO_COOKIE = "accessd-demo"  # browsers refuse __Host- cookies without Secure
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
_ENDED_MESSAGES = {
    SessionState.IDLE_EXPIRED: "You were signed out after 30 minutes without activity. "
    "Sign in again to continue.",
    SessionState.ABSOLUTE_EXPIRED: "You were signed out because sessions last at most 12 hours. "
    "Sign in again to continue.",
    SessionState.ENDED: "Your session has ended. Sign in again to continue.",
}


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a view: anyone, signed-in staff, or an API token; ``roles`` empty = any
    role. Admins pass every role check (``accessd.staff.role_allows``)."""

    kind: Literal["public", "staff", "token"]
    roles: frozenset[StaffRole] = frozenset()


def mark_access(view: F, access: Access) -> F:
    """Record ``access`` on ``view`` for ``check_declared_access`` and the URL-map tests."""
    setattr(view, ACCESS_ATTRIBUTE, access)
    return view


def access_of(view: Callable[..., Any]) -> Access | None:
    """The access ``view`` declared, if any."""
    found = getattr(view, ACCESS_ATTRIBUTE, None)
    return found if isinstance(found, Access) else None


def public(view: F) -> F:
    """Open to anyone (the sign-in page)."""
    return mark_access(view, Access("public"))


def initial_password_ok(view: F) -> F:
    """Reachable while the user still has a handed-over password (changing it, signing out).
    Put it below ``@login_required``."""
    view.accessd_initial_password_ok = True  # type: ignore[attr-defined]
    return view


def current_staff() -> StaffUser | None:
    """The signed-in staff member of this request, if any."""
    user: StaffUser | None = g.get("staff")  # set by _load_staff and sign_in only
    return user


def _requires(roles: frozenset[StaffRole]) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        lenient = getattr(view, "accessd_initial_password_ok", False)

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = current_staff()
            if user is None:
                flash(_ENDED_MESSAGES[g.session_ended] if "session_ended" in g else
                      "Sign in to continue.", "info")  # fmt: skip
                return redirect(url_for("auth.login", next=_local_path()))
            if not lenient and must_change_password(user):
                flash("Choose your own password before you continue.", "info")
                return redirect(url_for("auth.change_password"))
            if roles and not role_allows(user.role, roles):
                abort(403)
            return view(*args, **kwargs)

        return mark_access(cast(F, guarded), Access("staff", roles))

    return decorate


def login_required(view: F) -> F:
    """Open to any signed-in staff member."""
    return _requires(frozenset())(view)


def role_required(*roles: StaffRole | str) -> Callable[[F], F]:
    """Open to signed-in staff with one of ``roles`` (admins always); others get 403."""
    if not roles:
        raise ValueError("role_required needs at least one role; use login_required otherwise")
    return _requires(frozenset(StaffRole(role) for role in roles))


def _local_path() -> str:
    # Only a path on this site, never a full URL: the login form redirects to it afterwards.
    return request.full_path.rstrip("?") if request.method == "GET" else "/"


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (``/x``), else ``None`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(char) < 0x20 for char in target):
        return None
    return target


def sign_in(user: StaffUser) -> None:
    """Start a server-side session for ``user`` with a new token (caller commits)."""
    session.clear()  # a new cookie and CSRF secret: nothing from before sign-in carries over
    session[SESSION_KEY] = start_session(
        db(), user, source_address=source_address(), now=current_panel().now()
    )
    g.staff = user
    audit().actor = user.username


def sign_out() -> None:
    """End this request's session, server side and in the cookie (caller commits)."""
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        end_session(db(), token, now=current_panel().now())
    session.clear()
    g.staff = None


def _load_staff() -> None:
    g.staff = None
    if request.endpoint == "static":
        return  # a stylesheet needs no session, and a database read per asset adds up
    view = current_view()
    access = access_of(view) if view is not None else None
    if access is not None and access.kind == "token":
        return  # the API takes no cookies, so it cannot be ridden by CSRF
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return
    resumed = resume_session(db(), token, now=current_panel().now())
    db().commit()
    if resumed.user is None:
        session.clear()
        g.session_ended = resumed.state
        return
    g.staff = resumed.user
    audit().actor = resumed.user.username


def current_view() -> Callable[..., Any] | None:
    """The view function this request is routed to, if any."""
    if request.url_rule is None or request.endpoint is None:
        return None
    return current_app.view_functions.get(request.endpoint)


def same_origin(referrer: str | None, host: str) -> bool:
    """Whether ``referrer`` is a URL on ``https://<host>`` (scheme, host name and port alike).

    Never raises: a Referer that is not a URL, or whose port is not a number (``https://h:x/``
    made ``urllib``'s ``.port`` raise inside Flask-WTF), is simply not this origin.
    """
    if not referrer:
        return False
    try:
        theirs, ours = urlsplit(referrer), urlsplit(f"https://{host}/")
        return (theirs.scheme == "https" and theirs.hostname is not None
                and (theirs.hostname, theirs.port or 443) == (ours.hostname, ours.port or 443))
    except ValueError:
        return False


def _check_referrer() -> None:
    """Over TLS, a form must come from a page of this origin (a second line behind the CSRF
    token, as Flask-WTF's ``WTF_CSRF_SSL_STRICT`` was; the API takes no cookies: exempt)."""
    if not request.is_secure or request.method not in current_app.config["WTF_CSRF_METHODS"]:
        return
    view = current_view()
    access = access_of(view) if view is not None else None
    if access is None or access.kind == "token":
        return  # no such route (its 404 or 405 follows), or the API
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return  # tests that switch CSRF off
    if not same_origin(request.referrer, request.host):
        raise CSRFError("The referrer is missing or is not this site.")


def _headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"  # Flask-WTF checks the referrer over HTTPS
    headers["X-Frame-Options"] = "DENY"  # for browsers without frame-ancestors
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.endpoint != "static":
        # Pages show one-time passwords and personal data: keep them out of caches.
        headers["Cache-Control"] = "no-store"
    if request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    return response


def init_security(app: Flask) -> None:
    """Cookie settings, session loading, CSRF and headers; after ``init_audit``."""
    insecure = current_panel(app).insecure_http
    app.config.update(
        SESSION_COOKIE_NAME=DEMO_COOKIE if insecure else SECURE_COOKIE,
        SESSION_COOKIE_SECURE=not insecure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/",  # required by the __Host- prefix
        SESSION_COOKIE_DOMAIN=None,  # likewise: the cookie stays on this exact host
        WTF_CSRF_TIME_LIMIT=int(IDLE_TIMEOUT.total_seconds()),
        WTF_CSRF_SSL_STRICT=False,  # replaced by _check_referrer, which cannot raise
    )
    if insecure:
        logger.warning(
            "INSECURE: the panel's cookies are NOT marked Secure (plain-HTTP demo mode). "
            "Anyone on the network can read and replay a session. Never run it like this "
            "outside a demo: serve it over HTTPS behind a TLS proxy instead."
        )
    app.before_request(_load_staff)
    csrf.init_app(app)  # after _load_staff, so refused forms are audited with their actor
    app.before_request(_check_referrer)  # after the token check, as Flask-WTF orders them
    app.after_request(_headers)


def check_declared_access(app: Flask) -> None:
    """Refuse to run an app in which a view declares no access (default deny).

    :raises RuntimeError: naming the views to decorate.
    """
    missing = sorted(
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint != "static" and access_of(view) is None
    )
    if missing:
        raise RuntimeError(
            "views without declared access (decorate them with @public, @login_required or "
            "@role_required): " + ", ".join(missing)
        )
