"""Every statement the register and the DPIA make about the running code is true of it: one
check per claim (``accessd.privacy.claims``), against behaviour, not against the text; a claim
without a check fails ``test_every_claim_has_a_check``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from accessd.backup.archive import create_backup, restore_backup, verify_backup
from accessd.backup.housekeeping import backup_destruction, sync_backup_keys
from accessd.backup.keys import key_file_path
from accessd.cli.main import main
from accessd.config import (
    BackupSettings,
    ControllerSettings,
    DatabaseSettings,
    KeySettings,
    RetentionPeriod,
    Settings,
)
from accessd.crypto import (
    EncryptedTemplate,
    FileKeyProvider,
    WrappedDataKey,
    decrypt_template,
    unwrap_data_key,
)
from accessd.crypto.envelope import _template_aad
from accessd.customers.people import add_person, set_pin
from accessd.db import create_db_engine, upgrade
from accessd.door.directory import SqlDirectory
from accessd.door.logic import CountPinAttempt, DoorLogic, DoorRules, WipeSensor
from accessd.door.pin_attempts import PinAttempts
from accessd.errors import (
    BackupError,
    ContractOverError,
    DecryptionError,
    EnrollmentError,
    KeyFileError,
    PasswordRejectedError,
)
from accessd.fingers.enrolment import check_may_enrol
from accessd.history.chain import verify_chains
from accessd.models import (
    AccessEvent,
    AuditRecord,
    Customer,
    DataKey,
    Finger,
    FingerLabel,
    LawfulBasis,
    LoginOutcome,
    Person,
    StaffRole,
)
from accessd.privacy.claims import (
    backup_contents,
    database_location,
    restore_claim,
    security_measures,
    transfers,
)
from accessd.privacy.purge import verify_certificate, write_certificate
from accessd.privacy.retention import enforce_retention
from accessd.privacy.scheduler import PrivacyScheduler
from accessd.rights.actions import erase_person
from accessd.rights.export import export_person
from accessd.staff import authenticate, create_staff_user, resume_session, start_session
from accessd.staff.policy import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    LOCKOUT_BASE,
    LOCKOUT_THRESHOLD,
    PASSWORD_MIN_LENGTH,
    TOTP_DIGITS,
)
from accessd.staff.sessions import SessionState
from firmware_bridge.door import DoorEvent, DoorEventKind
from tests.privacy.seed import purge_completely
from tests.rights.backup_files import canaries, flip, installation_keys, open_everything
from tests.rights.seed import World, seed_world

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Site:
    """What a check may use: a seeded world on this test's database, its settings and keys."""

    world: World
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: FileKeyProvider
    tmp: Path
    db_path: Path


@pytest.fixture
def site(tmp_path: Path, db_path: Path, engine: Engine,
         sessions: sessionmaker[Session]) -> Site:
    keys = FileKeyProvider.create(tmp_path / "keyring.json")
    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=f"sqlite:///{db_path}"),
                        keys=KeySettings(master_key_file=keys.path),
                        backup=BackupSettings(dir=tmp_path / "backups", max_age_months=6))
    with sessions.begin() as session:
        world = seed_world(session, keys)
    return Site(world, settings, engine, sessions, keys, tmp_path, db_path)


def _claim(settings: Settings, key: str) -> str:
    return next(c.en for c in security_measures(settings) if c.key == key)


# --- the checks, one per claim -------------------------------------------------------------

def templates_encrypted(site: Site) -> None:
    ada = site.world.ada
    with site.sessions() as session:
        nonce, raw, finger_id = session.execute(text(
            "SELECT template_nonce, template_ciphertext, public_id FROM fingers WHERE id = :id"),
            {"id": ada.finger_ids[0]}).one()
        row = session.scalars(select(DataKey).where(DataKey.customer_id == ada.customer_id)).one()
        key = unwrap_data_key(site.keys, WrappedDataKey(row.master_key_id, row.wrapped_key),
                              customer_id=site.world.acme_public_id)
    template = ada.templates[0]
    assert template not in raw and len(raw) == len(template) + 16 and len(nonce) == 12
    assert len(key) == 32  # AES-256
    aad = _template_aad(site.world.acme_public_id, ada.public_id, ada.finger_public_ids[0])
    assert AESGCM(key).decrypt(nonce, raw, aad) == template  # AES-GCM, bound to its row
    with pytest.raises(DecryptionError):  # the same ciphertext on Bob's row does not open
        decrypt_template(key, EncryptedTemplate(nonce, raw), customer_id=site.world
                         .acme_public_id, person_id=site.world.bob.public_id,
                         finger_id=site.world.bob.finger_public_ids[0])
    assert finger_id is not None


