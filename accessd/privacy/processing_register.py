"""The register of processing activities (GDPR art. 30), generated from the running config.

The columns are those of the Dutch providers' privacy statements, in English and Dutch:
service (Type dienst), data (Type gegevens), retention (Bewaartermijnen), controller
(Verantwoordelijke) and legal ground (Grond voor verwerking). Retention periods and the backup
cap come from the settings; the lawful bases for fingerprints from the customers actually
recorded, so the register says what this installation does, not what it could do.
Rendered as Markdown, CSV or HTML, every cell escaped for its format.
"""

from __future__ import annotations

import html
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.config import RetentionPeriod, Settings
from accessd.csv_cells import csv_writer
from accessd.models import Customer, LawfulBasis

Lang = Literal["en", "nl"]
LANGS: tuple[Lang, ...] = ("en", "nl")

COLUMNS: dict[Lang, tuple[str, str, str, str, str]] = {
    "en": ("Service", "Data", "Retention", "Controller", "Legal ground"),
    "nl": ("Type dienst", "Type gegevens", "Bewaartermijnen", "Verantwoordelijke",
           "Grond voor verwerking"),
}
TITLE: dict[Lang, str] = {"en": "Register of processing activities",
                          "nl": "Register van verwerkingsactiviteiten"}


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One processing activity, in one language."""

    service: str
    data: str
    retention: str
    controller: str
    legal_ground: str

    def cells(self) -> tuple[str, str, str, str, str]:
        return (self.service, self.data, self.retention, self.controller, self.legal_ground)


_UNITS: dict[Lang, dict[str, tuple[str, str]]] = {
    "en": {"day": ("day", "days"), "week": ("week", "weeks"), "month": ("month", "months"),
           "year": ("year", "years")},
    "nl": {"day": ("dag", "dagen"), "week": ("week", "weken"), "month": ("maand", "maanden"),
           "year": ("jaar", "jaar")},
}
_UNTIL_END = {"en": "until the end of the service", "nl": "tot einde dienstverlening"}


def period_text(period: RetentionPeriod, lang: Lang) -> str:
    """A retention period in the statements' words: "6 months", "6 maanden", "tot einde …"."""
    if period.until_contract_end:
        return _UNTIL_END[lang]
    singular, plural = _UNITS[lang][period.unit]
    return f"{period.amount} {singular if period.amount == 1 else plural}"


def lawful_bases_in_use(session: Session) -> set[LawfulBasis]:
    """The lawful bases for biometrics recorded for at least one customer."""
    return {basis for basis in session.scalars(select(Customer.lawful_basis).distinct())
            if basis is not None}


def build_register(settings: Settings, lang: Lang,
                   lawful_bases: Collection[LawfulBasis] | None = None) -> list[RegisterRow]:
    """The register's rows in ``lang``. ``lawful_bases``: those recorded for customers
    (``lawful_bases_in_use``); ``None`` lists both possibilities."""
    en = lang == "en"
    provider = "Provider" if en else "Aanbieder"
    contract = ("performance of the contract (GDPR art. 6(1)(b))" if en else
                "uitvoering overeenkomst (AVG art. 6 lid 1 onder b)")
    grace = settings.purge.grace_days
    until_end = (
        f"{_UNTIL_END[lang]}, plus the cooling-off period agreed with the customer (default "
        f"{grace} days, at most 90); then destroyed irreversibly, in backups too" if en else
        f"{_UNTIL_END[lang]}, plus de met de klant afgesproken bedenktijd (standaard {grace} "
        "dagen, hoogstens 90); daarna onomkeerbaar vernietigd, ook in back-ups")
    history = settings.retention.access_history
    access_retention = until_end if history.until_contract_end else (
        f"access history: {period_text(history, lang)}; name and fingerprint: {until_end}"
        if en else
        f"toegangshistorie: {period_text(history, lang)}; naam en vingerafdruk: {until_end}")
    legitimate = "legitimate interest" if en else "gerechtvaardigd belang"
    requests = settings.retention.data_subject_requests
    months = settings.backup.max_age_months
    return [
        RegisterRow(
            "Colocation access" if en else "Toegang colocatie",
            "name, e-mail address, access history, fingerprint template (encrypted)" if en else
            "naam, e-mailadres, toegangshistorie, vingerafdruktemplate (versleuteld)",
            access_retention, provider,
            f"{contract}; {_fingerprint_ground(lawful_bases, en)}"),
        RegisterRow(
            "PIN access" if en else "Toegang met pincode",
            "name, keypad code, PIN (stored as an Argon2id hash)" if en else
            "naam, toetsenbordcode, pincode (opgeslagen als Argon2id-hash)",
            until_end, provider, contract),
        RegisterRow(
            "Door events without a person (unknown fingers, tamper, faults)" if en else
            "Deurgebeurtenissen zonder persoon (onbekende vingers, sabotage, storingen)",
            "time, door, result; no personal data" if en else
            "tijdstip, deur, resultaat; geen persoonsgegevens",
            period_text(settings.retention.unknown_finger_events, lang), provider,
            f"{legitimate} ({'security of the datacenter' if en else 'beveiliging datacenter'})"),
        RegisterRow(
            "Staff audit log" if en else "Auditlog medewerkers",
            "staff user name, action, time, source IP address, outcome" if en else
            "gebruikersnaam medewerker, handeling, tijdstip, IP-adres, uitkomst",
            period_text(settings.retention.staff_audit_log, lang), provider,
            f"{legitimate} ({'detecting misuse' if en else 'misbruik opsporen'})"),
        RegisterRow(
            "Panel login history" if en else "Inloghistorie beheerpaneel",
            "user name as typed, source IP address, time, outcome" if en else
            "ingetypte gebruikersnaam, IP-adres, tijdstip, uitkomst",
            period_text(settings.retention.login_history, lang), provider,
            f"{legitimate} ({'securing access' if en else 'beveiliging van de toegang'})"),
        RegisterRow(
            "Data-subject requests" if en else "Verzoeken van betrokkenen",
            "requester's name and contact details, kind of request, dates, outcome" if en else
            "naam en contactgegevens verzoeker, soort verzoek, data, uitkomst",
            f"{period_text(requests, lang)} {'after closing' if en else 'na afsluiting'}",
            provider,
            "legal obligation (GDPR art. 12 and 5(2))" if en else
            "wettelijke verplichting (AVG art. 12 en art. 5 lid 2)"),
        RegisterRow(
            "Backups" if en else "Back-ups",
            "all of the above, encrypted; fingerprints under a key per customer" if en else
            "al het bovenstaande, versleuteld; vingerafdrukken onder een sleutel per klant",
            (f"at most {months} months; a purged customer's fingerprints are unreadable in "
             "every backup (its key is destroyed)") if en else
            (f"hoogstens {months} maanden; vingerafdrukken van een verwijderde klant zijn in "
             "elke back-up onleesbaar (de sleutel is vernietigd)"),
            provider,
            f"{legitimate} ({'continuity of the service' if en else 'continuïteit dienst'})"),
    ]


