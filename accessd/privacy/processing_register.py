"""The register of processing activities (GDPR art. 30(1)), generated from the running
configuration and database, in English and Dutch.

Where each item of art. 30(1) comes from:

- (a) the controller, its contact details and the data protection officer: the ``[controller]``
  settings; one that is not configured is named as missing, never guessed;
- (b) purposes, (c) categories of data subjects and of personal data, (d) recipients: per
  activity (``Activity``); the recipients include the API clients that hold a token;
- (e) transfers to third countries: ``claims.transfers`` (none unless configured);
- (f) time limits for erasure: the Retention column, from ``settings.retention``, the purge's
  grace period and the backups' maximum age (``claims.backup_contents``);
- (g) the security measures: ``claims.security_measures``, each checked against the code.

The statements' five columns (service, data, retention, controller, legal ground: Type dienst,
Type gegevens, Bewaartermijnen, Verantwoordelijke, Grond voor verwerking) stay the first table.

Legal grounds. The people whose data this is are mostly the customers' engineers: they are not
party to the colocation contract (their employer is), so "performance of a contract" (art.
6(1)(b)) does not cover their names and access history. The provider decides why and how the
door works (its own premises, its own rules and retention), so it is the controller for it, not
the customer's processor; its ground is its legitimate interest, shared with each customer, in
a datacenter that lets in exactly the people the customer authorises (art. 6(1)(f)). The
fingerprint, special-category data, additionally needs a ground of art. 9: the one each customer
recorded (``Customer.lawful_basis``): the explicit consent of each person (art. 9(2)(a)), or a
documented necessity for authentication or security (UAVG art. 29), named per customer with
its assessment's reference.

Rendered as Markdown, CSV or HTML, every cell escaped for its format.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.config import Settings
from accessd.csv_cells import csv_writer
from accessd.models import ApiToken, Customer, LawfulBasis
from accessd.privacy.claims import (
    UNTIL_END,
    Lang,
    backup_contents,
    database_location,
    period_text,
    security_measures,
    transfers,
)

LANGS: tuple[Lang, ...] = ("en", "nl")

COLUMNS: dict[Lang, tuple[str, str, str, str, str]] = {
    "en": ("Service", "Data", "Retention", "Controller", "Legal ground"),
    "nl": ("Type dienst", "Type gegevens", "Bewaartermijnen", "Verantwoordelijke",
           "Grond voor verwerking"),
}
DETAIL_COLUMNS: dict[Lang, tuple[str, str, str, str]] = {
    "en": ("Service", "Purpose", "Data subjects", "Recipients"),
    "nl": ("Type dienst", "Doel", "Betrokkenen", "Ontvangers"),
}
BASIS_COLUMNS: dict[Lang, tuple[str, str, str]] = {
    "en": ("Customer", "Ground for fingerprints", "Assessment"),
    "nl": ("Klant", "Grond voor vingerafdrukken", "Beoordeling"),
}
TITLE: dict[Lang, str] = {"en": "Register of processing activities",
                          "nl": "Register van verwerkingsactiviteiten"}
HEADINGS: dict[Lang, dict[str, str]] = {
    "en": {
        "controller": "Controller (GDPR art. 30(1)(a))",
        "activities": "Processing activities",
        "details": "Purposes, data subjects and recipients (art. 30(1)(b) to (d))",
        "bases": "Lawful basis for fingerprints, per customer",
        "transfers": "Transfers to third countries (art. 30(1)(e))",
        "time_limits": "Time limits for erasure (art. 30(1)(f))",
        "measures": "Technical and organisational security measures (art. 30(1)(g), art. 32)",
    },
    "nl": {
        "controller": "Verwerkingsverantwoordelijke (AVG art. 30 lid 1 onder a)",
        "activities": "Verwerkingen",
        "details": "Doeleinden, betrokkenen en ontvangers (art. 30 lid 1 onder b tot en met d)",
        "bases": "Grondslag voor vingerafdrukken, per klant",
        "transfers": "Doorgifte naar derde landen (art. 30 lid 1 onder e)",
        "time_limits": "Bewaartermijnen (art. 30 lid 1 onder f)",
        "measures": "Technische en organisatorische beveiligingsmaatregelen (art. 30 lid 1 "
                    "onder g, art. 32)",
    },
}
_CONTROLLER_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Controller", "Verwerkingsverantwoordelijke"),
    ("address", "Address", "Adres"),
    ("email", "Contact", "Contact"),
    ("dpo_name", "Data protection officer", "Functionaris voor gegevensbescherming"),
    ("dpo_contact", "Contact of the data protection officer",
     "Contact functionaris voor gegevensbescherming"),
)


@dataclass(frozen=True, slots=True)
class Activity:
    """One processing activity, in one language: the statements' five columns and the rest
    of what art. 30(1) asks of it."""

    service: str
    data: str
    retention: str
    controller: str
    legal_ground: str
    purpose: str
    subjects: str
    recipients: str

    def cells(self) -> tuple[str, str, str, str, str]:
        """The statements' five columns."""
        return (self.service, self.data, self.retention, self.controller, self.legal_ground)

    def details(self) -> tuple[str, str, str, str]:
        """Service, purpose, data subjects, recipients."""
        return (self.service, self.purpose, self.subjects, self.recipients)


