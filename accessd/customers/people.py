"""A customer's people: who may enter, by which credential, and what they agreed to.

Services for the CLI and the panel alike; each takes a ``Session`` and only adds and flushes
(the caller owns the transaction). Withdrawing consent and erasing a person are subject rights
and live in ``accessd.rights.actions``; enrolling a finger is hardware work
(``accessd.fingers.enrolment``).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from accessd.clock import SiteClock
from accessd.customers.collection import refuse_collection
from accessd.customers.consent import ACTIVE_CONSENT, active_consent
from accessd.customers.contracts import clean_name, not_found
from accessd.customers.pins import generate_pin, hash_pin
from accessd.errors import (
    ConsentError,
    DuplicatePersonError,
    InvalidInputError,
    NotFoundError,
    PersonStateError,
)
from accessd.inputs import optional_id, parse_text
from accessd.models import (
    Consent,
    Credential,
    Customer,
    Finger,
    LawfulBasis,
    Person,
    utcnow,
)

EMAIL_MAX = 320
REASON_MAX = 500  # Person.restricted_reason
TEXT_VERSION_MAX = 40  # Consent.text_version
WITNESS_MAX = 64  # Consent.witnessed_by
# Keypad codes grow a digit when random draws keep hitting taken ones; 6 digits hold 900,000
# people, far beyond one site. The first digit is never 0, so no tool drops a leading zero.
KEYPAD_CODE_DIGITS = (4, 5, 6)
KEYPAD_CODE_DRAWS = 20

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_USES_PIN = {Credential.PIN, Credential.FINGER_OR_PIN}
_WITH_PIN = {
    Credential.NONE: Credential.PIN,
    Credential.FINGER: Credential.FINGER_OR_PIN,
    Credential.PIN: Credential.PIN,
    Credential.FINGER_OR_PIN: Credential.FINGER_OR_PIN,
}


@dataclass(frozen=True, slots=True)
class PersonSummary:
    """A person as lists show it: the row, its customer's name, fingers and consent."""

    person: Person
    customer_name: str
    fingers: int
    consent_given_at: dt.datetime | None  # when the active consent was given; None: none

    @property
    def consent(self) -> bool:
        """Whether an active (not withdrawn) consent is on record."""
        return self.consent_given_at is not None


def add_person(
    session: Session,
    customer: Customer,
    name: str,
    email: str | None = None,
    credential: Credential | str = Credential.NONE,
    *,
    clock: SiteClock,
    allow_duplicate: bool = False,
) -> Person:
    """Record one of the customer's people. A keypad code is assigned when the credential
    includes a PIN; the PIN itself is set with ``set_pin``.

    :param clock: the site's clock: nobody is added to a customer whose contract is over.
    :param allow_duplicate: the caller confirmed that a person of the same name and e-mail
        in this customer is someone else (two colleagues can share a name).
    :raises ContractOverError: the customer's contract has ended (``customers.collection``).
    :raises DuplicatePersonError: same name and e-mail as one of the customer's people.
    :raises InvalidInputError: empty or over-long name, malformed e-mail, unknown credential.
    """
    refuse_collection(customer, clock.today())
    cleaned, address = clean_name("name", name), _clean_email(email)
    if not allow_duplicate:
        refuse_duplicate(session, customer, cleaned, address)
    person = Person(customer=customer, name=cleaned, email=address,
                    credential=_checked_credential(credential))
    session.add(person)
    if person.credential in _USES_PIN:
        person.keypad_code = new_keypad_code(session)
    session.flush()
    return person


def duplicate_of(session: Session, customer: Customer, name: str, email: str | None, *,
                 other_than: Person | None = None) -> Person | None:
    """A person of ``customer`` with this name and e-mail (names compared without case,
    e-mail addresses too; no e-mail matches no e-mail), other than ``other_than``."""
    query = select(Person).where(Person.customer_id == customer.id,
                                 func.lower(Person.name) == name.lower())
    if email is None:
        query = query.where(Person.email.is_(None))
    else:
        query = query.where(func.lower(Person.email) == email.lower())
    if other_than is not None:
        query = query.where(Person.id != other_than.id)
    return session.scalars(query.order_by(Person.id)).first()


def refuse_duplicate(session: Session, customer: Customer, name: str, email: str | None, *,
                     other_than: Person | None = None) -> None:
    """:raises DuplicatePersonError: ``customer`` already has a person of this name and e-mail."""
    found = duplicate_of(session, customer, name, email, other_than=other_than)
    if found is None:
        return
    with_email = f" and e-mail {email}" if email else " and no e-mail"
    raise DuplicatePersonError(
        "name", f"{customer.name} already has a person named {found.name}{with_email}; open "
        "that person instead, or confirm that this is someone else with the same name")


def list_persons(session: Session, customer: Customer | None = None) -> list[PersonSummary]:
    """The people of one customer (or of all), by customer and name, with finger counts."""
    where = [] if customer is None else [Person.customer_id == customer.id]
    return _summaries(session, *where)


