"""Erasure, consent withdrawal and restriction: what goes, what stays, and what is left on disk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import FileKeyProvider
from accessd.db import checkpoint_wal
from accessd.door.directory import person_view
from accessd.errors import PersonStateError, RightsError
from accessd.history.chain import verify_chains
from accessd.models import (
    AccessEvent,
    CommandKind,
    Consent,
    Credential,
    DeviceCommand,
    ErasureLedgerEntry,
    Finger,
    LedgerAction,
    Person,
    SensorSlot,
)
from accessd.rights.actions import (
    erase_person,
    lift_restriction,
    public_id_digest,
    restrict,
    withdraw_consent,
)
from accessd.rights.requests import record_request
from tests.rights.seed import World, raw_database_bytes

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def _erase_ada(sessions: sessionmaker[Session], keys: FileKeyProvider, world: World) -> None:
    with sessions.begin() as session:
        erase_person(session, session.get_one(Person, world.ada.id), "operator1", provider=keys,
                     now=NOW)


def test_erasure_removes_the_person_fingers_slots_and_consents(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions.begin() as session:
        summary = erase_person(session, session.get_one(Person, world.ada.id), "operator1",
                               provider=keys, now=NOW)

    assert (summary.fingers, summary.consents, summary.access_events_anonymised) == (2, 1, 4)
    with sessions() as session:
        assert session.get(Person, world.ada.id) is None
        assert session.scalars(select(Finger).where(Finger.id.in_(world.ada.finger_ids))).all() \
            == []
        assert session.scalars(select(SensorSlot).where(
            SensorSlot.finger_id.in_(world.ada.finger_ids))).all() == []
        assert session.scalars(select(Consent).where(Consent.person_id == world.ada.id)).all() \
            == []
        assert session.get(Person, world.bob.id) is not None  # nobody else is touched
        assert session.scalar(select(func.count()).select_from(Finger)) == 2


def test_erasure_anonymises_the_history_and_the_chains_still_verify(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(AccessEvent))
    _erase_ada(sessions, keys, world)

    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AccessEvent)) == before
        anonymous = session.scalars(select(AccessEvent).where(
            AccessEvent.customer_id == world.acme_id, AccessEvent.subject_digest.is_not(None),
            AccessEvent.subject_salt.is_(None))).all()
        assert len(anonymous) == 4 and all(e.person_id is None for e in anonymous)
        assert list(verify_chains(session)) == []


def test_erasure_asks_every_door_to_resync(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    _erase_ada(sessions, keys, world)

    with sessions() as session:
        doors = session.scalars(select(DeviceCommand.door_id).where(
            DeviceCommand.kind == CommandKind.RESYNC)).all()
    assert sorted(doors) == sorted(world.door_ids)


def test_erasure_leaves_an_anonymised_ledger_entry(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    _erase_ada(sessions, keys, world)

    with sessions() as session:
        entry = session.scalars(select(ErasureLedgerEntry)).one()
    assert entry.action == LedgerAction.ERASE_PERSON
    assert entry.recorded_at == NOW
    assert entry.person_digest == public_id_digest(keys, world.ada.public_id)
    assert entry.customer_digest == public_id_digest(keys, world.acme_public_id)
    assert entry.details["fingers"] == 2 and entry.details["history"] == "anonymised"
    text = repr(entry.details) + entry.person_digest + entry.customer_digest
    for canary in ("CANARY", "canary", str(world.ada.public_id), world.ada.public_id.hex):
        assert canary not in text


def test_erasure_keeps_the_request_record_but_unlinks_it(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    from accessd.models import DataSubjectRequest, RequestKind

    with sessions.begin() as session:
        request_id = record_request(session, RequestKind.ERASURE, dt.date(2025, 5, 30),
                                    requester_name="Acme HR desk",
                                    person=session.get_one(Person, world.ada.id)).id
    _erase_ada(sessions, keys, world)

    with sessions() as session:
        request = session.get_one(DataSubjectRequest, request_id)
    assert request.person_id is None and request.customer_id == world.acme_id


def test_erasure_leaves_no_personal_data_in_the_raw_database_files(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider, engine: Engine,
        db_path: Path) -> None:
    with sessions() as session:
        salts = session.scalars(select(AccessEvent.subject_salt).where(
            AccessEvent.person_id == world.ada.id)).all()
    assert len(salts) == 4 and all(salts)
    raw = raw_database_bytes(db_path)
    canaries = [b"CANARY-ADA", b"ada.canary@acme.example", world.ada.public_id.hex.encode(),
                *world.ada.ciphertexts, *(s for s in salts if s)]
    assert all(canary in raw for canary in canaries)  # the test would see them

    _erase_ada(sessions, keys, world)
    assert not checkpoint_wal(engine).busy

    raw = raw_database_bytes(db_path)
    for canary in canaries:
        assert canary not in raw
    assert b"CANARY-BOB" in raw and b"CANARY-CAROL" in raw


def test_withdrawing_consent_deletes_the_fingers_at_once(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions.begin() as session:
        summary = withdraw_consent(session, session.get_one(Person, world.ada.id), "operator1",
                                   provider=keys, now=NOW)

    assert (summary.consents_withdrawn, summary.fingers_deleted) == (1, 2)
    assert summary.credential == Credential.PIN
    with sessions() as session:
        ada = session.get_one(Person, world.ada.id)
        assert not person_view(ada).uses_finger and person_view(ada).uses_pin
        assert session.scalars(select(Finger).where(Finger.person_id == ada.id)).all() == []
        assert session.scalars(select(SensorSlot).where(
            SensorSlot.finger_id.in_(world.ada.finger_ids))).all() == []
        consent = session.scalars(select(Consent).where(Consent.person_id == ada.id)).one()
        assert consent.withdrawn_at == NOW and consent.withdrawal_recorded_by == "operator1"
        entries = session.scalars(select(ErasureLedgerEntry)).all()
        assert {e.action for e in entries} == {LedgerAction.DELETE_FINGER}
        assert {e.finger_digest for e in entries} == {
            public_id_digest(keys, f) for f in world.ada.finger_public_ids}
        assert session.scalar(select(func.count()).select_from(DeviceCommand).where(
            DeviceCommand.kind == CommandKind.RESYNC)) == len(world.door_ids)


def test_a_finger_only_person_who_withdraws_is_let_in_by_staff(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions.begin() as session:
        bob = session.get_one(Person, world.bob.id)
        bob.credential = Credential.FINGER
        assert withdraw_consent(session, bob, "operator1", provider=keys).credential == \
            Credential.NONE


def test_withdrawing_twice_is_refused_with_nothing_to_do(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions.begin() as session:
        withdraw_consent(session, session.get_one(Person, world.bob.id), "operator1",
                         provider=keys)
    with sessions.begin() as session, pytest.raises(RightsError, match="nothing to withdraw"):
        withdraw_consent(session, session.get_one(Person, world.bob.id), "operator1",
                         provider=keys)


def test_restriction_keeps_the_data_and_can_be_lifted(
        world: World, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        restrict(session, session.get_one(Person, world.carol.id), "accuracy contested",
                 now=NOW)
    with sessions() as session:
        carol = session.get_one(Person, world.carol.id)
        assert carol.restricted and carol.restricted_since == NOW
        assert person_view(carol).restricted
        assert len(session.scalars(select(Finger).where(Finger.person_id == carol.id)).all()) \
            == 1
    with sessions.begin() as session:
        lift_restriction(session, session.get_one(Person, world.carol.id))
        with pytest.raises(PersonStateError):
            lift_restriction(session, session.get_one(Person, world.carol.id))
    with sessions() as session:
        assert not session.get_one(Person, world.carol.id).restricted