@dataclass(frozen=True, slots=True)
class CustomerBasis:
    """A customer's recorded lawful basis for its people's fingerprints."""

    name: str
    basis: LawfulBasis | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class InstallationFacts:
    """What the register reads from the database: each customer's basis, the API clients."""

    customers: list[CustomerBasis] = field(default_factory=list)
    api_clients: list[tuple[str, str]] = field(default_factory=list)  # (name, role)


@dataclass(frozen=True, slots=True)
class ControllerLine:
    """One line of art. 30(1)(a): a label and its value, or what is missing."""

    label: str
    value: str
    missing: bool


@dataclass(frozen=True, slots=True)
class Register:
    """The whole register in one language."""

    lang: Lang
    title: str
    headings: dict[str, str]
    controller: list[ControllerLine]
    activities: list[Activity]
    bases: list[tuple[str, str, str]]
    transfers: str
    time_limits: str
    measures: list[str]


def installation_facts(session: Session) -> InstallationFacts:
    """Each customer's recorded basis (by name) and the active API tokens (name, role)."""
    customers = [CustomerBasis(name, basis, reference) for name, basis, reference in
                 session.execute(select(Customer.name, Customer.lawful_basis,
                                        Customer.necessity_reference)
                                 .order_by(Customer.name, Customer.id))]
    clients = [(name, role.value) for name, role in session.execute(
        select(ApiToken.name, ApiToken.role).where(ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.name))]
    return InstallationFacts(customers, clients)


def build_register(settings: Settings, lang: Lang,
                   facts: InstallationFacts | None = None) -> Register:
    """The register in ``lang``. ``facts``: from the database (``installation_facts``);
    ``None`` describes an installation without customers or API clients."""
    facts = facts or InstallationFacts()
    return Register(
        lang=lang, title=TITLE[lang], headings=HEADINGS[lang],
        controller=_controller_lines(settings, lang),
        activities=_activities(settings, lang, facts),
        bases=_bases(facts, lang),
        transfers=transfers(settings).text(lang),
        time_limits=_time_limits(settings, lang),
        measures=[claim.text(lang) for claim in
                  [*security_measures(settings), database_location(settings)]])


def _missing(key: str, lang: Lang) -> str:
    return (f"NOT CONFIGURED: set controller.{key} in the configuration" if lang == "en" else
            f"NIET INGESTELD: vul controller.{key} in de configuratie in")


def _controller_lines(settings: Settings, lang: Lang) -> list[ControllerLine]:
    lines = []
    for key, en, nl in _CONTROLLER_FIELDS:
        value = getattr(settings.controller, key)
        lines.append(ControllerLine(en if lang == "en" else nl, value or _missing(key, lang),
                                    value is None))
    return lines


def _controller_cell(settings: Settings, lang: Lang) -> str:
    name = settings.controller.name
    if name:
        return name
    return ("the provider (controller.name not configured)" if lang == "en" else
            "de aanbieder (controller.name niet ingesteld)")