def find_persons(session: Session, text: str, limit: int = 100) -> list[PersonSummary]:
    """People whose name, e-mail or customer's name contains ``text`` (any case), by customer
    and name, at most ``limit``: to pick a person by name on a site with many people."""
    words = " ".join(text.split()).lower()[:200]
    if not words:
        return []
    pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    matches = (func.lower(Person.name).like(pattern, escape="\\")
               | func.lower(func.coalesce(Person.email, "")).like(pattern, escape="\\")
               | func.lower(Customer.name).like(pattern, escape="\\"))
    return _summaries(session, matches)[:limit]


def person_summary(session: Session, person: Person) -> PersonSummary:
    """One person as ``list_persons`` shows them (for a detail page)."""
    (summary,) = _summaries(session, Person.id == person.id)
    return summary


def get_person_by_public_id(session: Session, public_id: uuid.UUID) -> Person | None:
    """The person with this public id (the one pages and the API show), if any."""
    return session.scalars(select(Person).where(Person.public_id == public_id)).first()


def get_person(session: Session, ref: str) -> Person:
    """The person ``ref`` names: id, public id, or exact name when only one person has it.

    :raises NotFoundError: nothing matches (with close names), or the name is shared.
    """
    ref = ref.strip()
    if (row_id := optional_id(ref)) is not None:
        found = session.get(Person, row_id)
        if found is not None:
            return found
    try:
        public_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        public_id = None
    if public_id is not None:
        found = get_person_by_public_id(session, public_id)
        if found is not None:
            return found
    named = session.scalars(
        select(Person).where(func.lower(Person.name) == ref.lower()).order_by(Person.id)).all()
    if len(named) == 1:
        return named[0]
    if named:
        which = ", ".join(f"{p.id} ({p.customer.name})" for p in named)
        raise NotFoundError(f"{len(named)} people are named {ref!r}; use the id: {which}")
    raise not_found("person", ref, session.scalars(select(Person.name)).all())


def rectify_person(
    session: Session,
    person: Person,
    *,
    name: str | None = None,
    email: str | None = None,
    notes: str | None = None,
    credential: Credential | str | None = None,
) -> list[str]:
    """Correct a person's details (GDPR art. 16) and their way in. ``None`` leaves a field as
    it is; an empty e-mail or notes clears it. Returns the names of the fields that changed
    (for the audit). A way in with a PIN gets a keypad code if the person had none (the PIN
    itself is set with ``set_pin``).

    :raises DuplicatePersonError: the new name and e-mail are another person's of the customer.
    :raises InvalidInputError: empty or over-long name, malformed e-mail, unknown credential.
    """
    wanted: dict[str, object] = {}
    if name is not None:
        wanted["name"] = clean_name("name", name)
    if email is not None:
        wanted["email"] = _clean_email(email)
    if notes is not None:
        wanted["notes"] = notes.strip() or None
    if credential is not None:
        wanted["credential"] = _checked_credential(credential)
    changed = [field for field, value in wanted.items() if getattr(person, field) != value]
    if "name" in changed or "email" in changed:
        refuse_duplicate(session, person.customer, str(wanted.get("name", person.name)),
                         wanted["email"] if "email" in wanted else person.email,  # type: ignore[arg-type]
                         other_than=person)
    for field in changed:
        setattr(person, field, wanted[field])
    if person.credential in _USES_PIN and person.keypad_code is None:
        person.keypad_code = new_keypad_code(session)
    session.flush()
    return changed


def restrict_person(
    session: Session, person: Person, reason: str, *, now: dt.datetime | None = None
) -> None:
    """Restrict processing (GDPR art. 18): the door refuses the person, the data is kept.

    :raises InvalidInputError: no reason given.
    :raises PersonStateError: already restricted.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidInputError(
            "reason", "the reason must say why (e.g. 'request 2025-014: accuracy contested'); it "
            "is kept with the restriction")
    if len(reason) > REASON_MAX:
        raise InvalidInputError("reason", f"the reason has {len(reason)} characters; at "
                                f"most {REASON_MAX} fit, so shorten it")
    if person.restricted:
        raise PersonStateError(
            f"{person.name} is already restricted since {_day(person.restricted_since)} "
            f"({person.restricted_reason}); lift it first to record a new reason")
    person.restricted = True
    person.restricted_reason = reason
    person.restricted_since = now or utcnow()
    session.flush()


def unrestrict_person(session: Session, person: Person) -> None:
    """Lift a restriction: the door lets the person in again (if nothing else refuses).

    :raises PersonStateError: the person is not restricted.
    """
    if not person.restricted:
        raise PersonStateError(f"{person.name} is not restricted; nothing to lift")
    person.restricted = False
    person.restricted_reason = None
    person.restricted_since = None
    session.flush()


def set_pin(session: Session, person: Person, pin: str | None = None, *,
            credential: Credential | str | None = None) -> str:
    """Give the person a PIN (a generated one when ``pin`` is None) and return it.

    The PIN is stored only as its hash; the return value is the one chance to hand it over.
    Resets the failure counter and any lockout and assigns a keypad code if the person had
    none. The way in changes only when ``credential`` says so (staff choose it: the panel
    offers ``with_pin`` of the current one); ``pin_usable`` says whether the door then takes
    the PIN.

    :raises PinError: the PIN is too short, not digits, or too easy to guess.
    :raises InvalidInputError: unknown credential.
    """
    chosen = None if credential is None else _checked_credential(credential)
    pin = generate_pin() if pin is None else pin.strip()
    person.pin_hash = hash_pin(pin)  # validates first
    if chosen is not None:
        person.credential = chosen
    person.pin_failures = 0
    person.pin_locked_until = None
    if person.keypad_code is None:
        person.keypad_code = new_keypad_code(session)
    session.flush()
    return pin


def with_pin(credential: Credential) -> Credential:
    """The way in that adds a PIN to ``credential`` (finger becomes finger or PIN)."""
    return _WITH_PIN[credential]


def pin_usable(person: Person) -> bool:
    """Whether the door accepts the person's PIN with their way in (it includes PIN)."""
    return person.credential in _USES_PIN


