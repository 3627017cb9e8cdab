"""The register of processing activities: every item of GDPR art. 30(1) in English and Dutch,
grounds that follow each customer's recorded basis, retention periods that are the
configuration's and the retention code's, and nothing guessed when the controller is not
configured. (Each security measure it states is checked against the code in test_claims.)"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.config import (
    ConfigError,
    ControllerSettings,
    RetentionPeriod,
    Settings,
    load_settings,
    update_config_file,
    write_default_config,
)
from accessd.crypto import FileKeyProvider
from accessd.history.chain import append_event
from accessd.models import (
    AuditOutcome,
    AuditRecord,
    DataSubjectRequest,
    EventKind,
    LawfulBasis,
    LoginAttempt,
    LoginOutcome,
    RequestKind,
    RequestStatus,
    StaffRole,
)
from accessd.privacy.claims import security_measures
from accessd.privacy.dpia import dpia_facts, render_markdown
from accessd.privacy.processing_register import (
    COLUMNS,
    LANGS,
    Activity,
    CustomerBasis,
    InstallationFacts,
    Register,
    build_register,
    installation_facts,
    render_csv,
    render_html,
    render_register,
)
from accessd.privacy.processing_register import (
    render_markdown as render_register_markdown,
)
from accessd.privacy.retention import enforce_retention
from accessd.staff import create_api_token, revoke_api_token
from tests.privacy.seed import add_customer

CONTROLLER = ControllerSettings(
    name="Example Colo B.V.", address="Datacenterweg 1, 1234 AB Amsterdam",
    email="privacy@example-colo.nl", dpo_name="D. P. Officer", dpo_contact="fg@example-colo.nl")
FACTS = InstallationFacts(
    customers=[CustomerBasis("Acme", LawfulBasis.CONSENT, None),
               CustomerBasis("Bank Vault", LawfulBasis.NECESSITY, "DPIA-2025-07 section 4"),
               CustomerBasis("Undecided BV", None, None)],
    api_clients=[("portal", "operator")])


def _configured() -> Settings:
    return dataclasses.replace(Settings(), controller=CONTROLLER)


def _by_service(register: Register) -> dict[str, Activity]:
    return {a.service: a for a in register.activities}


def test_every_item_of_article_30_is_there_in_english_and_dutch() -> None:
    settings = _configured()
    document = render_register(settings, "md", LANGS, FACTS)
    for lang in LANGS:
        register = build_register(settings, lang, FACTS)
        for heading in register.headings.values():
            assert f"### {heading}" in document  # (a) to (g), each under its heading
        assert [line.value for line in register.controller] == [
            CONTROLLER.name, CONTROLLER.address, CONTROLLER.email, CONTROLLER.dpo_name,
            CONTROLLER.dpo_contact]
        assert not any(line.missing for line in register.controller)
        for activity in register.activities:  # (b), (c), (d), (f) for every activity
            assert all(activity.cells()) and all(activity.details()), activity
            assert activity.controller == CONTROLLER.name
        assert register.transfers and register.time_limits  # (e), (f)
        assert len(register.measures) == len(security_measures(settings)) + 1  # (g), database
    english, dutch = (build_register(settings, lang, FACTS) for lang in LANGS)
    assert [a.service for a in english.activities][:2] == [
        "Door access for customers' people", "Fingerprint identification"]
    assert [a.service for a in dutch.activities][:2] == [
        "Toegang voor mensen van klanten", "Identificatie met vingerafdruk"]
    assert english.transfers.startswith("None.") and dutch.transfers.startswith("Geen.")
    subjects = " ".join(a.subjects for a in english.activities)
    assert "people a customer authorises" in subjects and "facility staff" in subjects
    assert "visitors" in subjects and "exercise a right" in subjects


def test_what_is_not_configured_is_named_as_missing_not_invented() -> None:
    english, dutch = (build_register(Settings(), lang) for lang in LANGS)
    assert all(line.missing for line in english.controller)
    assert english.controller[0].value == ("NOT CONFIGURED: set controller.name in the "
                                           "configuration")
    assert dutch.controller[3].value == ("NIET INGESTELD: vul controller.dpo_name in de "
                                         "configuratie in")
    assert {a.controller for a in english.activities} == {
        "the provider (controller.name not configured)"}
    transfers = dataclasses.replace(Settings(), controller=ControllerSettings(
        transfers="support desk in Canada (adequacy decision)"))
    assert build_register(transfers, "en").transfers == "support desk in Canada (adequacy " \
        "decision)"


def test_the_grounds_follow_each_customers_recorded_basis() -> None:
    english = build_register(_configured(), "en", FACTS)
    assert english.bases == [
        ("Acme", "explicit consent of each person (GDPR art. 9(2)(a))", ""),
        ("Bank Vault", "necessity for authentication or security (UAVG art. 29)",
         "DPIA-2025-07 section 4"),
        ("Undecided BV", "none recorded: no fingerprint is enrolled", "")]
    activities = _by_service(english)
    fingerprint = activities["Fingerprint identification"].legal_ground
    assert "art. 9(2)(a)" in fingerprint and "UAVG art. 29" in fingerprint
    assert "no fingerprint is enrolled" in fingerprint
    only_consent = build_register(_configured(), "en", InstallationFacts(
        [CustomerBasis("Acme", LawfulBasis.CONSENT, None)]))
    assert "UAVG" not in _by_service(only_consent)["Fingerprint identification"].legal_ground
    # Names and history of people who are not party to the contract: legitimate interest.
    people = activities["Door access for customers' people"].legal_ground
    assert people.startswith("legitimate interest") and "art. 6(1)(f)" in people
    assert "not party to the colocation contract" in people
    assert "does not cover them" in people  # art. 6(1)(b) named only to say it does not fit
    dutch = _by_service(build_register(_configured(), "nl", FACTS))
    assert dutch["Toegang voor mensen van klanten"].legal_ground.startswith(
        "gerechtvaardigd belang")
    assert "wettelijke verplichting" in dutch["Verzoeken van betrokkenen"].legal_ground


def test_installation_facts_come_from_the_database(
        sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with sessions.begin() as session:
        add_customer(session, "Acme")
        add_customer(session, "Bank Vault", basis=LawfulBasis.NECESSITY, reference="DPIA-9")
        create_api_token(session, "portal", StaffRole.OPERATOR, created_by="t", now=now)
        create_api_token(session, "old-ticketing", StaffRole.AUDITOR, created_by="t", now=now)
        revoke_api_token(session, "old-ticketing", now=now)
    with sessions() as session:
        facts = installation_facts(session)
    assert facts.customers == [CustomerBasis("Acme", LawfulBasis.CONSENT, None),
                               CustomerBasis("Bank Vault", LawfulBasis.NECESSITY, "DPIA-9")]
    assert facts.api_clients == [("portal", "operator")]
    recipients = _by_service(build_register(Settings(), "en", facts))[
        "Door access for customers' people"].recipients
    assert "API clients holding a token: portal (operator)" in recipients
    assert "old-ticketing" not in recipients


NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("category", "service"), [
    ("unknown_finger_events", "The facility's door log"),
    ("staff_audit_log", "Staff audit log"),
    ("login_history", "Panel login history"),
    ("data_subject_requests", "Data-subject requests"),
    ("open_data_subject_requests", "Data-subject requests"),
])
def test_the_retention_stated_is_the_one_the_retention_code_enforces(
        category: str, service: str, sessions: sessionmaker[Session]) -> None:
    period = RetentionPeriod(90, "day")
    retention = dataclasses.replace(Settings().retention, **{category: period})
    settings = dataclasses.replace(Settings(), retention=retention)
    index = [a.service for a in build_register(settings, "en").activities].index(service)
    for lang, words in (("en", "90 days"), ("nl", "90 dagen")):
        assert words in build_register(settings, lang).activities[index].retention
    # What the code keeps and deletes: one record just inside the period, one just outside.
    inside, outside = NOW - dt.timedelta(days=89), NOW - dt.timedelta(days=91)
    with sessions.begin() as session:
        for at in (outside, inside):  # oldest first: a chain is pruned from its oldest end
            _record(session, category, at)
    deleted = enforce_retention(sessions, NOW, retention, today=NOW.date())
    assert deleted[category] == 1


def _record(session: Session, category: str, at: dt.datetime) -> None:
    if category == "unknown_finger_events":
        append_event(session, kind=EventKind.UNKNOWN_FINGER, at=at)
    elif category == "staff_audit_log":
        session.add(AuditRecord(at=at, actor="op", action="x", outcome=AuditOutcome.SUCCESS))
    elif category == "login_history":
        session.add(LoginAttempt(at=at, username="op", outcome=LoginOutcome.SUCCESS))
    elif category == "data_subject_requests":
        session.add(DataSubjectRequest(kind=RequestKind.ACCESS, requester_name="R",
                                       received_on=at.date(), due_on=at.date(),
                                       status=RequestStatus.CLOSED, closed_at=at))
    else:
        session.add(DataSubjectRequest(kind=RequestKind.ACCESS, requester_name="R",
                                       received_on=at.date(), due_on=at.date(),
                                       status=RequestStatus.OPEN))


def test_the_people_and_backup_retention_follow_grace_and_backup_age() -> None:
    settings = dataclasses.replace(
        Settings(), purge=dataclasses.replace(Settings().purge, grace_days=14),
        backup=dataclasses.replace(Settings().backup, max_age_months=6),
        retention=dataclasses.replace(Settings().retention,
                                      unknown_finger_events=RetentionPeriod(2, "month")))
    english = _by_service(build_register(settings, "en"))
    people = english["Door access for customers' people"].retention
    assert people.startswith("until the end of the service, plus the cooling-off period "
                             "agreed with the customer (default 14 days, at most 90)")
    assert "backups made before keep a copy until they are 6 months old" in people
    assert english["Backups"].retention == "at most 6 months"
    assert "once they are 6 months old" in english["Backups"].data
    assert english["The facility's door log"].retention == "2 months"
    dutch = build_register(settings, "nl")
    assert dutch.activities[0].retention.startswith("tot einde dienstverlening")
    assert "6 maanden" in dutch.time_limits


def test_the_statements_five_columns_stay_first_in_every_format() -> None:
    settings = _configured()
    text = render_register(settings, "md", LANGS, FACTS)
    for header in ("| Service | Data | Retention | Controller | Legal ground |",
                   "| Type dienst | Type gegevens | Bewaartermijnen | Verantwoordelijke | "
                   "Grond voor verwerking |"):
        assert header in text
    rows = list(csv.reader(io.StringIO(render_register(settings, "csv", LANGS, FACTS))))
    assert rows[0][:6] == ["Language / Taal", "Service / Type dienst", "Data / Type gegevens",
                           "Retention / Bewaartermijnen", "Controller / Verantwoordelijke",
                           "Legal ground / Grond voor verwerking"]
    assert rows[0][6:] == ["Purpose / Doel", "Data subjects / Betrokkenen",
                           "Recipients / Ontvangers",
                           "Transfers to third countries / Doorgifte naar derde landen",
                           "Security measures / Beveiligingsmaatregelen"]
    count = len(build_register(settings, "en").activities)
    assert [r[0] for r in rows[1:]] == ["en"] * count + ["nl"] * count
    assert all(len(r) == 11 and all(r) for r in rows)
    assert "privacy@example-colo.nl" in rows[1][4] and "D. P. Officer" in rows[1][4]
    header = next(csv.reader(io.StringIO(render_register(settings, "csv", ["nl"]))))
    assert header[:5] == list(COLUMNS["nl"])
    page = render_register(settings, "html", LANGS, FACTS)
    assert '<section lang="nl">' in page and "DPIA-2025-07 section 4" in page


HOSTILE = Activity("<script>alert(1)</script>", "a & b | c", "=HYPERLINK(\"x\")",
                   "line\nbreak", "\"quoted\"", "p", "s", "r")


def test_every_format_escapes_what_it_must() -> None:
    register = dataclasses.replace(build_register(Settings(), "en"), activities=[HOSTILE])
    page = render_html([register])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b | c" in page and "&quot;quoted&quot;" in page
    table = render_register_markdown(register)
    assert "a & b \\| c" in table and "line break" in table and "<script>" not in table
    [_, row] = list(csv.reader(io.StringIO(render_csv([register]))))
    assert row[2] == "'=HYPERLINK(\"x\")"  # not run as a formula by a spreadsheet
    assert row[3].startswith("line\nbreak (Controller: NOT CONFIGURED")
    assert row[4] == "\"quoted\""


def test_the_dpia_makes_the_same_statements_as_the_register(
        sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    settings = _configured()
    with sessions() as session:
        facts = dpia_facts(settings, session, NOW, keyring)
    register = build_register(settings, "en")
    assert facts["security_measures"] == register.measures
    backups = next(a for a in register.activities if a.service == "Backups").data
    assert next(f for f in facts["flows"] if f["to"] == "backups")["protection"] == backups
    risk = next(r for r in facts["risks"] if r["risk"] == "Loss or theft of a backup")
    assert backups in risk["mitigations"]
    assert facts["transfers"] == register.transfers
    assert facts["controller"]["dpo_name"] == "D. P. Officer"
    document = render_markdown(facts)
    assert "deleted after the configured maximum age" not in document  # the old, false one
    assert "backups hold only undecryptable ciphertext" not in document
    assert "## Security measures (GDPR art. 32)" in document


def test_staff_accounts_are_disabled_never_deleted(
        sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    """What the register says of staff accounts' retention: accessd never deletes one."""
    from accessd.models import StaffUser
    from accessd.staff import create_staff_user, disable_staff_user

    root = Path(__file__).resolve().parents[2]
    for source in [*(root / "accessd").rglob("*.py"), *(root / "web").rglob("*.py")]:
        assert "delete(StaffUser" not in source.read_text(), source
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with sessions.begin() as session:
        create_staff_user(session, "ann", StaffRole.ADMIN, provider=keyring, now=now)
        user = create_staff_user(session, "bea", StaffRole.OPERATOR, provider=keyring,
                                 now=now).user
        disable_staff_user(session, user, now=now)
    with sessions() as session:
        assert session.scalars(select(StaffUser.username).order_by(StaffUser.username)).all() \
            == ["ann", "bea"]
    assert "never deletes them" in build_register(Settings(), "en").activities[3].retention


def test_the_controller_is_configured_in_the_file_accessd_init_writes(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "accessd.toml", tmp_path / "data")
    text = path.read_text()
    assert "[controller]" in text and "# dpo_contact = (unset)" in text
    assert load_settings(path, env={}).controller == ControllerSettings()
    update_config_file(path, {"controller.name": "Example Colo B.V.",
                              "controller.dpo_contact": "fg@example-colo.nl"})
    settings = load_settings(path, env={"ACCESSD_CONTROLLER_EMAIL": "privacy@example-colo.nl"})
    lines = {line.label: line for line in build_register(settings, "en").controller}
    assert lines["Controller"].value == "Example Colo B.V." and not lines["Controller"].missing
    assert lines["Contact"].value == "privacy@example-colo.nl"
    assert lines["Address"].missing
    with pytest.raises(ConfigError, match=r"controller\.nmae"):
        load_settings(path, overrides={"controller.nmae": "typo"}, env={})