def _recipients(settings: Settings, facts: InstallationFacts, lang: Lang, *,
                customer: bool, api: bool) -> str:
    en = lang == "en"
    parts = ["facility staff, by role (operators act, auditors read)" if en else
             "medewerkers van de aanbieder, per rol (operators handelen, auditors lezen)"]
    if customer:
        parts.append("the customer and the person themselves, on request (export)" if en else
                     "de klant en de persoon zelf, op verzoek (export)")
    if api:
        clients = ", ".join(f"{name} ({role})" for name, role in facts.api_clients)
        parts.append((f"API clients holding a token: {clients}" if en else
                      f"API-clients met een token: {clients}") if clients else
                     ("no API client holds a token" if en else "geen API-client heeft een token"))
    if settings.controller.recipients:
        parts.append(settings.controller.recipients)
    return "; ".join(parts)


def _activities(settings: Settings, lang: Lang, facts: InstallationFacts) -> list[Activity]:
    en = lang == "en"
    controller = _controller_cell(settings, lang)
    grace, months = settings.purge.grace_days, settings.backup.max_age_months
    retention = settings.retention
    service_end = (
        f"{UNTIL_END[lang]}, plus the cooling-off period agreed with the customer (default "
        f"{grace} days, at most 90)" if en else
        f"{UNTIL_END[lang]}, plus de met de klant afgesproken bedenktijd (standaard {grace} "
        "dagen, hoogstens 90)")
    until_end = (
        f"{service_end}, then deleted; erasing a person deletes their details at once and "
        "anonymises their access history; backups made before keep a copy until they are "
        f"{months} months old" if en else
        f"{service_end}, daarna verwijderd; bij verwijdering van een persoon gaan diens "
        "gegevens direct weg en wordt diens toegangshistorie geanonimiseerd; eerder gemaakte "
        f"back-ups houden een kopie tot ze {months} maanden oud zijn")
    fingerprint_end = (
        f"{service_end}, or until consent is withdrawn or the person erased, then deleted at "
        "once; copies in backups are unreadable once the customer's data key is destroyed at "
        "the purge" if en else
        f"{service_end}, of tot de toestemming wordt ingetrokken of de persoon verwijderd, "
        "dan direct verwijderd; kopieën in back-ups zijn onleesbaar zodra de "
        "gegevenssleutel van de klant bij de verwijdering van de klant is vernietigd")
    history = retention.access_history
    people_retention = until_end if history.until_contract_end else (
        f"access history: {period_text(history, lang)}; the rest: {until_end}" if en else
        f"toegangshistorie: {period_text(history, lang)}; de rest: {until_end}")
    interest = (
        "legitimate interest of the provider, shared with each customer, in a secured "
        "datacenter that lets in exactly the people the customer authorises (GDPR art. "
        "6(1)(f)). These people are not party to the colocation contract (their employer is), "
        "so performance of a contract (art. 6(1)(b)) does not cover them; the provider decides "
        "why and how the door works, so it is the controller, not the customer's processor. "
        "Balance: little data, kept only while the contract runs, a way in without a "
        "fingerprint always, objection and restriction possible" if en else
        "gerechtvaardigd belang van de aanbieder, gedeeld met elke klant, bij een beveiligd "
        "datacenter dat precies de mensen binnenlaat die de klant aanwijst (AVG art. 6 lid 1 "
        "onder f). Deze mensen zijn geen partij bij de colocatieovereenkomst (hun werkgever "
        "wel), dus uitvoering van een overeenkomst (art. 6 lid 1 onder b) dekt hen niet; de "
        "aanbieder bepaalt waarom en hoe de deur werkt en is dus verwerkingsverantwoordelijke, "
        "geen verwerker van de klant. Afweging: weinig gegevens, alleen bewaard zolang het "
        "contract loopt, altijd een toegang zonder vingerafdruk, bezwaar en beperking mogelijk")
    security = "legitimate interest (GDPR art. 6(1)(f)): " if en else \
        "gerechtvaardigd belang (AVG art. 6 lid 1 onder f): "
    staff = ("facility staff (panel users)" if en else "medewerkers van de aanbieder "
             "(gebruikers van het beheerpaneel)")
    requests = retention.data_subject_requests
    open_requests = retention.open_data_subject_requests
    return [
        Activity(
            "Door access for customers' people" if en else "Toegang voor mensen van klanten",
            "name, e-mail address, notes, way in, keypad code, PIN (Argon2id hash), "
            "restriction, access history (time, door, result, method)" if en else
            "naam, e-mailadres, notities, manier van toegang, toetsenbordcode, pincode "
            "(Argon2id-hash), beperking, toegangshistorie (tijdstip, deur, resultaat, methode)",
            people_retention, controller, interest,
            "letting in the people each customer authorises, and no one else; knowing who "
            "entered which door when, to secure the datacenter and the equipment customers "
            "keep there" if en else
            "de mensen binnenlaten die een klant aanwijst, en verder niemand; weten wie wanneer "
            "door welke deur ging, om het datacenter en de apparatuur van klanten te beveiligen",
            "people a customer authorises (its engineers, its contractors)" if en else
            "mensen die een klant aanwijst (zijn engineers, zijn opdrachtnemers)",
            _recipients(settings, facts, lang, customer=True, api=True)),
        Activity(
            "Fingerprint identification" if en else "Identificatie met vingerafdruk",
            "fingerprint template (biometric data, GDPR art. 9; encrypted), consent records "
            "(when, text version, witness, withdrawal)" if en else
            "vingerafdruktemplate (biometrisch gegeven, AVG art. 9; versleuteld), "
            "toestemmingen (wanneer, tekstversie, getuige, intrekking)",
            fingerprint_end, controller, _fingerprint_ground(facts, lang),
            "opening the door for an enrolled finger, without a key or a PIN" if en else
            "de deur openen voor een ingeschreven vinger, zonder sleutel of pincode",
            "customers' people who chose a finger, of customers that recorded a lawful basis"
            if en else "mensen van klanten die voor een vinger kozen, bij klanten die een "
            "grondslag vastlegden",
            "no one: templates are never shown, exported or sent anywhere; each door's sensor "
            "holds the templates of the people it lets in, to match them" if en else
            "niemand: templates worden nooit getoond, geëxporteerd of verstuurd; de lezer van "
            "elke deur bevat de templates van wie hij binnenlaat, om te vergelijken"),
        Activity(
            "The facility's door log" if en else "Deurlogboek van de aanbieder",
            "unknown fingers, tamper, faults (time, door, result); remote unlocks with the "
            "reason staff typed (it may describe a visitor) and the staff member's user name; "
            "events of erased or purged people, anonymised" if en else
            "onbekende vingers, sabotage, storingen (tijdstip, deur, resultaat); deuren op "
            "afstand geopend met de reden die medewerkers typten (die een bezoeker kan "
            "beschrijven) en hun gebruikersnaam; gebeurtenissen van verwijderde personen, "
            "geanonimiseerd",
            period_text(retention.unknown_finger_events, lang), controller,
            security + ("security of the datacenter" if en else "beveiliging datacenter"),
            "noticing attempts to get in, tampering and faults; accounting for every door "
            "opened by staff" if en else
            "pogingen om binnen te komen, sabotage en storingen opmerken; verantwoording van "
            "elke deur die medewerkers openden",
            (f"visitors let in by staff; {staff}" if en else
             f"bezoekers die medewerkers binnenlieten; {staff}"),
            _recipients(settings, facts, lang, customer=False, api=True)),
        Activity(
            "Staff accounts" if en else "Accounts van medewerkers",
            "user name, role, password (Argon2id hash), second factor (encrypted), last "
            "sign-in" if en else
            "gebruikersnaam, rol, wachtwoord (Argon2id-hash), tweede factor (versleuteld), "
            "laatste aanmelding",
            "while the staff member works there; accessd disables accounts but never deletes "
            "them (the audit log refers to them): delete a former staff member's account from "
            "the database by hand once the audit log no longer holds records of theirs" if en
            else "zolang de medewerker er werkt; accessd schakelt accounts uit maar verwijdert "
            "ze nooit (het auditlog verwijst ernaar): verwijder het account van een oud-"
            "medewerker met de hand uit de database zodra het auditlog geen regels van hem meer "
            "bevat",
            controller, security + ("securing access to the data" if en else
                                    "beveiliging van de toegang tot de gegevens"),
            "giving each staff member access according to their function" if en else
            "elke medewerker toegang geven naar zijn functie",
            staff, "admins" if en else "beheerders"),
        Activity(
            "Staff audit log" if en else "Auditlog medewerkers",
            "staff user name or API client, action, target (by id), time, source IP address, "
            "outcome" if en else
            "gebruikersnaam medewerker of API-client, handeling, doel (als id), tijdstip, "
            "IP-adres, uitkomst",
            period_text(retention.staff_audit_log, lang), controller,
            security + ("detecting misuse" if en else "misbruik opsporen"),
            "accounting for every action on personal data, refused ones too" if en else
            "verantwoording van elke handeling met persoonsgegevens, ook geweigerde",
            staff, "admins and auditors" if en else "beheerders en auditors"),
        Activity(
            "Panel login history" if en else "Inloghistorie beheerpaneel",
            "user name as typed, source IP address, time, outcome" if en else
            "ingetypte gebruikersnaam, IP-adres, tijdstip, uitkomst",
            period_text(retention.login_history, lang), controller,
            security + ("securing access" if en else "beveiliging van de toegang"),
            "locking out repeated failed sign-ins; detecting attacks" if en else
            "herhaalde mislukte aanmeldingen blokkeren; aanvallen opmerken",
            (f"{staff}; anyone who tries to sign in" if en else
             f"{staff}; iedereen die probeert in te loggen"),
            "admins and auditors" if en else "beheerders en auditors"),
        Activity(
            "Data-subject requests" if en else "Verzoeken van betrokkenen",
            "requester's name and contact details, kind of request, dates, outcome, the staff "
            "member who handled it" if en else
            "naam en contactgegevens verzoeker, soort verzoek, data, uitkomst, behandelende "
            "medewerker",
            (f"{period_text(requests, lang)} after closing; never closed: "
             f"{period_text(open_requests, lang)} after receipt (staff are reminded first)"
             if en else
             f"{period_text(requests, lang)} na afsluiting; nooit afgesloten: "
             f"{period_text(open_requests, lang)} na ontvangst (medewerkers krijgen eerst een "
             "herinnering)"),
            controller,
            "legal obligation (GDPR art. 6(1)(c) with art. 12 and art. 5(2))" if en else
            "wettelijke verplichting (AVG art. 6 lid 1 onder c met art. 12 en art. 5 lid 2)",
            "answering requests in time, and proving they were answered" if en else
            "verzoeken op tijd beantwoorden, en kunnen aantonen dat ze beantwoord zijn",
            "people who exercise a right, or someone on their behalf" if en else
            "mensen die een recht uitoefenen, of iemand namens hen",
            _recipients(settings, facts, lang, customer=False, api=False)),
        Activity(
            "Backups" if en else "Back-ups",
            backup_contents(settings).text(lang),
            (f"at most {months} months" if en else f"hoogstens {months} maanden"),
            controller,
            security + ("restoring the service after a failure (art. 32(1)(c))" if en else
                        "de dienst na een storing kunnen herstellen (art. 32 lid 1 onder c)"),
            "restoring the database after a failure" if en else
            "de database na een storing herstellen",
            "everyone above" if en else "iedereen hierboven",
            "admins who restore" if en else "beheerders die herstellen"),
        Activity(
            "Purge records and erasure ledger" if en else
            "Verwijderverslagen en verwijderlogboek",
            "keyed digests, counts and dates: no personal data" if en else
            "sleutelafhankelijke hashwaarden, aantallen en data: geen persoonsgegevens",
            "kept, so that a restore re-applies every deletion" if en else
            "bewaard, zodat een herstel elke verwijdering opnieuw toepast",
            controller,
            "legal obligation (GDPR art. 5(2), art. 17)" if en else
            "wettelijke verplichting (AVG art. 5 lid 2, art. 17)",
            "proving purges and erasures; re-applying them after a restore" if en else
            "verwijderingen aantonen; ze na een herstel opnieuw toepassen",
            "none (no personal data)" if en else "geen (geen persoonsgegevens)",
            "the customer (signed purge certificate)" if en else
            "de klant (ondertekend verwijderingscertificaat)"),
    ]


