"""The request audit, after privacyidea's: opened before the view, filled by it, written after.

``before_request`` opens a ``RequestAudit`` for every request; the view adds what it did
(``audit().note("staff.disable", target=...)``); ``teardown_request`` writes it in a
transaction of its own, so it is written even when the view failed and its own changes
were rolled back. Written are: every request that may change state (any method but GET,
HEAD, OPTIONS), every refused one (403), and every request whose view noted something
(reads of personal data and exports note themselves).

How a request ended is decided here, once for every view (``RequestAudit.final_outcome``):

- ``failed``: an exception, or a 5xx answer;
- what the view said, when it said it (a sign-in);
- ``denied``: 401, 403, 405 or 429, or a form that did not come from this panel (its CSRF
  refusal says so): no session or token, the wrong role, not this way, too often;
- ``refused``: any other 4xx (a bad value, a target that does not exist, a conflict), or a view that
  answered with a refusal, seen through Flask's signals: it flashed an ``error``, or it
  rendered a form whose fields carry errors in answer to a POST (a service's refusal is shown
  beside the field it concerns). A refusal is never a success, whatever the status code;
- ``success`` otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, message_flashed, request, template_rendered
from flask_wtf import FlaskForm

from accessd.db import session_scope
from accessd.models import AuditOutcome
from accessd.staff import record_audit
from web.panel import close_db, current_panel, source_address

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DENYING_STATUSES = frozenset({401, 403, 405, 429})
"""Answers that mean "not allowed to ask" (audited as denied); other 4xx are refusals."""
ANONYMOUS = "anonymous"


@dataclass
class RequestAudit:
    """The audit record of the current request, while it is being filled."""

    action: str
    actor: str = ANONYMOUS
    source_address: str | None = None
    target: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    outcome: AuditOutcome | None = None
    noted: bool = False
    status: int | None = None
    refused: bool = False

    def note(
        self,
        action: str | None = None,
        *,
        target: str | None = None,
        outcome: AuditOutcome | None = None,
        **details: Any,
    ) -> None:
        """Say what this request did; it will be written even if it was a GET."""
        self.noted = True
        if action is not None:
            self.action = action
        if target is not None:
            self.target = target
        if outcome is not None:
            self.outcome = outcome
        self.details.update(details)

    def refuse(self, why: str, **details: Any) -> None:
        """The view answered with a refusal (``why``: how it said so); it is not a success."""
        self.refused = True
        self.details.setdefault("refused", why)
        self.details.update(details)

    def should_write(self, method: str) -> bool:
        """Whether this request belongs in the audit log."""
        return self.noted or method not in SAFE_METHODS or self.status == 403

    def final_outcome(self, exc: BaseException | None) -> AuditOutcome:
        """What the view said, else what the response status says."""
        if exc is not None or (self.status or 500) >= 500:
            return AuditOutcome.FAILED
        if self.outcome is not None:
            return self.outcome
        if self.status in DENYING_STATUSES:
            return AuditOutcome.DENIED
        if (self.status or 200) >= 400 or self.refused:
            return AuditOutcome.REFUSED
        return AuditOutcome.SUCCESS


def audit() -> RequestAudit:
    """The current request's audit record."""
    record = g.get("audit")
    if record is None:  # outside a request opened by init_audit (a unit test calling a view)
        record = g.audit = RequestAudit(action="unknown")
    assert isinstance(record, RequestAudit)
    return record


def _open() -> None:
    g.audit = RequestAudit(
        action=f"{request.method} {request.endpoint or request.path}",
        source_address=source_address(),
    )


def _flashed(_app: Flask, message: str, category: str, **_extra: Any) -> None:
    record = g.get("audit")
    if record is not None and category == "error":
        record.refuse("message")


def _rendered(_app: Flask, template: Any, context: dict[str, Any], **_extra: Any) -> None:
    record = g.get("audit")
    if record is None or request.method in SAFE_METHODS:
        return
    fields = sorted({field.name for form in context.values() if isinstance(form, FlaskForm)
                     for field in form if field.errors})
    if fields:
        record.refuse("form", fields=fields)


def _remember_status(response: Response) -> Response:
    record = g.get("audit")
    if record is not None:
        record.status = response.status_code
    return response


def _write(exc: BaseException | None) -> None:
    # The request's own transaction first: on SQLite it holds the write lock.
    close_db()
    record = g.pop("audit", None)
    if record is None or not record.should_write(request.method):
        return
    if record.target is None and request.view_args:
        # What the URL named (a door id, a public id): a 404's target is only known this way.
        record.details.setdefault("url", {k: str(v) for k, v in request.view_args.items()})
    try:
        with session_scope(current_panel().sessions) as session:
            record_audit(
                session,
                actor=record.actor,
                action=record.action,
                outcome=record.final_outcome(exc),
                target=record.target,
                details={**record.details, "status": record.status} if record.status else
                record.details or None,
                source_address=record.source_address,
                at=current_panel().now(),
            )
    except Exception:  # teardown must not raise; losing a record is logged loudly instead
        logger.exception("could not write the audit record of %s", record.action)


def init_audit(app: Flask) -> None:
    """Install the hooks; call before any other ``before_request`` so every request is seen."""
    app.before_request(_open)
    app.after_request(_remember_status)
    app.teardown_request(_write)
    message_flashed.connect(_flashed, app)
    template_rendered.connect(_rendered, app)
