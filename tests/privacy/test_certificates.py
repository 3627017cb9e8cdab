"""Purge certificates anyone can check: against a key the checker trusts (never one inside the
certificate), about the customer holding the reference, stating what was destroyed where, and
issued only once every door confirmed its sensor dropped the templates."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.main import main
from accessd.crypto import FileKeyProvider
from accessd.errors import AccessdError
from accessd.models import (
    CommandKind,
    CommandState,
    Customer,
    DeviceCommand,
    LedgerSeal,
    PurgeRecord,
    PurgeStatus,
)
from accessd.privacy.certificate import (
    key_fingerprint,
    normalise_reference,
    public_key_pem,
    verify_certificate,
)
from accessd.privacy.ledger import canonical_json, check_ledger, key_id, latest_seal
from accessd.privacy.purge import list_purges, run_due_purges
from tests.privacy.seed import (
    add_customer,
    add_door,
    confirm_resyncs,
    enrol,
    purge_completely,
)

NOW = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)


def _leaving(sessions: sessionmaker[Session], keyring: FileKeyProvider,
             doors: tuple[str, ...] = ("main", "cage-7")) -> str:
    """A customer whose contract ended, and doors; returns the customer's reference."""
    with sessions.begin() as session:
        leaving = add_customer(session, "Leaving BV", contract_end=dt.date(2025, 6, 30))
        add_customer(session, "Staying NV")
        for name in doors:
            add_door(session, name, [leaving])
        enrol(session, keyring, leaving, "Lea Vink")
        assert leaving.reference is not None
        return leaving.reference


def _certificate(sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
                 **options: Any) -> bytes:
    [record] = purge_completely(sessions, keyring, engine, NOW, **options)
    assert record.status is PurgeStatus.COMPLETED and record.certificate is not None
    return record.certificate.encode()


def _resync_states(sessions: sessionmaker[Session]) -> dict[int, CommandState]:
    with sessions() as session:
        return dict(session.execute(select(DeviceCommand.door_id, DeviceCommand.state).where(
            DeviceCommand.kind == CommandKind.RESYNC).order_by(DeviceCommand.id)).all())


# --- certified only once every door confirmed -------------------------------------------------


def test_a_purge_waits_for_every_door_and_is_certified_once_all_confirmed(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path) -> None:
    _leaving(sessions, keyring)
    certs = tmp_path / "certs"
    [waiting] = run_due_purges(sessions, keyring, engine, NOW, certificate_dir=certs)
    assert waiting.status is PurgeStatus.AWAITING_DOORS
    assert waiting.certificate is None and not certs.exists()
    with sessions() as session:
        assert session.scalar(select(Customer.id).where(Customer.name == "Leaving BV")) is None
        [checked] = list_purges(session, keyring)
    assert [w.door for w in checked.waiting] == ["main", "cage-7"]
    assert all(w.state == "pending" for w in checked.waiting)

    # The first door's daemon finishes its resync; the second's fails (sensor fault).
    with sessions.begin() as session:
        first, second = session.scalars(select(DeviceCommand).where(
            DeviceCommand.kind == CommandKind.RESYNC).order_by(DeviceCommand.door_id)).all()
        first.state, first.finished_at = CommandState.DONE, NOW + dt.timedelta(minutes=1)
        first.result = {"uploaded": 0, "deleted": 1, "kept": 0}
        second.state, second.finished_at = CommandState.FAILED, NOW + dt.timedelta(minutes=1)
    assert run_due_purges(sessions, keyring, engine, NOW, certificate_dir=certs) == []
    with sessions() as session:
        [checked] = list_purges(session, keyring)
        record = checked.record
    assert record.status is PurgeStatus.AWAITING_DOORS and record.certificate is None
    assert [(w.door, w.state, w.attempts) for w in checked.waiting] == [("cage-7", "pending", 2)]
    assert record.doors is not None and record.doors[0]["confirmed_at"] is not None

    confirm_resyncs(sessions)
    [done] = run_due_purges(sessions, keyring, engine, NOW, certificate_dir=certs)
    assert done.status is PurgeStatus.COMPLETED and done.completed_at is not None
    [path] = certs.iterdir()
    assert verify_certificate(path, provider=keyring).valid
    assert check_ledger(sessions, keyring).ok