def _fingerprint_ground(facts: InstallationFacts, lang: Lang) -> str:
    en = lang == "en"
    kinds = {customer.basis for customer in facts.customers}
    parts = []
    if LawfulBasis.CONSENT in kinds:
        parts.append(
            "explicit consent of each person (GDPR art. 6(1)(a) and art. 9(2)(a)), recorded "
            "with its text version and a witness; withdrawing it deletes the template at once; "
            "refusing costs nothing, a way in without a fingerprint always exists" if en else
            "uitdrukkelijke toestemming van iedere persoon (AVG art. 6 lid 1 onder a en art. 9 "
            "lid 2 onder a), vastgelegd met tekstversie en getuige; intrekken wist de template "
            "direct; weigeren kost niets, een toegang zonder vingerafdruk bestaat altijd")
    if LawfulBasis.NECESSITY in kinds:
        parts.append(
            "necessary for authentication or security (UAVG art. 29, GDPR art. 9(2)(g)), as "
            "documented in each customer's assessment; with legitimate interest (art. 6(1)(f))"
            if en else
            "noodzakelijk voor authenticatie of beveiliging (UAVG art. 29, AVG art. 9 lid 2 "
            "onder g), zoals vastgelegd in de beoordeling van de klant; met gerechtvaardigd "
            "belang (art. 6 lid 1 onder f)")
    if None in kinds or not facts.customers:
        parts.append(
            "customers without a recorded ground: no fingerprint is enrolled (enrolment is "
            "refused)" if en else
            "klanten zonder vastgelegde grondslag: geen vingerafdruk ingeschreven (inschrijven "
            "wordt geweigerd)")
    return ("per customer, as recorded (see below): " if en else
            "per klant, zoals vastgelegd (zie hieronder): ") + "; ".join(parts)


