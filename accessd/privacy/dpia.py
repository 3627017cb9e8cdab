"""``accessd dpia``: the facts a data-protection impact assessment of this installation needs.

Gathered from the running configuration and the database: data categories, how data flows
between sensor, door board, Pi, database, backups and panel, which keys exist and where they
live (paths and ids only: never key material), retention per category, counts and lawful basis
per customer (by name: the DPIA is an internal document), and the known risks with their
mitigations. The assessment itself (necessity, proportionality, residual risk acceptance) is
the controller's; this gives it accurate inputs. JSON for tools, Markdown for people.

Statements the register of processing activities makes too (security measures, what backups
hold, what a restore does, transfers) come from ``accessd.privacy.claims``, where each is
checked against the code: the two documents cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd.config import RETENTION_CATEGORIES, Settings, mask_url
from accessd.crypto import KeyProvider
from accessd.customers.consent import ACTIVE_CONSENT
from accessd.models import (
    AccessEvent,
    Consent,
    Customer,
    DataKey,
    Finger,
    Person,
    StaffUser,
)
from accessd.privacy.claims import (
    backup_contents,
    database_location,
    period_text,
    restore_claim,
    security_measures,
    transfers,
)
from accessd.privacy.purge import installation_key_id, purge_due_at

CATEGORIES = [
    {"category": "identity", "data": "name, e-mail address, notes of a customer's staff member",
     "where": "database (persons)", "special": False},
    {"category": "fingerprint template", "data": "512-byte sensor template per finger",
     "where": "database (fingers: AES-256-GCM under the customer's data key); every door "
              "sensor's flash (plaintext, the sensor needs it to match)", "special": True},
    {"category": "PIN", "data": "keypad code and Argon2id hash of the PIN",
     "where": "database (persons)", "special": False},
    {"category": "consent", "data": "who consented, when, text version, witness, withdrawal",
     "where": "database (consents)", "special": False},
    {"category": "access history", "data": "time, door, result, method, salted subject digest",
     "where": "database (access_events, hash-chained)", "special": False},
    {"category": "door events without a person", "data": "unknown fingers, tamper, faults",
     "where": "database (facility chain)", "special": False},
    {"category": "staff accounts, audit log, login history",
     "data": "user names, roles, actions, source IP addresses", "where": "database",
     "special": False},
    {"category": "data-subject requests", "data": "requester, kind, dates, outcome",
     "where": "database (data_subject_requests)", "special": False},
    {"category": "purge records and erasure ledger",
     "data": "keyed digests, counts and dates: no personal data", "where": "database",
     "special": False},
]

_FLOWS = [
    {"from": "fingerprint sensor", "to": "Pi (accessd daemon)",
     "over": "UART (serial line, 57600 baud), inside the reader housing and the wall",
     "data": "search result (slot, score); during enrolment and resync the template itself",
     "protection": "sensor password (not the factory default), and the sensor's system "
                   "parameters checked against the ones stored when it was installed; the line "
                   "is unencrypted"},
    {"from": "door board", "to": "Pi (accessd daemon)", "over": "serial line (framed protocol)",
     "data": "door contact, exit button, tamper, keypad digits (PIN entry); unlock pulses",
     "protection": "every frame authenticated (HMAC-SHA256 under a key provisioned once, a "
                   "session key per connection, counters against replay; no fallback to the "
                   "clear); fail-secure board: relocks on its own without heartbeats; the line "
                   "is not encrypted, so keypad digits can be read by a tap"},
    {"from": "Pi (accessd daemon)", "to": "database",
     "over": "local SQLite file, or PostgreSQL over the network for multi-door sites",
     "data": "everything above, templates encrypted",
     "protection": "per-customer data keys wrapped by a master key held outside the database"},
    {"from": "database", "to": "staff panel (web)", "over": "HTTP(S) to staff browsers",
     "data": "people, history, requests; never templates",
     "protection": "staff accounts with roles and a second factor, audit log, lockout"},
]

_RISKS = [
    {"risk": "Plaintext templates in the sensor's flash, outside the secured area",
     "mitigations": ["sensor password set to a random, non-default value (a stolen sensor "
                     "does not hand over its library without it)",
                     "tamper switch: the daemon raises an alarm and the library can be wiped",
                     "reconcile: the daemon keeps each sensor's library equal to the database, "
                     "so purged and erased templates leave every sensor"]},
    {"risk": "The serial line between reader and Pi can be tapped",
     "mitigations": ["the line runs inside the reader housing and the wall",
                     "templates cross it only during enrolment and resync; a normal entry "
                     "sends only a slot number",
                     "the door board relocks without heartbeats: injecting on the line does "
                     "not hold the door open"]},
    {"risk": "Someone on the door board's cable sends the unlock command",
     "mitigations": ["the board obeys only frames sealed under the key provisioned at "
                     "installation (HMAC-SHA256, 128-bit tags, a session key per connection, "
                     "32-bit counters): forged, replayed, truncated or downgraded frames are "
                     "refused and raise an alarm, the relay does not move",
                     "no default key and no fallback: a new board obeys nothing until "
                     "provisioned, and accepts a new key only with the jumper inside its case",
                     "residual: the key crosses the cable once, in clear, at provisioning; "
                     "provision with the cable on the secure side",
                     "residual: an LCUS relay cannot authenticate anything; it is refused unless "
                     "the site accepts that in its configuration"]},
    {"risk": "The fingerprint sensor sits outside the door: it can be swapped for a device "
             "that answers as a sensor",
     "mitigations": ["the daemon opens the sensor with the installation's random password and "
                     "compares its system parameters with those stored when it was installed; "
                     "a different one, or one on its factory password, is refused (no "
                     "fingerprint decisions, an alarm) until staff approve it "
                     "(`accessd sensor approve`, audited)",
                     "the tamper switch wipes the library when the reader's housing is opened",
                     "residual: the sensor's protocol has no authentication. A device built to "
                     "impersonate one, with the same parameters, learns the password the "
                     "daemon sends and can then claim any enrolled person's slot; the door "
                     "would open for whoever presents anything to it. Only the housing, its "
                     "tamper switch and the camera watching the door stand against that; for "
                     "a door where that is not enough, use a code plus a 1:1 finger check, "
                     "or a reader with an authenticated link"]},
    {"risk": "SD card wear levelling keeps old blocks below the file system",
     "mitigations": ["templates are stored only encrypted, under per-customer data keys",
                     "the data key is destroyed at purge (crypto-shredding): templates left in "
                     "old blocks can no longer be decrypted",
                     "secure_delete and a truncating WAL checkpoint zero the file itself",
                     "residual: the database file is not encrypted, so names and history left "
                     "in old blocks stay readable to whoever reads the card's raw flash; "
                     "full-disk encryption of the card would cover that"]},
    {"risk": "Biometrics used without a valid lawful basis",
     "mitigations": ["enrolment is refused until the customer's basis is recorded, and, for "
                     "consent, without the person's witnessed consent",
                     "a PIN or staff-assisted entry always exists, so refusing costs nothing",
                     "withdrawing consent deletes the template at once"]},
]


def _flows(settings: Settings) -> list[dict[str, str]]:
    backups = {"from": "database", "to": "backups",
               "over": "accessd backup (file in the backup dir)", "data": "the whole database",
               "protection": backup_contents(settings).en}
    return [*_FLOWS[:3], backups, *_FLOWS[3:]]


def _risks(settings: Settings) -> list[dict[str, Any]]:
    backups = {"risk": "Loss or theft of a backup",
               "mitigations": [next(c.en for c in security_measures(settings)
                                    if c.key == "backups_encrypted"),
                               backup_contents(settings).en, restore_claim().en]}
    return [*_RISKS, backups]


def dpia_facts(settings: Settings, session: Session, now: dt.datetime,
               provider: KeyProvider | None = None) -> dict[str, Any]:
    """Everything ``accessd dpia`` reports, as plain JSON-ready data."""
    controller = settings.controller
    return {
        "generated_at": now.astimezone(dt.UTC).isoformat(),
        "site_timezone": settings.access.timezone,
        "database": mask_url(settings.database.url),
        "automated_decisions": "the door decides access only; nothing else is decided "
                               "automatically",
        "controller": {"name": controller.name, "address": controller.address,
                       "email": controller.email, "dpo_name": controller.dpo_name,
                       "dpo_contact": controller.dpo_contact},
        "data_categories": CATEGORIES,
        "flows": _flows(settings),
        "transfers": transfers(settings).en,
        "keys": _keys(settings, session, provider),
        "retention": {c: {"period": str(getattr(settings.retention, c)),
                          "en": period_text(getattr(settings.retention, c), "en"),
                          "nl": period_text(getattr(settings.retention, c), "nl")}
                      for c in RETENTION_CATEGORIES}
        | {"backups": {"period": f"{settings.backup.max_age_months} months",
                       "dir": str(settings.backup.dir)}},
        "customers": _customers(session, now, settings.access.timezone),
        "staff_accounts": int(session.scalar(select(func.count()).select_from(StaffUser)) or 0),
        "security_measures": [c.en for c in (*security_measures(settings),
                                             database_location(settings))],
        "risks": _risks(settings),
    }


def _keys(settings: Settings, session: Session, provider: KeyProvider | None) -> dict[str, Any]:
    keyring = settings.keys.master_key_file
    if settings.keys.from_credential:
        where = f"systemd credential {settings.keys.credential_name!r} (read-only, {keyring})"
    else:
        where = f"key file {keyring}{_mode(keyring)}"
    wrapped = dict(session.execute(select(DataKey.master_key_id, func.count())
                                   .group_by(DataKey.master_key_id)).all())
    facts: dict[str, Any] = {
        "keyring": where,
        "master_keys": "AES-256, in the keyring; wrap the per-customer data keys and staff "
                       "TOTP secrets",
        "data_keys": {"count": sum(wrapped.values()), "wrapped_by": wrapped,
                      "where": "database (data_keys), wrapped; destroyed at purge"},
        "signing_key": "Ed25519, in the keyring; signs purge certificates and the ledger",
        "sensor_password": (f"file {settings.sensor.password_file}"
                            if settings.sensor.password_file else "in the keyring"),
        "web_session_key": f"file {settings.web.secret_key_file}",
        "door_link_key": ("in the keyring and in the door board's flash; authenticates the "
                          "wire between them (HMAC-SHA256)" if settings.door.driver == "doorboard"
                          else f"none: the {settings.door.driver!r} door driver cannot "
                               "authenticate its wire"),
    }
    if provider is not None and settings.door.driver == "doorboard" \
            and provider.door_link_key() is None:
        facts["door_link_key"] = "not provisioned yet: `accessd door provision`"
    if provider is not None:  # ids only, never key material
        facts["active_master_key_id"] = provider.active_key_id
        facts["master_key_ids"] = list(provider.key_ids())
        facts["signing_key_id"] = installation_key_id(provider.signing_public_key())
    return facts


def _mode(path: os.PathLike[str] | None) -> str:
    if path is None:
        return ""
    try:
        return f" (mode {stat.S_IMODE(os.stat(path).st_mode):04o})"
    except OSError:
        return " (missing)"


def _customers(session: Session, now: dt.datetime, site_timezone: str) -> list[dict[str, Any]]:
    def per_customer(column: Any, *where: Any) -> dict[int, int]:
        rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
        return {cid: n for cid, n in rows if cid is not None}

    persons = per_customer(Person.customer_id)
    fingers = per_customer(Finger.customer_id)
    events = per_customer(AccessEvent.customer_id)
    consents = per_customer(Consent.customer_id, ACTIVE_CONSENT)
    restricted = per_customer(Person.customer_id, Person.restricted.is_(True))
    result = []
    for customer in session.scalars(select(Customer).order_by(Customer.name, Customer.id)):
        due = (purge_due_at(customer.contract_end, customer.grace_days, site_timezone)
               if customer.contract_end else None)
        result.append({
            "name": customer.name,
            "lawful_basis": customer.lawful_basis.value if customer.lawful_basis else None,
            "necessity_reference": customer.necessity_reference,
            "contract_start": customer.contract_start.isoformat(),
            "contract_end": customer.contract_end.isoformat() if customer.contract_end else None,
            "grace_days": customer.grace_days,
            "purge_due_at": due.isoformat() if due else None,
            "persons": persons.get(customer.id, 0),
            "restricted_persons": restricted.get(customer.id, 0),
            "fingers": fingers.get(customer.id, 0),
            "active_consents": consents.get(customer.id, 0),
            "access_events": events.get(customer.id, 0),
        })
    return result


def render_json(facts: dict[str, Any]) -> str:
    return json.dumps(facts, indent=2, ensure_ascii=False) + "\n"


def _plain(value: object) -> str:
    """Nested facts as one line: "count: 2; wrapped by: mk-1: 2"."""
    if isinstance(value, dict):
        return "; ".join(f"{str(k).replace('_', ' ')}: {_plain(v)}" for k, v in value.items()) \
            or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    return str(value)


def _md(text: object) -> str:
    return (_plain(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace("\n", " "))


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows] + [""]


def render_markdown(facts: dict[str, Any]) -> str:
    """The facts as a Markdown document for the DPIA file."""
    out = ["# DPIA facts: accessd", "",
           f"Generated {facts['generated_at']} from the running configuration and database "
           f"({_md(facts['database']) or 'SQLite in data_dir'}); site time zone "
           f"{facts['site_timezone']}. {facts['automated_decisions'].capitalize()}.", "",
           "## Controller", ""]
    out += [f"- **{_md(name.replace('_', ' '))}**: "
            f"{_md(value) if value else 'NOT CONFIGURED: set controller.' + name}"
            for name, value in facts["controller"].items()] + ["", "## Data categories", ""]
    out += _table(["Category", "Data", "Where", "Special category"],
                  [[c["category"], c["data"], c["where"], "yes (biometric)" if c["special"]
                    else "no"] for c in facts["data_categories"]])
    out += ["## Flows", ""]
    out += _table(["From", "To", "Over", "Data", "Protection"],
                  [[f["from"], f["to"], f["over"], f["data"], f["protection"]]
                   for f in facts["flows"]])
    out += ["## Transfers to third countries", "", _md(facts["transfers"]), ""]
    out += ["## Keys (where they live; no key material)", ""]
    out += [f"- **{_md(name.replace('_', ' '))}**: {_md(value)}"
            for name, value in facts["keys"].items()] + [""]
    out += ["## Retention", ""]
    out += _table(["Category", "Period", "Nederlands"],
                  [[name, value.get("en", value["period"]), value.get("nl", "")]
                   for name, value in facts["retention"].items()])
    out += ["## Customers", ""]
    out += _table(["Customer", "Lawful basis", "Reference", "Contract", "Purge due", "Persons",
                   "Fingers", "Active consents", "Access events"],
                  [[c["name"], c["lawful_basis"] or "NONE: enrolment refused",
                    c["necessity_reference"] or "", f"{c['contract_start']} to "
                    f"{c['contract_end'] or 'open-ended'} (+{c['grace_days']} d)",
                    c["purge_due_at"] or "", c["persons"], c["fingers"], c["active_consents"],
                    c["access_events"]] for c in facts["customers"]])
    out += [f"Staff accounts: {facts['staff_accounts']}.", "",
            "## Security measures (GDPR art. 32)", ""]
    out += [f"- {_md(m)}" for m in facts["security_measures"]] + ["", "## Known risks", ""]
    for risk in facts["risks"]:
        out += [f"### {_md(risk['risk'])}", ""] + [f"- {_md(m)}" for m in risk["mitigations"]]
        out += [""]
    return "\n".join(out)