def test_purge_status_names_the_doors_still_to_confirm(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        config: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _leaving(sessions, keyring)
    assert main(["--config", config, "purge", "--now"]) == 0
    out = capsys.readouterr().out
    assert "awaiting doors" in out and "main (resync pending since" in out
    assert "cage-7 (resync pending since" in out and "certificate for the customer" not in out
    assert not (tmp_path / "purge-certificates").exists()
    confirm_resyncs(sessions)
    assert main(["--config", config, "purge", "--status"]) == 0
    assert "waiting for these doors" in capsys.readouterr().out  # nothing certifies it yet
    assert main(["--config", config, "purge", "--now"]) == 0
    out = capsys.readouterr().out
    [certificate] = (tmp_path / "purge-certificates").iterdir()
    assert "completed" in out and str(certificate) in out


def test_purge_status_finds_a_customers_purge_by_its_reference(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        config: str, capsys: pytest.CaptureFixture[str]) -> None:
    reference = _leaving(sessions, keyring)
    with sessions() as session:
        staying = session.scalars(select(Customer.reference).where(
            Customer.name == "Staying NV")).one()
    assert main(["--config", config, "purge", "--now"]) == 0
    capsys.readouterr()
    assert main(["--config", config, "purge", "--status", "--customer-reference",
                 reference.lower()]) == 0
    out = capsys.readouterr().out
    assert out.startswith("purge 1, customer ") and "Leaving" not in out
    assert main(["--config", config, "purge", "--status", "--customer-reference",
                 staying or ""]) == 1
    assert "no purge record was made for the customer" in capsys.readouterr().out
    assert main(["--config", config, "purge", "--now", "--customer-reference",
                 reference]) == 1
    assert "goes with --status" in capsys.readouterr().err


def test_without_doors_a_purge_is_certified_at_once(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _leaving(sessions, keyring, doors=())
    [record] = run_due_purges(sessions, keyring, engine, NOW)
    assert record.status is PurgeStatus.COMPLETED
    body = json.loads(record.certificate or "")["certificate"]
    assert body["destroyed"]["sensors"] == []


def test_a_door_removed_before_it_confirmed_is_said_so_on_the_certificate(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _leaving(sessions, keyring)
    run_due_purges(sessions, keyring, engine, NOW)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM doors WHERE name = 'cage-7'"))  # decommissioned
    confirm_resyncs(sessions)
    [record] = run_due_purges(sessions, keyring, engine, NOW)
    sensors = json.loads(record.certificate or "")["certificate"]["destroyed"]["sensors"]
    assert [s["door"] for s in sensors] == ["main", "cage-7"]
    assert sensors[0]["confirmed_at"] is not None and "note" not in sensors[0]
    assert sensors[1]["confirmed_at"] is None and "not confirmed wiped" in sensors[1]["note"]


# --- what the certificate states ------------------------------------------------------------


def test_the_certificate_states_what_was_destroyed_where(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _leaving(sessions, keyring)
    run_due_purges(sessions, keyring, engine, NOW)
    finished = {"main": NOW + dt.timedelta(seconds=5), "cage-7": NOW + dt.timedelta(seconds=9)}
    with sessions.begin() as session:
        for command in session.scalars(select(DeviceCommand).where(
                DeviceCommand.kind == CommandKind.RESYNC)):
            name = "main" if command.door_id == 1 else "cage-7"
            command.state, command.finished_at = CommandState.DONE, finished[name]
            command.result = {"uploaded": 0, "deleted": 1, "kept": 0}
    [record] = run_due_purges(sessions, keyring, engine, NOW)
    body = json.loads(record.certificate or "")["certificate"]
    assert body["version"] == 2
    destroyed = body["destroyed"]
    assert destroyed["database"]["counts"] == {"persons": 1, "fingers": 1, "consents": 1,
                                               "access_events": 0, "data_keys": 1}
    assert destroyed["database"]["wal"] == "truncated"
    assert [(s["door"], s["confirmed_at"], s["slots_wiped"]) for s in destroyed["sensors"]] == [
        ("main", "2025-08-01T00:00:05Z", 1), ("cage-7", "2025-08-01T00:00:09Z", 1)]
    assert destroyed["backups"]["method"] == "data_key_destroyed"
    assert destroyed["backups"]["data_key_destroyed_at"] is not None
    assert "installation_public_key" not in body  # a fingerprint, never the key
    assert body["installation_key_fingerprint"] == key_fingerprint(keyring.signing_public_key())
    with sessions() as session:
        entry_seal = session.scalars(select(LedgerSeal).where(
            LedgerSeal.subject == "erasure_ledger")).one()
    assert body["ledger"] == {"seal": entry_seal.seq, "digest": entry_seal.digest}


def test_a_backup_hook_states_when_the_backup_keys_were_destroyed(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _leaving(sessions, keyring, doors=())
    calls: list[str] = []

    def shred(digest: str, at: dt.datetime) -> dict[str, Any]:
        calls.append(digest)
        if len(calls) == 1:
            raise AccessdError("backup key file not reachable")
        return {"method": "backup_keys_destroyed", "keys_destroyed_at": at.isoformat()}

    assert run_due_purges(sessions, keyring, engine, NOW, destroy_backups=shred) == []
    with sessions() as session:  # the backups still hold the customer: not done
        assert session.scalars(select(PurgeRecord.status)).one() is PurgeStatus.STARTED
    [record] = run_due_purges(sessions, keyring, engine, NOW, destroy_backups=shred)
    body = json.loads(record.certificate or "")["certificate"]
    assert body["destroyed"]["backups"]["method"] == "backup_keys_destroyed"
    assert len(calls) == 2 and calls[0] == calls[1] == record.customer_digest


# --- checked against a trusted key only -----------------------------------------------------


def _forge(genuine: bytes, forger: FileKeyProvider, *, embed_key: bool) -> bytes:
    """The certificate with fewer things destroyed, re-signed by ``forger`` with its key (or
    its fingerprint) inside, as someone making a convincing fake would."""
    document = json.loads(genuine)
    body = document["certificate"]
    body["counts"]["fingers"] = 0
    public = forger.signing_public_key()
    body["installation_key_fingerprint"] = key_fingerprint(public)
    if embed_key:
        body["installation_public_key"] = base64.b64encode(public).decode()
    document["signature"] = base64.b64encode(forger.sign(canonical_json(body))).decode()
    return json.dumps(document).encode()


@pytest.mark.parametrize("embed_key", [True, False], ids=["key inside", "fingerprint inside"])
def test_a_forged_certificate_is_rejected_however_it_names_its_key(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path, embed_key: bool) -> None:
    _leaving(sessions, keyring)
    forger = FileKeyProvider.create(tmp_path / "forger.json")
    forged = _forge(_certificate(sessions, keyring, engine), forger, embed_key=embed_key)
    # The installation's own key, and its key as the facility published it: rejected.
    for check in (verify_certificate(forged, provider=keyring),
                  verify_certificate(forged, keyring.signing_public_key())):
        assert not check.valid
        assert "not issued by the installation you trust" in check.reason
    # Checked against nothing but itself: never valid.
    alone = verify_certificate(forged)
    assert not alone.valid and "a key inside the certificate proves nothing" in alone.reason


def test_a_certificate_of_another_installation_is_rejected(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path) -> None:
    _leaving(sessions, keyring)
    genuine = _certificate(sessions, keyring, engine)
    elsewhere = FileKeyProvider.create(tmp_path / "other-site.json")
    for check in (verify_certificate(genuine, provider=elsewhere),
                  verify_certificate(genuine, elsewhere.signing_public_key())):
        assert not check.valid and "not issued by the installation you trust" in check.reason
    assert verify_certificate(genuine, keyring.signing_public_key()).valid


def test_an_embedded_key_matching_the_trusted_one_does_not_excuse_a_bad_signature(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path) -> None:
    _leaving(sessions, keyring)
    document = json.loads(_certificate(sessions, keyring, engine))
    document["certificate"]["counts"]["fingers"] = 0
    forger = FileKeyProvider.create(tmp_path / "forger.json")
    document["signature"] = base64.b64encode(
        forger.sign(canonical_json(document["certificate"]))).decode()
    check = verify_certificate(json.dumps(document).encode(), provider=keyring)
    assert not check.valid and "signature does not match" in check.reason


# --- the customer can tell it is theirs -----------------------------------------------------


def test_the_customer_reference_confirms_the_certificate_and_another_does_not(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    reference = _leaving(sessions, keyring)
    with sessions() as session:
        other = session.scalars(select(Customer.reference).where(
            Customer.name == "Staying NV")).one()
    assert other is not None and other != reference
    certificate = _certificate(sessions, keyring, engine)
    public = keyring.signing_public_key()
    assert verify_certificate(certificate, public, customer_reference=reference).valid
    typed = reference.replace("-", " ").lower()  # as a person might type it
    assert verify_certificate(certificate, public, customer_reference=typed).valid
    wrong = verify_certificate(certificate, public, customer_reference=other)
    assert not wrong.valid and "about another customer" in wrong.reason
    garbled = verify_certificate(certificate, public, customer_reference="12345")
    assert not garbled.valid and "25 letters and digits" in garbled.reason
    body = json.loads(certificate)["certificate"]
    assert normalise_reference(reference) not in certificate.decode()  # only its digest
    assert body["customer_reference"]["digest"] not in (reference, other)


@pytest.mark.parametrize(("typed", "canonical"), [
    ("7k3qx-m2d9a-1eddn-qzdaz-fvc48", "7K3QXM2D9A1EDDNQZDAZFVC48"),
    ("7K3QX M2D9A 1EDDN QZDAZ FVC48", "7K3QXM2D9A1EDDNQZDAZFVC48"),
    ("7K3QX-M2D9A-IEDDN-QZDAZ-FVC4B", "7K3QXM2D9A1EDDNQZDAZFVC4B"),  # I read as 1
    ("OK3QX-M2D9A-1EDDN-QZDAZ-FVC48", "0K3QXM2D9A1EDDNQZDAZFVC48"),  # O read as 0
])
def test_a_reference_is_read_as_people_type_it(typed: str, canonical: str) -> None:
    assert normalise_reference(typed) == canonical


# --- the commands ---------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, db_path: Path, keyring: FileKeyProvider) -> str:
    path = tmp_path / "accessd.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "sqlite:///{db_path}"\n'
                    f'[keys]\nmaster_key_file = "{keyring.path}"\n')
    return str(path)


def test_public_key_prints_the_key_and_its_fingerprint_to_publish(
        config: str, keyring: FileKeyProvider, capsys: pytest.CaptureFixture[str]) -> None:
    public = keyring.signing_public_key()
    assert main(["--config", config, "public-key"]) == 0
    out = capsys.readouterr().out
    assert base64.b64encode(public).decode() in out and key_fingerprint(public) in out
    assert main(["--config", config, "public-key", "--format", "json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert base64.b64decode(facts["public_key"]) == public
    assert facts["fingerprint"] == key_fingerprint(public)
    assert main(["--config", config, "public-key", "--format", "pem"]) == 0
    assert capsys.readouterr().out == public_key_pem(public)


def test_a_customer_checks_its_certificate_with_the_published_key_and_its_reference(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = _leaving(sessions, keyring)
    certificate = tmp_path / "certificate.json"
    certificate.write_bytes(_certificate(sessions, keyring, engine))
    assert main(["--config", config, "public-key", "--format", "pem"]) == 0
    published = tmp_path / "published.pem"
    published.write_text(capsys.readouterr().out)
    elsewhere = ["--config", str(tmp_path / "nowhere.toml"), "verify-certificate",
                 str(certificate), "--public-key"]  # the customer has no keyring

    assert main([*elsewhere, str(published), "--customer-reference", reference]) == 0
    out = capsys.readouterr().out
    assert "VALID" in out and "issued for the customer holding this reference" in out
    assert key_fingerprint(keyring.signing_public_key()) in out
    assert "sensor at door main: confirmed wiped at" in out

    with sessions() as session:
        other = session.scalars(select(Customer.reference)).one()
    assert other is not None
    assert main([*elsewhere, str(published), "--customer-reference", other]) == 1
    assert "about another customer" in capsys.readouterr().err


def test_verify_certificate_rejects_a_forgery_on_the_installation_and_with_its_own_key(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _leaving(sessions, keyring)
    forger = FileKeyProvider.create(tmp_path / "forger.json")
    forged = tmp_path / "forged.json"
    forged.write_bytes(_forge(_certificate(sessions, keyring, engine), forger, embed_key=True))
    assert main(["--config", config, "verify-certificate", str(forged)]) == 1
    assert "not issued by the installation you trust" in capsys.readouterr().err
    published = base64.b64encode(keyring.signing_public_key()).decode()
    assert main(["--config", config, "verify-certificate", str(forged),
                 "--public-key", published]) == 1
    assert "INVALID" in capsys.readouterr().err


def test_the_ledger_anchor_of_a_certificate_is_the_seal_of_its_ledger_entry(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _leaving(sessions, keyring)
    body = json.loads(_certificate(sessions, keyring, engine))["certificate"]
    with sessions() as session:
        record = session.scalars(select(PurgeRecord)).one()
        seal = latest_seal(session, record)
    assert seal is not None and seal.seq > body["ledger"]["seal"]  # sealed after it was signed


def test_a_certificate_of_the_first_format_is_checked_against_the_trusted_key_only(
        keyring: FileKeyProvider, tmp_path: Path) -> None:
    public = keyring.signing_public_key()
    body = {"format": "accessd-purge-certificate", "version": 1, "statement": "destroyed",
            "customer_digest": "c" * 64, "contract_end": "2025-06-30", "grace_days": 0,
            "due_at": "2025-06-30T22:00:00Z", "started_at": "2025-07-01T00:00:00Z",
            "completed_at": "2025-07-01T00:00:01Z", "counts": {"persons": 1},
            "installation_key_id": key_id(public),
            "installation_public_key": base64.b64encode(public).decode()}
    old = json.dumps({"certificate": body, "algorithm": "Ed25519", "signature": base64.b64encode(
        keyring.sign(canonical_json(body))).decode()}).encode()
    assert verify_certificate(old, provider=keyring).valid
    elsewhere = FileKeyProvider.create(tmp_path / "other-site.json")
    check = verify_certificate(old, provider=elsewhere)
    assert not check.valid and f"made by installation key {key_id(public)}" in check.reason
    unmatched = verify_certificate(old, public, customer_reference="7K3QX-M2D9A-1EDDN-QZDAZ-FVC48")
    assert not unmatched.valid and "carries no customer reference" in unmatched.reason