def _bases(facts: InstallationFacts, lang: Lang) -> list[tuple[str, str, str]]:
    en = lang == "en"
    words = {
        LawfulBasis.CONSENT: ("explicit consent of each person (GDPR art. 9(2)(a))" if en else
                              "uitdrukkelijke toestemming van iedere persoon (AVG art. 9 lid 2 "
                              "onder a)"),
        LawfulBasis.NECESSITY: ("necessity for authentication or security (UAVG art. 29)" if en
                                else "noodzaak voor authenticatie of beveiliging (UAVG art. 29)"),
        None: ("none recorded: no fingerprint is enrolled" if en else
               "geen vastgelegd: er wordt geen vingerafdruk ingeschreven"),
    }
    return [(c.name, words[c.basis], c.reference or "") for c in facts.customers]


def _time_limits(settings: Settings, lang: Lang) -> str:
    months = settings.backup.max_age_months
    if lang == "en":
        return ("As in the Retention column above, enforced by the door daemon at start and "
                f"every {settings.purge.check_interval_minutes} minutes: purges at contract "
                "end (also when the installation was switched off at the due time), "
                f"retention of everything else, and backups once they are {months} months old.")
    return ("Zoals in de kolom Bewaartermijnen hierboven, uitgevoerd door de deurdaemon bij de "
            f"start en elke {settings.purge.check_interval_minutes} minuten: verwijdering bij "
            "einde contract (ook als de installatie op dat moment uit stond), de bewaartermijnen "
            f"van al het andere, en back-ups zodra ze {months} maanden oud zijn.")


