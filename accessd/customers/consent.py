"""When a consent counts: the one rule for "active consent", in Python and in SQL.

A person's consent to fingerprint identification (GDPR art. 9) is active from the moment it
is recorded until it is withdrawn; a withdrawn consent stays on record but counts for nothing.
Every question of the form "has this person consented?" (enrolment, the panel, the API, the
DPIA's counts, a withdrawal, a restore's replay) asks it here, so that the answers agree.

Kept apart from ``people`` so the door daemon's enrolment can import it without the rest.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from accessd.models import Consent, Person

ACTIVE_CONSENT: ColumnElement[bool] = Consent.withdrawn_at.is_(None)
"""The SQL condition of an active consent row (``select(Consent).where(ACTIVE_CONSENT)``)."""


def active_consent(session: Session, person: Person) -> Consent | None:
    """The person's active consent (the latest given, should there ever be two), if any."""
    return session.scalars(
        select(Consent).where(Consent.person_id == person.id, ACTIVE_CONSENT)
        .order_by(Consent.given_at.desc())).first()


def withdrawn_consent(session: Session, person: Person) -> Consent | None:
    """The person's latest withdrawn consent, if any (for "consent withdrawn on ...")."""
    return session.scalars(
        select(Consent).where(Consent.person_id == person.id, ~ACTIVE_CONSENT)
        .order_by(Consent.withdrawn_at.desc())).first()
