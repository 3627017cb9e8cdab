"""Purge at contract end: the right moment, everything gone, an anonymised signed record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.fingers.sealed import open_sealed
from accessd.history.chain import verify_chains
from accessd.models import (
    AccessEvent,
    CommandKind,
    Consent,
    Customer,
    DataKey,
    DeviceCommand,
    ErasureLedgerEntry,
    EventChain,
    Finger,
    Grant,
    LedgerAction,
    LedgerSeal,
    Person,
    PurgeRecord,
    PurgeStatus,
)
from accessd.privacy.purge import (
    customer_digest,
    purge_due_at,
    purge_plan,
    run_due_purges,
    verify_certificate,
)
from accessd.zones.grants import GrantTerms, grant_zone
from accessd.zones.places import add_zone
from tests.privacy.seed import access, add_customer, add_door, enrol, purge_completely

UTC = dt.UTC
AMS = "Europe/Amsterdam"


@pytest.mark.parametrize(("end", "grace", "due"), [
    (dt.date(2025, 1, 31), 0, dt.datetime(2025, 1, 31, 23, 0, tzinfo=UTC)),  # CET
    (dt.date(2025, 6, 30), 0, dt.datetime(2025, 6, 30, 22, 0, tzinfo=UTC)),  # CEST
    (dt.date(2025, 6, 30), 3, dt.datetime(2025, 7, 3, 22, 0, tzinfo=UTC)),
    (dt.date(2025, 3, 29), 0, dt.datetime(2025, 3, 29, 23, 0, tzinfo=UTC)),  # DST next night
    (dt.date(2025, 12, 31), 90, dt.datetime(2026, 3, 31, 22, 0, tzinfo=UTC)),
])
def test_purge_is_due_at_the_local_midnight_after_the_last_day_plus_grace(
        end: dt.date, grace: int, due: dt.datetime) -> None:
    assert purge_due_at(end, grace, AMS) == due


def _seed_two(sessions: sessionmaker[Session], keyring: FileKeyProvider, *,
              end: dt.date = dt.date(2025, 6, 30), grace: int = 2) -> tuple[int, int]:
    with sessions.begin() as session:
        leaving = add_customer(session, "Leaving BV", contract_end=end, grace_days=grace)
        staying = add_customer(session, "Staying NV")
        add_door(session, "main", [leaving, staying])
        add_door(session, "cage-7")
        add_zone(session, "cage-7", "cage", parent="site")
        for customer, who in ((leaving, "Lea Vink"), (staying, "Stan Berg")):
            person, _ = enrol(session, keyring, customer, who)
            # Grants of the customer and the person's own, with a schedule and dates.
            grant_zone(session, customer, "site", GrantTerms(schedule="mon-fri 07:00-19:00",
                                                             valid_until=dt.date(2030, 1, 1)))
            grant_zone(session, customer, "cage-7", person=person)
            for minute in range(5):
                access(session, customer, person, dt.datetime(2025, 6, 1, 9, minute, tzinfo=UTC))
        return leaving.id, staying.id


def _customer_ids(session: Session) -> set[int]:
    return set(session.scalars(select(Customer.id)))


def test_a_customer_is_not_purged_before_its_last_day_plus_grace_has_ended(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    leaving, staying = _seed_two(sessions, keyring)
    due = purge_due_at(dt.date(2025, 6, 30), 2, AMS)
    assert due == dt.datetime(2025, 7, 2, 22, 0, tzinfo=UTC)
    for early in (dt.datetime(2025, 6, 30, 23, 0, tzinfo=UTC), due - dt.timedelta(microseconds=1)):
        assert run_due_purges(sessions, keyring, engine, early, site_timezone=AMS) == []
    with sessions() as session:
        assert _customer_ids(session) == {leaving, staying}
    records = purge_completely(sessions, keyring, engine, due, site_timezone=AMS)
    assert [r.status for r in records] == [PurgeStatus.COMPLETED]
    with sessions() as session:
        assert _customer_ids(session) == {staying}


def test_a_purge_removes_every_row_of_the_customer_and_keeps_the_others(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    leaving, staying = _seed_two(sessions, keyring)
    run_due_purges(sessions, keyring, engine, dt.datetime(2025, 8, 1, tzinfo=UTC))
    with sessions() as session:
        for model in (Person, Finger, Consent, AccessEvent, DataKey, EventChain, Grant):
            column = model.customer_id  # type: ignore[attr-defined]
            assert session.scalar(select(func.count()).where(column == leaving)) == 0, model
        # The staying customer keeps its grants (and its person's own) untouched.
        assert session.scalar(select(func.count()).where(Grant.customer_id == staying)) == 2
        customer = session.get_one(Customer, staying)
        assert customer.data_key is not None
        for person in customer.persons:
            for finger in person.fingers:
                assert open_sealed(keyring, finger, person, customer, customer.data_key)
        assert list(verify_chains(session)) == []
        assert session.scalar(select(func.count()).select_from(AccessEvent)) == 5
        resyncs = session.scalars(select(DeviceCommand).where(
            DeviceCommand.kind == CommandKind.RESYNC)).all()
        assert len(resyncs) == 2  # every door, not only those the customer used


def test_a_second_run_finds_nothing_more_to_do(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine) -> None:
    _seed_two(sessions, keyring)
    now = dt.datetime(2025, 8, 1, tzinfo=UTC)
    assert len(run_due_purges(sessions, keyring, engine, now)) == 1
    assert run_due_purges(sessions, keyring, engine, now) == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(PurgeRecord)) == 1
        assert session.scalar(select(func.count()).select_from(ErasureLedgerEntry)) == 1


def test_the_dry_run_lists_every_customer_with_its_dates_and_counts(
        sessions: sessionmaker[Session], keyring: FileKeyProvider) -> None:
    _seed_two(sessions, keyring)
    with sessions.begin() as session:
        add_customer(session, "Later BV", contract_end=dt.date(2026, 1, 31), grace_days=30)
    now = dt.datetime(2025, 7, 10, tzinfo=UTC)
    with sessions() as session:
        plan = purge_plan(session, now, site_timezone=AMS)
    assert [(p.name, p.contract_end, p.grace_days, p.due_at, p.due) for p in plan] == [
        ("Leaving BV", dt.date(2025, 6, 30), 2, dt.datetime(2025, 7, 2, 22, tzinfo=UTC), True),
        ("Later BV", dt.date(2026, 1, 31), 30, dt.datetime(2026, 3, 2, 23, tzinfo=UTC), False),
        ("Staying NV", None, 0, None, False),
    ]
    assert plan[0].counts == {"persons": 1, "fingers": 1, "consents": 1, "access_events": 5,
                              "data_keys": 1}


def test_the_purge_record_ledger_and_certificate_hold_no_personal_data(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path) -> None:
    leaving, _ = _seed_two(sessions, keyring)
    with sessions() as session:
        customer = session.get_one(Customer, leaving)
        secrets_of_it = [customer.name, customer.public_id.hex, str(customer.public_id)]
        for person in customer.persons:
            secrets_of_it += [person.name, person.email or "", person.public_id.hex]
        digest = customer_digest(keyring, customer.public_id)
    [record] = purge_completely(sessions, keyring, engine, dt.datetime(2025, 8, 1, tzinfo=UTC),
                                certificate_dir=tmp_path / "certs")
    assert record.customer_digest == digest
    assert record.counts == {"persons": 1, "fingers": 1, "consents": 1, "access_events": 5,
                             "data_keys": 1}
    with sessions() as session:
        [entry] = session.scalars(select(ErasureLedgerEntry)).all()
        stored = session.get_one(PurgeRecord, record.id)
        seals = session.scalars(select(LedgerSeal)).all()
    assert entry.action is LedgerAction.PURGE_CUSTOMER and entry.customer_digest == digest
    assert entry.person_digest is None
    every_text = json.dumps([
        {c.name: str(getattr(stored, c.name)) for c in PurgeRecord.__table__.columns},
        {c.name: str(getattr(entry, c.name)) for c in ErasureLedgerEntry.__table__.columns},
        *({c.name: str(getattr(seal, c.name)) for c in LedgerSeal.__table__.columns}
          for seal in seals),
    ]) + "".join(p.read_text() for p in (tmp_path / "certs").iterdir())
    for secret in secrets_of_it:
        assert secret not in every_text


def test_the_certificate_verifies_and_a_tampered_one_does_not(
        sessions: sessionmaker[Session], keyring: FileKeyProvider, engine: Engine,
        tmp_path: Path) -> None:
    _seed_two(sessions, keyring)
    [record] = purge_completely(sessions, keyring, engine, dt.datetime(2025, 8, 1, tzinfo=UTC),
                                certificate_dir=tmp_path / "certs")
    [path] = (tmp_path / "certs").iterdir()
    assert path.read_text() == record.certificate
    check = verify_certificate(path, provider=keyring)
    assert check.valid, check.reason
    assert check.body is not None and check.body["counts"]["access_events"] == 5
    assert verify_certificate(path.read_bytes(), keyring.signing_public_key()).valid

    document = json.loads(path.read_text())
    document["certificate"]["counts"]["access_events"] = 4
    tampered = verify_certificate(json.dumps(document).encode(), provider=keyring)
    assert not tampered.valid and "altered" in tampered.reason

    other = FileKeyProvider.create(tmp_path / "other-keyring.json")
    foreign = verify_certificate(path, provider=other)
    assert not foreign.valid and "not issued by the installation you trust" in foreign.reason
    assert not verify_certificate(path).valid  # nothing to trust: never "valid"
    assert not verify_certificate(b"{not json", provider=keyring).valid