Format = Literal["md", "csv", "html"]


def render_register(settings: Settings, fmt: Format, langs: Sequence[Lang],
                    facts: InstallationFacts | None = None) -> str:
    """The register in ``fmt`` for each of ``langs`` (English, then Dutch for both)."""
    registers = [build_register(settings, lang, facts) for lang in langs]
    if fmt == "md":
        return "\n".join(render_markdown(register) for register in registers)
    if fmt == "csv":
        return render_csv(registers)
    return render_html(registers)


def _md_cell(text: str) -> str:
    # A pipe would end the cell, a newline the row; backslashes and HTML stay literal.
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace("\r", " ").replace("\n", " "))


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return (["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows] + [""])


def render_markdown(register: Register) -> str:
    """The register as a Markdown document under a heading in its language."""
    lang, h = register.lang, register.headings
    lines = [f"## {register.title}", "", f"### {h['controller']}", ""]
    lines += [f"- **{_md_cell(line.label)}**: {_md_cell(line.value)}"
              for line in register.controller] + [""]
    lines += [f"### {h['activities']}", ""]
    lines += _md_table(COLUMNS[lang], [a.cells() for a in register.activities])
    lines += [f"### {h['details']}", ""]
    lines += _md_table(DETAIL_COLUMNS[lang], [a.details() for a in register.activities])
    lines += [f"### {h['bases']}", ""]
    lines += (_md_table(BASIS_COLUMNS[lang], register.bases) if register.bases else
              [_md_cell(_no_customers(lang)), ""])
    lines += [f"### {h['transfers']}", "", _md_cell(register.transfers), ""]
    lines += [f"### {h['time_limits']}", "", _md_cell(register.time_limits), ""]
    lines += [f"### {h['measures']}", ""]
    lines += [f"- {_md_cell(measure)}" for measure in register.measures]
    return "\n".join(lines) + "\n"


def _no_customers(lang: Lang) -> str:
    return "No customers yet." if lang == "en" else "Nog geen klanten."


CSV_EXTRA: dict[Lang, tuple[str, str, str, str, str]] = {
    "en": ("Purpose", "Data subjects", "Recipients", "Transfers to third countries",
           "Security measures"),
    "nl": ("Doel", "Betrokkenen", "Ontvangers", "Doorgifte naar derde landen",
           "Beveiligingsmaatregelen"),
}


def render_csv(registers: Sequence[Register]) -> str:
    """One CSV row per activity with every art. 30(1) item (the controller's contact details
    in its column, the transfers and security measures repeated on each row); with both
    languages, a first column names the language of each row."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")  # escapes every cell
    both = len(registers) > 1
    first = registers[0].lang
    if both:
        writer.writerow(["Language / Taal", *(f"{e} / {n}" for e, n in zip(
            COLUMNS["en"] + CSV_EXTRA["en"], COLUMNS["nl"] + CSV_EXTRA["nl"], strict=True))])
    else:
        writer.writerow([*COLUMNS[first], *CSV_EXTRA[first]])
    for register in registers:
        contact = "; ".join(f"{line.label}: {line.value}" for line in register.controller)
        measures = " / ".join(register.measures)
        for activity in register.activities:
            cells = [*activity.cells(), activity.purpose, activity.subjects,
                     activity.recipients, register.transfers, measures]
            cells[3] = f"{cells[3]} ({contact})"
            writer.writerow([register.lang, *cells] if both else cells)
    return out.getvalue()


def render_html(registers: Sequence[Register]) -> str:
    """A small standalone HTML document, one section per language, every cell escaped."""
    first = registers[0]
    esc = html.escape
    parts = ["<!DOCTYPE html>", f'<html lang="{first.lang}">', "<head>", '<meta charset="utf-8">',
             f"<title>{esc(first.title)}</title>",
             "<style>table{border-collapse:collapse}th,td{border:1px solid #999;"
             "padding:4px;text-align:left;vertical-align:top}</style>", "</head>", "<body>"]
    for register in registers:
        lang, h = register.lang, register.headings
        parts += [f'<section lang="{lang}">', f"<h2>{esc(register.title)}</h2>",
                  f"<h3>{esc(h['controller'])}</h3>", "<dl>"]
        parts += [f"<dt>{esc(line.label)}</dt><dd>{esc(line.value)}</dd>"
                  for line in register.controller]
        parts += ["</dl>", f"<h3>{esc(h['activities'])}</h3>"]
        parts += _html_table(COLUMNS[lang], [a.cells() for a in register.activities])
        parts += [f"<h3>{esc(h['details'])}</h3>"]
        parts += _html_table(DETAIL_COLUMNS[lang], [a.details() for a in register.activities])
        parts += [f"<h3>{esc(h['bases'])}</h3>"]
        parts += (_html_table(BASIS_COLUMNS[lang], register.bases) if register.bases else
                  [f"<p>{esc(_no_customers(lang))}</p>"])
        parts += [f"<h3>{esc(h['transfers'])}</h3>", f"<p>{esc(register.transfers)}</p>",
                  f"<h3>{esc(h['time_limits'])}</h3>", f"<p>{esc(register.time_limits)}</p>",
                  f"<h3>{esc(h['measures'])}</h3>", "<ul>"]
        parts += [f"<li>{esc(measure)}</li>" for measure in register.measures]
        parts += ["</ul>", "</section>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return (["<table>", "<thead><tr>" + "".join(f'<th scope="col">{html.escape(c)}</th>'
                                                 for c in headers) + "</tr></thead>", "<tbody>"]
            + ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
               for row in rows]
            + ["</tbody>", "</table>"])
