"""What accessd states about itself, in English and Dutch: the security measures (GDPR art. 32),
what a backup holds, what a restore does, where data goes. The register of processing
activities (``processing_register``) and the DPIA facts (``dpia``) both take their statements
from here, so they cannot disagree; every figure comes from the setting or the constant the
code enforces, never typed twice.

Each claim has a key, and ``tests/privacy/test_claims.py`` holds one check per key against the
running code (a claim without a check fails that test). Change the code and a check fails;
change a claim and its check must change with it.

**Backups.** ``backup_contents`` is the one statement of what a backup holds and for how long,
``restore_claim`` of what a restore does; the purge certificate's statement
(``accessd.privacy.certificate._STATEMENT``) and the backup hook's entry
(``accessd.backup.housekeeping.backup_destruction``) say the same: change them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from accessd.config import RetentionPeriod, Settings
from accessd.staff.policy import (
    ABSOLUTE_TIMEOUT,
    ACCOUNT_THRESHOLD,
    ACCOUNT_WINDOW,
    ADDRESS_THRESHOLD,
    ADDRESS_WINDOW,
    IDLE_TIMEOUT,
    LOCKOUT_BASE,
    LOCKOUT_MAX,
    LOCKOUT_THRESHOLD,
    PASSWORD_MIN_LENGTH,
    TOTP_DIGITS,
)

Lang = Literal["en", "nl"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One statement about the running code, in both languages."""

    key: str
    en: str
    nl: str

    def text(self, lang: Lang) -> str:
        """The statement in ``lang``."""
        return self.en if lang == "en" else self.nl


_UNITS: dict[Lang, dict[str, tuple[str, str]]] = {
    "en": {"day": ("day", "days"), "week": ("week", "weeks"), "month": ("month", "months"),
           "year": ("year", "years")},
    "nl": {"day": ("dag", "dagen"), "week": ("week", "weken"), "month": ("maand", "maanden"),
           "year": ("jaar", "jaar")},
}
UNTIL_END: dict[Lang, str] = {"en": "until the end of the service",
                              "nl": "tot einde dienstverlening"}


def period_text(period: RetentionPeriod, lang: Lang) -> str:
    """A retention period in the statements' words: "6 months", "6 maanden", "tot einde …"."""
    if period.until_contract_end:
        return UNTIL_END[lang]
    singular, plural = _UNITS[lang][period.unit]
    return f"{period.amount} {singular if period.amount == 1 else plural}"


def _minutes(seconds: float) -> int:
    return round(seconds / 60)


def _hours(seconds: float) -> int:
    return round(seconds / 3600)


def backup_contents(settings: Settings) -> Claim:
    """What a backup holds, who can read it, and how long it exists (see the module's note)."""
    months = settings.backup.max_age_months
    return Claim(
        "backups_hold",
        "A backup is cut along the lines a purge and an erasure cut: the installation's part "
        "(doors, staff accounts, the staff audit log, the facility's own door log with its "
        "links to people removed, purge records, the erasure ledger) under a key wrapped by "
        "the master key; each customer's part (its name, contract, data key, and its access "
        "history with the links to its people removed) under that customer's backup key; and "
        "each person's own data (name, e-mail address, notes, PIN hash, fingers and "
        "templates, consents, requests naming them, which events are theirs) under that "
        "person's backup key. Those keys are kept in one file beside the backups, encrypted "
        "under the master key, replaced whole and never versioned: a purge destroys its "
        "customer's key and its people's, an erasure the person's, and from that moment every "
        "backup ever taken holds them only as ciphertext nobody can decrypt. Backups are "
        f"deleted once they are {months} months old, at the door daemon's next hourly "
        "reconciliation (or by `accessd backup prune`).",
        "Een back-up is gesneden langs de lijnen van een verwijdering: het deel van de "
        "installatie (deuren, medewerkersaccounts, het auditlog, het eigen deurlogboek van de "
        "faciliteit zonder koppeling aan personen, verwijderingsverslagen, het "
        "verwijderlogboek) onder een sleutel die met de hoofdsleutel is versleuteld; het deel "
        "van elke klant (naam, contract, gegevenssleutel en toegangshistorie zonder koppeling "
        "aan personen) onder de back-upsleutel van die klant; en de eigen gegevens van elke "
        "persoon (naam, e-mailadres, notities, PIN-hash, vingers en templates, toestemmingen, "
        "verzoeken, welke gebeurtenissen van hem zijn) onder de back-upsleutel van die "
        "persoon. Die sleutels staan in één bestand naast de back-ups, versleuteld met de "
        "hoofdsleutel, telkens geheel vervangen en nooit in versies bewaard: een verwijdering "
        "van een klant vernietigt de sleutel van de klant en van zijn personen, een "
        "verwijdering van een persoon die van de persoon, en vanaf dat moment bevat elke "
        "back-up ooit gemaakt hen alleen als onleesbare versleutelde gegevens. Back-ups worden "
        f"verwijderd zodra ze {months} maanden oud zijn, bij de volgende uurlijkse controle van "
        "de deurdaemon (of door `accessd backup prune`).")