def _fingerprint_ground(bases: Collection[LawfulBasis] | None, en: bool) -> str:
    consent = ("fingerprint: explicit consent of each person (GDPR art. 9(2)(a)) for customers "
               "that chose consent; entry without a fingerprint is always possible" if en else
               "vingerafdruk: uitdrukkelijke toestemming van iedere persoon (AVG art. 9 lid 2 "
               "onder a) bij klanten die daarvoor kozen; toegang zonder vingerafdruk blijft "
               "altijd mogelijk")
    necessity = ("fingerprint: necessary for authentication or security (UAVG art. 29) where "
                 "so documented for the customer" if en else
                 "vingerafdruk: noodzakelijk voor authenticatie of beveiliging (UAVG art. 29) "
                 "waar dat voor de klant is vastgelegd")
    parts = [text for basis, text in ((LawfulBasis.CONSENT, consent),
                                      (LawfulBasis.NECESSITY, necessity))
             if bases is None or basis in bases]
    if not parts:
        return ("fingerprint: no lawful basis recorded yet, so no fingerprints are enrolled"
                if en else "vingerafdruk: nog geen grondslag vastgelegd, dus geen "
                "vingerafdrukken ingeschreven")
    return "; ".join(parts)


Format = Literal["md", "csv", "html"]


def render_register(settings: Settings, fmt: Format, langs: Sequence[Lang],
                    lawful_bases: Collection[LawfulBasis] | None = None) -> str:
    """The register in ``fmt`` for each of ``langs`` (English, then Dutch for both)."""
    tables = {lang: build_register(settings, lang, lawful_bases) for lang in langs}
    if fmt == "md":
        return "\n".join(render_markdown(rows, lang) for lang, rows in tables.items())
    if fmt == "csv":
        return render_csv(tables)
    return render_html(tables)


def _md_cell(text: str) -> str:
    # A pipe would end the cell, a newline the row; backslashes and HTML stay literal.
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace("\r", " ").replace("\n", " "))


def render_markdown(rows: Sequence[RegisterRow], lang: Lang) -> str:
    """One Markdown table under a heading in ``lang``."""
    lines = [f"## {TITLE[lang]}", "",
             "| " + " | ".join(COLUMNS[lang]) + " |",
             "|" + "---|" * len(COLUMNS[lang])]
    lines += ["| " + " | ".join(_md_cell(c) for c in row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_csv(tables: dict[Lang, list[RegisterRow]]) -> str:
    """One CSV; with both languages, a first column names the language of each row."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")  # escapes every cell
    both = len(tables) > 1
    if both:
        writer.writerow(["Language / Taal", *(f"{e} / {n}" for e, n in
                                              zip(COLUMNS["en"], COLUMNS["nl"], strict=True))])
    else:
        writer.writerow(COLUMNS[next(iter(tables))])
    for lang, rows in tables.items():
        for row in rows:
            cells = row.cells()
            writer.writerow([lang, *cells] if both else cells)
    return out.getvalue()


def render_html(tables: dict[Lang, list[RegisterRow]]) -> str:
    """A small standalone HTML document, one table per language, every cell escaped."""
    first = next(iter(tables))
    parts = ["<!DOCTYPE html>", f'<html lang="{first}">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(TITLE[first])}</title>",
             "<style>table{border-collapse:collapse}th,td{border:1px solid #999;"
             "padding:4px;text-align:left;vertical-align:top}</style>", "</head>", "<body>"]
    for lang, rows in tables.items():
        parts += [f'<section lang="{lang}">', f"<h2>{html.escape(TITLE[lang])}</h2>", "<table>",
                  "<thead><tr>" + "".join(f'<th scope="col">{html.escape(c)}</th>'
                                          for c in COLUMNS[lang]) + "</tr></thead>", "<tbody>"]
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row.cells()) + "</tr>"
                  for row in rows]
        parts += ["</tbody>", "</table>", "</section>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