def data_keys_wrapped(site: Site) -> None:
    with site.sessions() as session:
        row = session.scalars(select(DataKey).limit(1)).one()
        customer = session.get_one(Customer, row.customer_id)
    wrapped = WrappedDataKey(row.master_key_id, row.wrapped_key)
    key = unwrap_data_key(site.keys, wrapped, customer_id=customer.public_id)
    assert key not in row.wrapped_key
    other = FileKeyProvider.create(site.tmp / "other" / "keyring.json")
    with pytest.raises(KeyFileError):
        unwrap_data_key(other, wrapped, customer_id=customer.public_id)
    assert str(site.keys.path) != str(site.db_path)


def keyring_private(site: Site) -> None:
    assert stat.S_IMODE(site.keys.path.stat().st_mode) == 0o600
    site.keys.path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        FileKeyProvider(site.keys.path)


def crypto_shredding(site: Site) -> None:
    with site.sessions.begin() as session:
        session.get_one(Customer, site.world.acme_id).contract_end = dt.date(2025, 5, 1)
    purge_completely(site.sessions, site.keys, site.engine, NOW, site_timezone="UTC")
    with site.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DataKey).where(
            DataKey.customer_id == site.world.acme_id)) == 0
        assert session.scalar(select(func.count()).select_from(Finger).where(
            Finger.customer_id == site.world.acme_id)) == 0
        assert session.scalar(select(func.count()).select_from(DataKey)) == 1  # Globex's


def history_chained(site: Site) -> None:
    with site.sessions() as session:
        assert list(verify_chains(session)) == []
        digest = session.scalars(select(AccessEvent.digest).limit(1)).one()
    assert len(digest) == hashlib.sha256().digest_size
    with site.sessions.begin() as session:
        first = session.scalars(select(AccessEvent.id).order_by(AccessEvent.id)).first()
        session.execute(update(AccessEvent).where(AccessEvent.id == first)
                        .values(reason="edited"))
    with site.sessions() as session:
        assert list(verify_chains(session))