def restore_claim() -> Claim:
    """What a restore does with what was destroyed after the backup was made."""
    return Claim(
        "restore_reapplies",
        "A restore brings back only customers and people whose backup keys still exist, "
        "checks the signed erasure ledger, and re-applies every purge, erasure and consent "
        "withdrawal it, the backup key file's copy, the backup's own ledger and the signed "
        "purge certificates record, before the restored copy replaces the database: nothing "
        "destroyed comes back, also when the live database is lost too (`restore "
        "--live-database-lost`). Without the backup key file, or with one of another "
        "installation or older than the backup, a restore refuses.",
        "Een herstel brengt alleen klanten en personen terug van wie de back-upsleutels nog "
        "bestaan, controleert het ondertekende verwijderlogboek en past elke verwijdering en "
        "ingetrokken toestemming uit dat logboek, de kopie in het sleutelbestand, het logboek "
        "van de back-up zelf en de ondertekende verwijderingscertificaten opnieuw toe voordat "
        "de herstelde kopie de database vervangt: niets wat vernietigd is komt terug, ook als "
        "de lopende database verloren is (`restore --live-database-lost`). Zonder het "
        "sleutelbestand van de back-ups, of met een van een andere installatie of ouder dan de "
        "back-up, weigert een herstel.")


def database_location(settings: Settings) -> Claim:
    """Where the database lives: the installation itself, or a PostgreSQL server."""
    url = settings.database.url
    if not url or url.startswith("sqlite"):  # empty: the SQLite file in data_dir
        return Claim(
            "database_local",
            "The database is a SQLite file on the installation itself.",
            "De database is een SQLite-bestand op de installatie zelf.")
    host = urlsplit(url.replace("postgresql+psycopg", "postgresql", 1)).hostname or "local"
    return Claim(
        "database_server",
        f"The database is PostgreSQL on {host}: whoever runs that server holds all of it "
        "(a processor, unless it is the provider itself).",
        f"De database is PostgreSQL op {host}: wie die server beheert, heeft alles in "
        "handen (een verwerker, tenzij dat de aanbieder zelf is).")


def transfers(settings: Settings) -> Claim:
    """Transfers to third countries (art. 30(1)(e)): none unless configured."""
    configured = settings.controller.transfers
    if configured:
        return Claim("transfers_configured", configured, configured)
    return Claim(
        "no_transfers",
        "None. accessd sends no personal data outside the installation: no cloud service, no "
        "telemetry, no external assets in the panel (every file it serves is its own).",
        "Geen. accessd stuurt geen persoonsgegevens buiten de installatie: geen clouddienst, "
        "geen telemetrie, geen externe bestanden in het beheerpaneel (alles wat het serveert "
        "is van zichzelf).")


