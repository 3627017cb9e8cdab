"""The erasure ledger and the purge records are tamper-evident: one byte changed behind the
ledger's back, as someone with write access to the database would, and `verify-log` and
`doctor` name the row."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from accessd.cli.main import main
from accessd.crypto import FileKeyProvider
from accessd.models import ErasureLedgerEntry, LedgerAction, LedgerSeal, Person, PurgeRecord
from accessd.privacy import ledger
from accessd.privacy.ledger import verify_ledger
from accessd.rights.actions import erase_person, withdraw_consent
from tests.privacy.seed import add_customer, add_door, enrol, purge_completely

NOW = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
EARLIER = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)


def _history(sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    """An erasure, a consent withdrawal and a purge: three ledger entries, one purge record."""
    with sessions.begin() as session:
        leaving = add_customer(session, "Leaving BV", contract_end=dt.date(2025, 6, 30))
        staying = add_customer(session, "Staying NV")
        add_door(session, "main", [leaving, staying])
        enrol(session, keyring, leaving, "Lea Vink")
        erased, _ = enrol(session, keyring, staying, "Eric Weg")
        withdrawn, _ = enrol(session, keyring, staying, "Wim Terug")
    with sessions.begin() as session:
        erase_person(session, session.get_one(Person, erased.id), "operator1",
                     provider=keyring, now=EARLIER)
        withdraw_consent(session, session.get_one(Person, withdrawn.id), "operator1",
                         provider=keyring, now=EARLIER)
    [record] = purge_completely(sessions, keyring, engine, NOW)
    assert record.certificate is not None


def _entry_id(sessions: sessionmaker[Session], action: LedgerAction) -> int:
    with sessions() as session:
        return session.scalars(select(ErasureLedgerEntry.id)
                               .where(ErasureLedgerEntry.action == action)).one()


def _flip_first(column: str) -> str:
    """SQL for ``column`` with its first character changed: one byte."""
    return (f"CASE substr({column}, 1, 1) WHEN '0' THEN '1' ELSE '0' END "
            f"|| substr({column}, 2)")


def _report(sessions: sessionmaker[Session], keyring: FileKeyProvider) -> ledger.LedgerReport:
    with sessions() as session:
        return verify_ledger(session, keyring.signing_public_key())


def test_every_erasure_withdrawal_and_purge_is_sealed_and_verifies(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _history(sessions, keyring, engine)
    report = _report(sessions, keyring)
    assert report.ok, report.describe()
    # The genesis, three ledger entries, and the purge record at each of its three states.
    assert (report.seals, report.entries, report.records, report.legacy) == (7, 3, 1, 0)
    with sessions() as session:
        seals = session.scalars(select(LedgerSeal).order_by(LedgerSeal.seq)).all()
    assert [s.subject for s in seals] == ["genesis", "erasure_ledger", "erasure_ledger",
                                          "purge_records", "erasure_ledger", "purge_records",
                                          "purge_records"]
    assert all(s.prev_digest == p.digest for p, s in itertools.pairwise(seals))
    assert {s.key_id for s in seals} == {ledger.key_id(keyring.signing_public_key())}


# One byte changed in SQL, as an attacker with database access would: (table, row, statement).
ROW_ATTACKS: list[tuple[str, LedgerAction | None, str]] = [
    ("erasure_ledger", LedgerAction.PURGE_CUSTOMER,
     f"UPDATE erasure_ledger SET customer_digest = {_flip_first('customer_digest')} "
     "WHERE id = :id"),
    ("erasure_ledger", LedgerAction.ERASE_PERSON,
     "UPDATE erasure_ledger SET details = replace(details, '\"fingers\": 1', "
     "'\"fingers\": 0') WHERE id = :id"),
    ("erasure_ledger", LedgerAction.ERASE_PERSON,
     "UPDATE erasure_ledger SET action = 'delete_finger' WHERE id = :id"),
    ("purge_records", None, f"UPDATE purge_records SET customer_digest = "
                            f"{_flip_first('customer_digest')}"),
    ("purge_records", None, "UPDATE purge_records SET grace_days = grace_days + 1"),
    ("purge_records", None, "UPDATE purge_records SET counts = replace(counts, "
                            "'\"persons\": 1', '\"persons\": 0')"),
]


@pytest.mark.parametrize(("table", "action", "statement"), ROW_ATTACKS)
def test_a_ledger_row_changed_in_sql_is_named(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        table: str, action: LedgerAction | None, statement: str) -> None:
    _history(sessions, keyring, engine)
    row_id = _entry_id(sessions, action) if action is not None else 1
    with engine.begin() as conn:
        assert conn.execute(text(statement), {"id": row_id}).rowcount == 1
    report = _report(sessions, keyring)
    assert not report.ok
    first = report.problems[0]
    assert (first.table, first.row_id) == (table, row_id)
    assert "altered after it was sealed" in first.message


def _forge_seal(conn: Connection, seq: int, provider: FileKeyProvider) -> None:
    """Re-sign seal ``seq`` over a changed row with another key, as a forger would."""
    seal = conn.execute(select(LedgerSeal).where(LedgerSeal.seq == seq)).one()
    stand_in = LedgerSeal(seq=seal.seq, sealed_at=seal.sealed_at, subject=seal.subject,
                          subject_id=seal.subject_id, legacy=seal.legacy,
                          content_digest="f" * 64, prev_digest=seal.prev_digest)
    digest = ledger.seal_digest(stand_in)
    signature = provider.sign(b"accessd/ledger-seal/v1 signature\n" + bytes.fromhex(digest))
    conn.execute(text("UPDATE ledger_seals SET content_digest = :c, digest = :d, "
                      "signature = :s WHERE seq = :seq"),
                 {"c": "f" * 64, "d": digest, "s": base64.b64encode(signature).decode(),
                  "seq": seq})


CHAIN_ATTACKS: list[tuple[str, Callable[[Connection, FileKeyProvider], object], str, str]] = [
    ("a row deleted", lambda c, _: c.execute(text(
        "DELETE FROM erasure_ledger WHERE action = 'erase_person'")),
     "erasure_ledger #1", "removed: it was sealed"),
    ("a row inserted behind the ledger's back", lambda c, _: c.execute(text(
        "INSERT INTO erasure_ledger (recorded_at, action, customer_digest, details) "
        "VALUES ('2025-07-02 00:00:00.000000', 'erase_person', :d, '{}')"), {"d": "a" * 64}),
     "erasure_ledger #4", "not sealed"),
    ("a seal deleted", lambda c, _: c.execute(text("DELETE FROM ledger_seals WHERE seq = 2")),
     "purge_records #1", "seal #3 follows seal #1"),
    ("a seal's digest edited", lambda c, _: c.execute(text(
        f"UPDATE ledger_seals SET content_digest = {_flip_first('content_digest')} "
        "WHERE seq = 1")), "erasure_ledger #1", "was altered"),
    ("a seal re-signed with another key", lambda c, other: _forge_seal(c, 1, other),
     "erasure_ledger #1", "not signed by this installation's key"),
    ("the genesis deleted", lambda c, _: c.execute(text(
        "DELETE FROM ledger_seals WHERE seq = 0")), "ledger_seals #0", "genesis"),
]


@pytest.mark.parametrize(("what", "attack", "named", "message"), CHAIN_ATTACKS,
                         ids=[a[0] for a in CHAIN_ATTACKS])
def test_rows_and_seals_removed_added_or_forged_are_named(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path, what: str, attack: Callable[[Connection, FileKeyProvider], object],
        named: str, message: str) -> None:
    _history(sessions, keyring, engine)
    other = FileKeyProvider.create(tmp_path / "forger.json")
    with engine.begin() as conn:
        attack(conn, other)
    report = _report(sessions, keyring)
    assert not report.ok, what
    assert str(report.problems[0]).startswith(named), report.problems
    assert message in str(report.problems[0]), report.problems


@pytest.fixture
def config(tmp_path: Path, db_path: Path, keyring: FileKeyProvider) -> str:
    path = tmp_path / "accessd.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "sqlite:///{db_path}"\n'
                    f'[keys]\nmaster_key_file = "{keyring.path}"\n'
                    f'[sensor]\nport = "{tmp_path / "no-sensor"}"\n'
                    f'[door]\nport = "{tmp_path / "no-door"}"\n')
    return str(path)


def test_verify_log_and_doctor_fail_naming_a_changed_ledger_entry(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine, config: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _history(sessions, keyring, engine)
    assert main(["--config", config, "verify-log"]) == 0
    out = capsys.readouterr().out
    assert "erasure ledger: 3 ledger entries and 1 purge records in 7 signed seals" in out
    main(["--config", config, "doctor"])  # the sensor and door ports do not exist here
    assert "ok    erasure ledger and purge records: 3 ledger entries" in capsys.readouterr().out

    entry = _entry_id(sessions, LedgerAction.PURGE_CUSTOMER)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE erasure_ledger SET customer_digest = "
                          f"{_flip_first('customer_digest')} WHERE id = :id"), {"id": entry})
    assert main(["--config", config, "verify-log"]) == 1
    captured = capsys.readouterr()
    assert f"erasure ledger: erasure_ledger #{entry}: altered after it was sealed" in captured.out
    assert "erasure ledger: erasure_ledger" in captured.err
    assert main(["--config", config, "doctor"]) == 1
    assert (f"FAIL  erasure ledger and purge records: erasure_ledger #{entry}: altered"
            in capsys.readouterr().out)


def test_a_purge_record_changed_in_sql_fails_verify_log(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine, config: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _history(sessions, keyring, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE purge_records SET status = 'started'"))
    assert main(["--config", config, "verify-log"]) == 1
    assert "purge_records #1: altered after it was sealed" in capsys.readouterr().out


def test_a_writer_that_bypasses_the_ledger_is_caught(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _history(sessions, keyring, engine)
    with sessions.begin() as session:
        session.add(ErasureLedgerEntry(action=LedgerAction.ERASE_PERSON,
                                       customer_digest="b" * 64, details={}))
    assert "not sealed" in _report(sessions, keyring).describe()


def test_the_ledger_head_only_grows_and_each_state_of_a_purge_is_sealed_anew(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _history(sessions, keyring, engine)
    with sessions() as session:
        record = session.scalars(select(PurgeRecord)).one()
        sealed = session.scalars(select(LedgerSeal).where(
            LedgerSeal.subject == "purge_records").order_by(LedgerSeal.seq)).all()
        assert ledger.latest_seal(session, record) == sealed[-1]
    assert sealed[-1].content_digest == ledger.content_digest(record)
    assert len({s.content_digest for s in sealed}) == 3  # started, awaiting doors, completed
