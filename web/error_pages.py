"""Friendly error pages (HTML, or JSON under /api/) that say what to do and leak nothing.

Messages come from this table, never from the exception: a description may carry internals.
Unexpected exceptions are logged by Flask before the 500 page is shown.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, make_response, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, SecurityError

from accessd.labels import N_
from accessd.models import AuditOutcome
from web.request_audit import audit

bp = Blueprint("errors", __name__)

_MESSAGES: dict[int, tuple[str, str]] = {
    400: (
        N_("The request could not be understood"),
        N_("Something in what was sent is not right. Go back, reload the page and try again."),
    ),
    401: (
        N_("Sign in first"),
        N_("This needs a signed-in user or a valid API token."),
    ),
    403: (
        N_("Not allowed"),
        N_("Your role does not give access to this. If you need it, ask an admin."),
    ),
    404: (
        N_("Page not found"),
        N_("There is nothing at this address. Check it, or start again from the dashboard."),
    ),
    405: (
        N_("Not possible this way"),
        N_("This address does not accept that kind of request. Use the buttons and forms of "
        "the panel instead of typing the address."),
    ),
    413: (
        N_("Too much data"),
        N_("What was sent is larger than the panel accepts. Send less at once."),
    ),
    500: (
        N_("Something went wrong"),
        N_("The panel hit an error; it has been logged. Try again, and tell an admin if it "
        "keeps happening."),
    ),
}
_CSRF_MESSAGE = (
    N_("This form has expired or did not come from this panel"),
    N_("Forms stay valid for 30 minutes. Go back, reload the page and send it again."),
)
_API_401 = "send a valid API token in the header: Authorization: Bearer <token>"
_UNTRUSTED_HOST = (
    "Unknown host name",
    "This panel does not answer to the host name this request was sent to. Use the address "
    "your administrator gave you ([web] trusted_hosts lists the names it answers to).",
)


def _page(status: int, title: str, message: str) -> tuple[Response | str, int]:
    if request.path.startswith("/api/"):
        detail = _API_401 if status == 401 else message
        body = jsonify({"error": {"status": status, "title": title, "message": detail}})
        if status == 401:
            body.headers["WWW-Authenticate"] = 'Bearer realm="accessd"'
        return body, status
    return render_template("errors/error.html", status=status, title=gettext(title),
                           message=gettext(message)), status


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response | HTTPException:
    """Any HTTP error: the table's words for its status."""
    status = error.code or 500
    if status < 400:
        return error  # not an error (a redirect raised by routing)
    if isinstance(error, CSRFError):
        audit().outcome = AuditOutcome.DENIED  # a form not from this panel: not allowed to ask
        return make_response(_page(400, *_CSRF_MESSAGE))
    if isinstance(error, SecurityError):
        return _untrusted_host()
    fallback = _MESSAGES[500] if status >= 500 else _MESSAGES[400]
    title, message = _MESSAGES.get(status, fallback)
    response = make_response(_page(status, title, message))
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _untrusted_host() -> Response:
    """A Host outside TRUSTED_HOSTS: refused before routing, so no URL can be built (the
    page template builds links) and the host is neither echoed nor used."""
    title, message = _UNTRUSTED_HOST
    if request.path.startswith("/api/"):
        return make_response(jsonify({"error": {"status": 400, "title": title,
                                                "message": message}}), 400)
    return Response(f"{title}\n\n{message}\n", status=400, mimetype="text/plain")


@bp.app_errorhandler(500)
def server_error(_error: Exception) -> tuple[Response | str, int]:
    """An unexpected exception (outside testing, where it propagates to the test)."""
    return _page(500, *_MESSAGES[500])