def keypad_entry(person: Person, pin: str) -> str:
    """What the person types at the door: ``<keypad code>*<PIN>#``."""
    if person.keypad_code is None:
        raise PersonStateError(f"{person.name} has no keypad code; set a PIN first")
    return f"{person.keypad_code}*{pin}#"


def record_consent(
    session: Session,
    person: Person,
    text_version: str,
    witnessed_by: str,
    *,
    now: dt.datetime | None = None,
) -> Consent:
    """Record the person's explicit consent to fingerprint identification (GDPR art. 9).

    :raises ConsentError: the customer does not rely on consent, or a consent is active.
    :raises InvalidInputError: empty or over-long text version or witness.
    """
    customer = person.customer
    if customer.lawful_basis is None:
        raise ConsentError(
            f"customer {customer.name!r} has no lawful basis recorded; record it first: "
            f"`accessd customer set-basis {customer.id} consent`")
    if customer.lawful_basis is not LawfulBasis.CONSENT:
        raise ConsentError(
            f"customer {customer.name!r} relies on necessity ({customer.necessity_reference}), "
            "not consent; switch it to consent first if its people are to be asked")
    version = parse_text("text_version", text_version, limit=TEXT_VERSION_MAX,
                         what="the version of the consent text")
    witness = parse_text("witnessed_by", witnessed_by, limit=WITNESS_MAX, what="the witness")
    current = active_consent(session, person)
    if current is not None:
        raise ConsentError(
            f"{person.name} already gave consent on {_day(current.given_at)} (text version "
            f"{current.text_version}); it must be withdrawn before a new one is recorded")
    consent = Consent(person=person, customer_id=customer.id, text_version=version,
                      witnessed_by=witness, given_at=now or utcnow())
    session.add(consent)
    session.flush()
    return consent


def new_keypad_code(session: Session) -> str:
    """A random keypad code no existing person holds (4 digits while they are easy to find).

    :raises PersonStateError: no free code was found (only with hundreds of thousands of people).
    """
    for digits in KEYPAD_CODE_DIGITS:
        for _ in range(KEYPAD_CODE_DRAWS):
            code = str(secrets.choice("123456789")) + "".join(
                secrets.choice("0123456789") for _ in range(digits - 1))
            if session.scalar(select(Person.id).where(Person.keypad_code == code)) is None:
                return code
    raise PersonStateError("no free keypad code found; remove people who no longer need access")


def _summaries(session: Session, *where: ColumnElement[bool]) -> list[PersonSummary]:
    fingers = (select(Finger.person_id, func.count().label("n")).group_by(Finger.person_id)
               .subquery())
    consented = (select(Consent.given_at).where(Consent.person_id == Person.id, ACTIVE_CONSENT)
                 .order_by(Consent.given_at.desc()).limit(1).scalar_subquery())
    query = (select(Person, Customer.name, func.coalesce(fingers.c.n, 0), consented)
             .join(Customer, Customer.id == Person.customer_id)
             .outerjoin(fingers, fingers.c.person_id == Person.id)
             .where(*where)
             .order_by(Customer.name, Person.name, Person.id))
    return [PersonSummary(person, customer_name, int(count), given_at)
            for person, customer_name, count, given_at in session.execute(query)]


def _clean_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    if len(email) > EMAIL_MAX or _EMAIL.fullmatch(email) is None:
        raise InvalidInputError("email", f"{email!r} is not an e-mail address (name@example.com)")
    return email


def _checked_credential(credential: Credential | str) -> Credential:
    try:
        return Credential(credential)
    except ValueError:
        choices = ", ".join(c.value for c in Credential)
        raise InvalidInputError(
            "credential", f"{credential!r} is not a credential; use one of {choices}") from None


def _day(moment: dt.datetime | None) -> str:
    return "an unknown date" if moment is None else moment.date().isoformat()