def security_measures(settings: Settings) -> list[Claim]:
    """The technical and organisational measures (GDPR art. 32), as the code carries them out."""
    access = settings.access
    retention = settings.retention
    return [
        Claim(
            "templates_encrypted",
            "Fingerprint templates are stored only encrypted (AES-256-GCM) under a data key of "
            "their customer; each ciphertext is bound to its customer, person and finger, so a "
            "ciphertext copied onto another row does not decrypt. Plaintext templates exist "
            "only in memory and in the door sensors' flash, which they need to match.",
            "Vingerafdruktemplates worden alleen versleuteld opgeslagen (AES-256-GCM) onder een "
            "gegevenssleutel van hun klant; elke versleutelde template is gebonden aan klant, "
            "persoon en vinger, zodat een naar een andere rij gekopieerde template niet te "
            "ontsleutelen is. Onversleuteld bestaan templates alleen in het geheugen en in het "
            "geheugen van de vingerafdruklezers, die ze nodig hebben om te vergelijken."),
        Claim(
            "data_keys_wrapped",
            "Data keys are stored only wrapped (AES-256-GCM) by a master key that is kept "
            "outside the database, in the keyring.",
            "Gegevenssleutels worden alleen versleuteld opgeslagen (AES-256-GCM) met een "
            "hoofdsleutel die buiten de database staat, in de sleutelring."),
        Claim(
            "keyring_private",
            "The keyring file must have mode 0600 (readable by the service's user only): "
            "accessd refuses to use a looser one. It can also be a systemd credential.",
            "Het sleutelringbestand moet modus 0600 hebben (alleen leesbaar voor de "
            "servicegebruiker): accessd weigert een ruimer bestand. Het kan ook een systemd-"
            "credential zijn."),
        Claim(
            "crypto_shredding",
            "A purge destroys the customer's data key last, after its templates, history, "
            "consents and people: any copy of its templates left anywhere (a backup, old "
            "blocks of the storage card) can no longer be decrypted.",
            "Bij verwijdering van een klant wordt de gegevenssleutel als laatste vernietigd, "
            "na templates, historie, toestemmingen en personen: elke kopie van de templates "
            "die ergens achterblijft (een back-up, oude blokken van de opslagkaart) is niet "
            "meer te ontsleutelen."),
        Claim(
            "history_chained",
            "The access history is hash-chained (SHA-256 over each event and its "
            "predecessor's digest): `accessd verify-log` finds any altered, removed or "
            "reordered event.",
            "De toegangshistorie is met hashes aan elkaar geketend (SHA-256 over elke "
            "gebeurtenis en de hash van de vorige): `accessd verify-log` vindt elke gewijzigde, "
            "verwijderde of verplaatste gebeurtenis."),
        Claim(
            "files_private",
            "Files holding personal data are created readable by the service's user only "
            "(mode 0600): the SQLite database, backups, exports and purge certificates (in a "
            "folder of mode 0700).",
            "Bestanden met persoonsgegevens zijn alleen leesbaar voor de servicegebruiker "
            "(modus 0600): de SQLite-database, back-ups, exports en verwijderingscertificaten "
            "(in een map met modus 0700)."),
        Claim(
            "secure_delete",
            "SQLite overwrites deleted rows (secure_delete) and, after a purge or an erasure, "
            "empties its write-ahead log, so deleted data does not linger in the files.",
            "SQLite overschrijft verwijderde rijen (secure_delete) en leegt na een verwijdering "
            "het write-ahead-log, zodat verwijderde gegevens niet in de bestanden achterblijven."),
        Claim(
            "backups_encrypted",
            "Backups are encrypted and authenticated (AES-256-GCM in chunks, a key per file "
            "wrapped by the master key), read back before they get their name, mode 0600.",
            "Back-ups zijn versleuteld en beveiligd tegen wijziging (AES-256-GCM in blokken, "
            "een sleutel per bestand, versleuteld met de hoofdsleutel), worden na het schrijven "
            "teruggelezen en hebben modus 0600."),
        backup_contents(settings),
        restore_claim(),
        Claim(
            "staff_sign_in",
            "Staff sign in to the panel with a personal account: a password of at least "
            f"{PASSWORD_MIN_LENGTH} characters (stored as an Argon2id hash) and a "
            f"{TOTP_DIGITS}-digit TOTP code, each code accepted once; roles per function "
            "(admin, operator, auditor). There is no default account.",
            "Medewerkers loggen in op het beheerpaneel met een persoonlijk account: een "
            f"wachtwoord van minstens {PASSWORD_MIN_LENGTH} tekens (opgeslagen als Argon2id-"
            f"hash) en een TOTP-code van {TOTP_DIGITS} cijfers, elke code eenmalig geldig; "
            "rollen per functie (beheerder, operator, auditor). Er is geen standaardaccount."),
        Claim(
            "lockout",
            f"Sign-in is throttled in the database, so a restart does not reset it: "
            f"{LOCKOUT_THRESHOLD} failed sign-ins of a user name from one address lock that "
            f"name from that address only, {_minutes(LOCKOUT_BASE.total_seconds())} minutes at "
            f"first and twice as long after each further failure (at most "
            f"{_hours(LOCKOUT_MAX.total_seconds())} hours); {ACCOUNT_THRESHOLD} failures of a "
            f"name from anywhere within {_minutes(ACCOUNT_WINDOW.total_seconds())} minutes "
            f"pause it for everyone, at most {_minutes(ACCOUNT_WINDOW.total_seconds())} minutes "
            f"after the latest; {ADDRESS_THRESHOLD} failed attempts from one address within "
            f"{_minutes(ADDRESS_WINDOW.total_seconds())} minutes pause that address. An admin "
            "ends a name's pauses (`accessd user unlock`, the staff page). The message never "
            "says what was wrong. Every attempt is kept with its source address.",
            f"Aanmelden wordt in de database afgeremd, zodat een herstart het niet wist: na "
            f"{LOCKOUT_THRESHOLD} mislukte aanmeldingen van een gebruikersnaam vanaf één adres "
            f"is die naam vanaf dat adres geblokkeerd, eerst "
            f"{_minutes(LOCKOUT_BASE.total_seconds())} minuten en na elke volgende mislukking "
            f"twee keer zo lang (hoogstens {_hours(LOCKOUT_MAX.total_seconds())} uur); na "
            f"{ACCOUNT_THRESHOLD} mislukkingen van een naam vanaf waar dan ook binnen "
            f"{_minutes(ACCOUNT_WINDOW.total_seconds())} minuten is die naam voor iedereen "
            f"gepauzeerd, hoogstens {_minutes(ACCOUNT_WINDOW.total_seconds())} minuten na de "
            f"laatste; na {ADDRESS_THRESHOLD} mislukte pogingen vanaf één adres binnen "
            f"{_minutes(ADDRESS_WINDOW.total_seconds())} minuten is dat adres gepauzeerd. Een "
            "beheerder heft de pauzes van een naam op (`accessd user unlock`, de pagina "
            "Medewerkers). De melding zegt nooit wat er fout was. Elke poging wordt bewaard "
            "met het IP-adres."),
        Claim(
            "sessions",
            "Panel sessions live on the server and end after "
            f"{_minutes(IDLE_TIMEOUT.total_seconds())} minutes without activity, after "
            f"{_hours(ABSOLUTE_TIMEOUT.total_seconds())} hours in all, and at sign-out, "
            "password change or disabling of the account.",
            "Sessies van het beheerpaneel staan op de server en eindigen na "
            f"{_minutes(IDLE_TIMEOUT.total_seconds())} minuten zonder activiteit, na "
            f"{_hours(ABSOLUTE_TIMEOUT.total_seconds())} uur in totaal, en bij afmelden, "
            "wachtwoordwijziging of uitschakelen van het account."),
        Claim(
            "web_protections",
            "The panel's session cookie is __Host-, Secure, HttpOnly and SameSite=Strict (so "
            "it needs HTTPS: the panel runs behind a TLS proxy); every form carries a CSRF "
            "token; every response forbids inline script and framing (Content-Security-Policy).",
            "Het sessiecookie van het beheerpaneel is __Host-, Secure, HttpOnly en "
            "SameSite=Strict (het vraagt dus HTTPS: het paneel draait achter een TLS-proxy); "
            "elk formulier heeft een CSRF-token; elk antwoord verbiedt inline scripts en "
            "framing (Content-Security-Policy)."),
        Claim(
            "audit_log",
            "Every staff action on personal data, in the panel, through the API and on the "
            "command line, is written to the audit log with who, what, when, from where and "
            "how it ended (refused ones too); the log is kept "
            f"{period_text(retention.staff_audit_log, 'en')}.",
            "Elke handeling van medewerkers met persoonsgegevens, in het paneel, via de API en "
            "op de opdrachtregel, komt in het auditlog met wie, wat, wanneer, vanaf waar en met "
            "welke uitkomst (ook geweigerde); het log wordt "
            f"{period_text(retention.staff_audit_log, 'nl')} bewaard."),
        Claim(
            "pins_hashed",
            "PINs are stored only as salted Argon2id hashes; after "
            f"{access.pin_max_failures} wrong PINs in a row that person's PIN is locked for "
            f"{access.pin_lockout_seconds:g} seconds.",
            "Pincodes worden alleen als gezouten Argon2id-hash opgeslagen; na "
            f"{access.pin_max_failures} foute pincodes op rij is de pincode van die persoon "
            f"{access.pin_lockout_seconds:g} seconden geblokkeerd."),
        Claim(
            "sensor_password",
            "Each fingerprint sensor is given a random password from the keyring instead of "
            "its factory default, so a stolen sensor does not hand over its templates without "
            "it; opening the reader's housing (tamper) wipes the sensor.",
            "Elke vingerafdruklezer krijgt een willekeurig wachtwoord uit de sleutelring in "
            "plaats van het fabriekswachtwoord, zodat een gestolen lezer zijn templates niet "
            "zonder dat wachtwoord afgeeft; openen van de behuizing (sabotage) wist de lezer."),
        Claim(
            "purge_certificates",
            "Each purge ends with a certificate signed with the installation's Ed25519 key, "
            "which anyone with the public key can check (`accessd verify-certificate`).",
            "Elke verwijdering van een klant eindigt met een certificaat, ondertekend met de "
            "Ed25519-sleutel van de installatie, dat iedereen met de publieke sleutel kan "
            "controleren (`accessd verify-certificate`)."),
        Claim(
            "minimisation",
            "No person is added and no finger enrolled for a customer whose contract is over; "
            "no finger is enrolled without a recorded lawful basis, nor, under consent, "
            "without the person's witnessed consent; a way in without a fingerprint always "
            "exists.",
            "Voor een klant van wie het contract voorbij is, wordt niemand toegevoegd en geen "
            "vinger ingeschreven; geen vinger wordt ingeschreven zonder vastgelegde grondslag, "
            "en bij toestemming niet zonder de toestemming van de persoon, met getuige; een "
            "toegang zonder vingerafdruk bestaat altijd."),
    ]