def files_private(site: Site) -> None:
    fresh = site.tmp / "fresh" / "accessd.sqlite3"
    fresh.parent.mkdir()
    engine = create_db_engine(f"sqlite:///{fresh}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    backup = create_backup(site.settings, site.engine, site.keys, NOW)
    export = site.tmp / "ada.zip"
    with site.sessions() as session:
        export_person(session, session.get_one(Person, site.world.ada.id), export)
    with site.sessions.begin() as session:
        session.get_one(Customer, site.world.acme_id).contract_end = dt.date(2025, 5, 1)
    (record,) = purge_completely(site.sessions, site.keys, site.engine, NOW, site_timezone="UTC")
    certificate = write_certificate(record, site.tmp / "certificates")
    for path in (fresh, backup, export, certificate):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(certificate.parent.stat().st_mode) == 0o700


def secure_delete(site: Site) -> None:
    with site.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    with site.sessions.begin() as session:
        erase_person(session, session.get_one(Person, site.world.ada.id), "op", provider=site.keys)
    from accessd.db import checkpoint_wal

    checkpoint_wal(site.engine)
    wal = Path(f"{site.db_path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert b"CANARY-ADA" not in site.db_path.read_bytes()


def backups_encrypted(site: Site) -> None:
    path = create_backup(site.settings, site.engine, site.keys, NOW)
    raw = path.read_bytes()
    assert b"CANARY" not in raw and b"SQLite format 3" not in raw
    assert verify_backup(path, site.keys).database_bytes > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_bytes(flip(raw, len(raw) // 2))
    with pytest.raises(BackupError):
        verify_backup(path, site.keys)


def backups_hold(site: Site) -> None:
    """After a purge and an erasure, an older backup opened with every key the installation
    still holds shows nothing of them, while the living are still there; backups are deleted
    once backup.max_age_months old."""
    months = site.settings.backup.max_age_months
    assert f"once they are {months} months old" in backup_contents(site.settings).en
    path = create_backup(site.settings, site.engine, site.keys, NOW)
    destroy = backup_destruction(site.settings, site.sessions, site.keys)
    with site.sessions.begin() as session:
        session.get_one(Customer, site.world.globex_id).contract_end = dt.date(2025, 5, 1)
        erase_person(session, session.get_one(Person, site.world.ada.id), "op", provider=site.keys)
    assert sync_backup_keys(site.settings, site.sessions, site.keys) is None
    purge_completely(site.sessions, site.keys, site.engine, NOW, site_timezone="UTC",
                     destroy_backups=destroy)
    inside = open_everything(path, site.keys, installation_keys(site.settings.backup.dir,
                                                                 site.keys))
    for gone in (site.world.ada.name, site.world.carol.name):  # erased; purged with Globex
        assert not any(inside.contains(c) for c in canaries(gone)), gone
    assert inside.contains(site.world.bob.name.encode())  # the living restore as before
    assert site.world.ada.templates[0] not in inside.templates

    def reconcile(at: dt.datetime) -> None:
        report = PrivacyScheduler(site.settings, site.sessions, site.keys, site.engine,
                                  clock=lambda: at).run_now()
        assert not report.errors

    old_enough = RetentionPeriod(months, "month").end(NOW.date())  # 2025-12-01
    assert old_enough is not None
    reconcile(dt.datetime.combine(old_enough, NOW.timetz()) - dt.timedelta(minutes=1))
    assert path.exists()
    reconcile(dt.datetime.combine(old_enough, NOW.timetz()) + dt.timedelta(minutes=1))
    assert not path.exists()


def restore_reapplies(site: Site) -> None:
    destroy = backup_destruction(site.settings, site.sessions, site.keys)
    path = create_backup(site.settings, site.engine, site.keys, NOW)
    with site.sessions.begin() as session:
        erase_person(session, session.get_one(Person, site.world.ada.id), "op", provider=site.keys)
        session.get_one(Customer, site.world.globex_id).contract_end = dt.date(2025, 5, 1)
    purge_completely(site.sessions, site.keys, site.engine, NOW, site_timezone="UTC",
                     destroy_backups=destroy)
    restore_backup(path, site.settings, site.engine, site.keys, daemon_stopped=True)
    with site.sessions() as session:
        names = set(session.scalars(select(Person.name)))
    assert names == {site.world.bob.name}  # nothing destroyed came back

    # The live database lost too: still nobody destroyed comes back; without the key file,
    # no restore at all.
    site.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{site.db_path}{suffix}").unlink(missing_ok=True)
    restore_backup(path, site.settings, site.engine, site.keys, daemon_stopped=True,
                   live_database_lost=True)
    with site.sessions() as session:
        assert set(session.scalars(select(Person.name))) == {site.world.bob.name}
    key_file = key_file_path(site.settings.backup.dir)
    key_file.rename(key_file.with_suffix(".away"))
    with pytest.raises(BackupError, match="key file"):
        restore_backup(path, site.settings, site.engine, site.keys, daemon_stopped=True,
                       live_database_lost=True)


def staff_sign_in(site: Site) -> None:
    with site.sessions.begin() as session:
        with pytest.raises(PasswordRejectedError):
            create_staff_user(session, "short", StaffRole.OPERATOR, provider=site.keys,
                              now=NOW, password="x" * (PASSWORD_MIN_LENGTH - 1))
        issued = create_staff_user(session, "olga", StaffRole.OPERATOR, provider=site.keys,
                                   now=NOW, password="a long enough passphrase")
        assert issued.user.password_hash.startswith("$argon2id$")
    assert issued.totp_secret is not None
    code = pyotp.TOTP(issued.totp_secret, digits=TOTP_DIGITS).at(NOW)
    assert len(code) == TOTP_DIGITS
    outcomes = []
    for _ in range(2):
        with site.sessions.begin() as session:
            outcomes.append(authenticate(session, "olga", "a long enough passphrase", code,
                                         provider=site.keys, source_address="192.0.2.1",
                                         now=NOW).outcome)
    assert outcomes == [LoginOutcome.SUCCESS, LoginOutcome.TOTP_REPLAY]
    assert {role.value for role in StaffRole} == {"admin", "operator", "auditor"}


def lockout(site: Site) -> None:
    with site.sessions.begin() as session:
        create_staff_user(session, "olga", StaffRole.OPERATOR, provider=site.keys, now=NOW,
                          password="a long enough passphrase")
    at = NOW
    for _ in range(LOCKOUT_THRESHOLD):
        with site.sessions.begin() as session:
            assert not authenticate(session, "olga", "wrong guess here", "000000",
                                    provider=site.keys, source_address="192.0.2.9",
                                    now=at).ok
        at += dt.timedelta(seconds=1)
    from accessd.staff.throttle import locked_until

    with site.sessions() as session:  # locked from that address, for LOCKOUT_BASE ...
        assert locked_until(session, "olga", now=at, source_address="192.0.2.9") == \
            at - dt.timedelta(seconds=1) + LOCKOUT_BASE
        # ... and only from there: the owner elsewhere is not kept out
        assert locked_until(session, "olga", now=at, source_address="198.51.100.7") is None


def sessions(site: Site) -> None:
    with site.sessions.begin() as session:
        user = create_staff_user(session, "olga", StaffRole.OPERATOR, provider=site.keys,
                                 now=NOW, password="a long enough passphrase").user
        idle = start_session(session, user, source_address=None, now=NOW)
        busy = start_session(session, user, source_address=None, now=NOW)
    with site.sessions.begin() as session:
        assert resume_session(session, idle, now=NOW + IDLE_TIMEOUT).state is \
            SessionState.IDLE_EXPIRED
    at = NOW
    while at < NOW + ABSOLUTE_TIMEOUT - IDLE_TIMEOUT:
        at += IDLE_TIMEOUT / 2
        with site.sessions.begin() as session:
            assert resume_session(session, busy, now=at).state is SessionState.ACTIVE
    with site.sessions.begin() as session:
        assert resume_session(session, busy, now=NOW + ABSOLUTE_TIMEOUT).state is \
            SessionState.ABSOLUTE_EXPIRED


def web_protections(site: Site) -> None:
    from web import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "a test secret key, long enough 0123456789",
                      "ACCESSD_DATABASE_URL": site.settings.database.url,
                      "ACCESSD_KEY_PROVIDER": site.keys})
    client = app.test_client()
    page = client.get("/login")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-accessd=")
    assert {"Secure", "HttpOnly", "SameSite=Strict"} <= {p.strip() for p in cookie.split(";")}
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert client.post("/login", data={"username": "x", "password": "y", "code": "1"}
                       ).status_code == 400  # no CSRF token


def audit_log(site: Site) -> None:
    config = site.tmp / "accessd.toml"
    config.write_text(f'data_dir = "{site.tmp}"\n[database]\nurl = "{site.settings.database.url}"'
                      f'\n[keys]\nmaster_key_file = "{site.keys.path}"\n')
    assert main(["--config", str(config), "person", "show", str(site.world.ada.public_id)],
                wall=lambda: NOW) == 0
    assert main(["--config", str(config), "person", "show", "nobody"], wall=lambda: NOW) == 1
    with site.sessions() as session:
        outcomes = [(r.action, r.outcome.value, r.target) for r in
                    session.scalars(select(AuditRecord).order_by(AuditRecord.id))]
    assert outcomes == [("person.view", "success", f"person:{site.world.ada.public_id}"),
                        ("person.view", "refused", None)]
    retention = site.settings.retention.staff_audit_log
    assert "kept 1 year" in _claim(site.settings, "audit_log") and str(retention) == "1 year"
    deleted = enforce_retention(site.sessions, NOW + dt.timedelta(days=366), dataclasses.replace(
        site.settings.retention))
    assert deleted["staff_audit_log"] == 2


def pins_hashed(site: Site) -> None:
    access = site.settings.access
    with site.sessions.begin() as session:
        bob = session.get_one(Person, site.world.bob.id)
        pin = set_pin(session, bob, "480917")
        assert bob.pin_hash is not None and bob.pin_hash.startswith("$argon2id$")
        assert pin not in bob.pin_hash
        code = bob.keypad_code
    assert code is not None
    directory = SqlDirectory(site.sessions, clock=lambda: NOW)
    attempts = PinAttempts(site.sessions, max_failures=access.pin_max_failures,
                           lockout=dt.timedelta(seconds=access.pin_lockout_seconds),
                           clock=lambda: NOW)
    for _ in range(access.pin_max_failures):
        check = directory.check_pin(code, "000000")
        assert not check.accepted and check.person is not None
        attempts.count(CountPinAttempt(check.person.id, right=False))
    with site.sessions() as session:
        locked = session.get_one(Person, site.world.bob.id).pin_locked_until
    assert locked == NOW + dt.timedelta(seconds=access.pin_lockout_seconds)


def sensor_password(site: Site) -> None:
    other = FileKeyProvider.create(site.tmp / "other" / "keyring.json")
    assert site.keys.sensor_password() not in (0, other.sensor_password())
    logic = DoorLogic(1, DoorRules(), _NoDirectory(), today=lambda: NOW.date())
    actions = logic.board(_tamper_event(), 0.0)
    assert any(isinstance(action, WipeSensor) for action in actions)


def purge_certificates(site: Site) -> None:
    with site.sessions.begin() as session:
        session.get_one(Customer, site.world.acme_id).contract_end = dt.date(2025, 5, 1)
    (record,) = purge_completely(site.sessions, site.keys, site.engine, NOW, site_timezone="UTC")
    assert record.certificate is not None
    document = json.loads(record.certificate)
    assert document["algorithm"] == "Ed25519"
    assert verify_certificate(record.certificate.encode(),
                              site.keys.signing_public_key()).valid
    document["certificate"]["counts"]["persons"] = 0
    assert not verify_certificate(json.dumps(document).encode(),
                                  site.keys.signing_public_key()).valid


def minimisation(site: Site) -> None:
    from accessd.clock import SiteClock

    clock = SiteClock.of(site.settings, wall=lambda: NOW)
    with site.sessions.begin() as session:
        acme = session.get_one(Customer, site.world.acme_id)
        acme.contract_end = dt.date(2025, 5, 31)
        with pytest.raises(ContractOverError):
            add_person(session, acme, "Late Comer", clock=clock)
        globex = session.get_one(Customer, site.world.globex_id)
        globex.lawful_basis = None
        carol = session.get_one(Person, site.world.carol.id)
        with pytest.raises(EnrollmentError, match="no lawful basis"):
            check_may_enrol(session, carol, FingerLabel.LEFT_RING, 9, today=clock.today())
        globex.lawful_basis = LawfulBasis.CONSENT
        session.execute(text("DELETE FROM consents WHERE person_id = :p"), {"p": carol.id})
        with pytest.raises(EnrollmentError, match="consent"):
            check_may_enrol(session, carol, FingerLabel.LEFT_RING, 9, today=clock.today())
        session.rollback()


def database_local(site: Site) -> None:
    assert database_location(site.settings).key == "database_local"
    assert site.settings.database.url.startswith("sqlite:///")
    assert site.db_path.exists()


def database_server(site: Site) -> None:
    settings = dataclasses.replace(site.settings, database=DatabaseSettings(
        url="postgresql+psycopg://accessd:secret@db.example.net/accessd"))
    claim = database_location(settings)
    assert claim.key == "database_server" and "db.example.net" in claim.en
    assert "secret" not in claim.en + claim.nl


def no_transfers(site: Site) -> None:
    """No outbound client in the code, no external asset in the panel's pages."""
    assert transfers(site.settings).key == "no_transfers"
    outbound = re.compile(r"^\s*(import|from)\s+(urllib\.request|http\.client|requests|httpx|"
                          r"aiohttp|smtplib|ftplib)\b", re.M)
    for package in ("accessd", "web"):
        for source in (ROOT / package).rglob("*.py"):
            assert not outbound.search(source.read_text()), source
    external = re.compile(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""")
    for asset in [*(ROOT / "web" / "templates").rglob("*.html"),
                  *(ROOT / "web" / "static").rglob("*")]:
        if asset.is_file():
            assert not external.search(asset.read_text()), asset


def transfers_configured(site: Site) -> None:
    settings = dataclasses.replace(site.settings, controller=ControllerSettings(
        transfers="Support desk in the USA (standard contractual clauses)"))
    assert transfers(settings).en == "Support desk in the USA (standard contractual clauses)"


CHECKS: dict[str, Callable[[Site], None]] = {
    check.__name__: check for check in (
        templates_encrypted, data_keys_wrapped, keyring_private, crypto_shredding,
        history_chained, files_private, secure_delete, backups_encrypted, backups_hold,
        restore_reapplies, staff_sign_in, lockout, sessions, web_protections, audit_log,
        pins_hashed, sensor_password, purge_certificates, minimisation, database_local,
        database_server, no_transfers, transfers_configured)}


def _every_claim_key() -> set[str]:
    base = Settings()
    postgres = dataclasses.replace(base, database=DatabaseSettings(
        url="postgresql+psycopg://u:p@h/accessd"))
    moved = dataclasses.replace(base, controller=ControllerSettings(transfers="x"))
    return ({c.key for c in security_measures(base)} | {backup_contents(base).key,
            restore_claim().key, database_location(base).key, database_location(postgres).key,
            transfers(base).key, transfers(moved).key})


def test_every_claim_has_a_check() -> None:
    assert _every_claim_key() == set(CHECKS)


@pytest.mark.parametrize("key", sorted(CHECKS))
def test_the_claim_holds(key: str, site: Site) -> None:
    CHECKS[key](site)


class _NoDirectory:
    def by_slot(self, slot: int) -> None:
        return None

    def check_pin(self, code: str, pin: str) -> None:
        raise AssertionError("not asked")


def _tamper_event() -> DoorEvent:
    return DoorEvent(DoorEventKind.TAMPER_ON, 0.0)


def test_figures_in_the_claims_are_the_codes() -> None:
    measures = {c.key: c for c in security_measures(Settings())}
    assert f"{LOCKOUT_THRESHOLD} failed sign-ins of a user name from one address" in \
        measures["lockout"].en
    assert f"{round(LOCKOUT_BASE.total_seconds() / 60)} minutes" in measures["lockout"].en
    assert f"at least {PASSWORD_MIN_LENGTH} characters" in measures["staff_sign_in"].en
    assert f"{round(IDLE_TIMEOUT.total_seconds() / 60)} minutes without activity" in \
        measures["sessions"].en
    assert f"after {Settings().access.pin_max_failures} wrong PINs" in measures["pins_hashed"].en


def test_the_purge_certificate_says_what_is_kept_and_it_is(site: Site) -> None:
    """The certificate's statement (accessd.privacy.purge) names what a purge keeps on
    purpose; each of those is so: request records without links, the facility's events of
    its people anonymised, and older backups still holding its people's names."""
    from accessd.history.chain import append_event
    from accessd.models import DataSubjectRequest, EventKind, RequestKind
    from accessd.rights.requests import record_request

    backup = create_backup(site.settings, site.engine, site.keys, NOW)
    with site.sessions.begin() as session:
        ada = session.get_one(Person, site.world.ada.id)
        record_request(session, RequestKind.ACCESS, dt.date(2025, 5, 2),
                       requester_name=site.world.ada.name, person=ada)
        append_event(session, kind=EventKind.UNKNOWN_FINGER, person=ada, at=NOW)
        session.get_one(Customer, site.world.acme_id).contract_end = dt.date(2025, 5, 1)
    (record,) = purge_completely(site.sessions, site.keys, site.engine, NOW, site_timezone="UTC",
                                 destroy_backups=backup_destruction(site.settings, site.sessions,
                                                                    site.keys))
    assert record.certificate is not None
    statement = json.loads(record.certificate)["certificate"]["statement"]
    assert "Kept on purpose, with no link to the customer or its people: the records of " \
        "data-subject requests" in statement
    assert "anonymised, any events of its people in the facility's own door log" in statement
    assert "backups are covered as stated under destroyed.backups" in statement
    backups = json.loads(record.certificate)["certificate"]["destroyed"]["backups"]
    assert backups["method"] == "backup_keys_destroyed"
    with site.sessions() as session:
        request = session.scalars(select(DataSubjectRequest)).one()
        assert (request.requester_name, request.person_id, request.customer_id) == (
            site.world.ada.name, None, None)
        facility = session.scalars(select(AccessEvent).where(
            AccessEvent.customer_id.is_(None))).all()
        assert facility and all(e.person_id is None and e.subject_salt is None
                                for e in facility)
    inside = open_everything(backup, site.keys, installation_keys(site.settings.backup.dir,
                                                                   site.keys))
    assert not any(inside.contains(c) for c in canaries(site.world.ada.name))
