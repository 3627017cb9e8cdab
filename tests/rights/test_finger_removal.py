"""Removing one finger, and what a consent withdrawal would delete before it is confirmed."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.backup.archive import create_backup, restore_backup
from accessd.config import Settings
from accessd.crypto import FileKeyProvider
from accessd.errors import NotFoundError
from accessd.models import (
    CommandKind,
    Consent,
    Credential,
    DeviceCommand,
    ErasureLedgerEntry,
    Finger,
    FingerLabel,
    LedgerAction,
    Person,
    SensorSlot,
)
from accessd.rights.actions import (
    FINGER_REMOVED,
    preview_withdrawal,
    public_id_digest,
    remove_finger,
    withdraw_consent,
)
from tests.rights.seed import World

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def _labels(sessions: sessionmaker[Session], person_id: int) -> set[FingerLabel]:
    with sessions() as session:
        return set(session.scalars(select(Finger.label).where(Finger.person_id == person_id)))


def test_removing_one_finger_keeps_the_others_the_consent_and_the_way_in(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions.begin() as session:
        ada = session.get_one(Person, world.ada.id)
        credential = ada.credential
        done = remove_finger(session, ada, "left_index", "operator1", provider=keys, now=NOW)
    assert (done.label, done.fingers_left) == (FingerLabel.LEFT_INDEX, 1)
    assert done.doors_asked_to_resync == len(world.door_ids)
    assert _labels(sessions, world.ada.id) == {FingerLabel.RIGHT_INDEX}
    with sessions() as session:
        ada = session.get_one(Person, world.ada.id)
        assert ada.credential is credential
        assert session.scalars(select(Consent).where(
            Consent.person_id == ada.id, Consent.withdrawn_at.is_(None))).one()
        (entry,) = session.scalars(select(ErasureLedgerEntry)).all()
        assert entry.action is LedgerAction.DELETE_FINGER
        assert entry.details["why"] == FINGER_REMOVED
        assert entry.finger_digest in {public_id_digest(keys, f)
                                       for f in world.ada.finger_public_ids}
        left = session.scalars(select(Finger.id).where(Finger.person_id == ada.id)).all()
        assert set(session.scalars(select(SensorSlot.finger_id).where(
            SensorSlot.finger_id.in_(world.ada.finger_ids)))) == set(left)
        assert session.scalar(select(func.count()).select_from(DeviceCommand).where(
            DeviceCommand.kind == CommandKind.RESYNC)) == len(world.door_ids)


@pytest.mark.parametrize("label", ["left_thumb", "nose"])
def test_removing_a_finger_that_is_not_enrolled_is_refused_and_nothing_changes(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider,
        label: str) -> None:
    with sessions.begin() as session, pytest.raises(NotFoundError):
        remove_finger(session, session.get_one(Person, world.ada.id), label, "operator1",
                      provider=keys)
    assert len(_labels(sessions, world.ada.id)) == 2
    with sessions() as session:
        assert session.scalars(select(ErasureLedgerEntry)).all() == []


def test_a_restore_removes_a_removed_finger_again(
        world: World, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        keys: FileKeyProvider) -> None:
    path = create_backup(settings, engine, keys, NOW)
    with sessions.begin() as session:
        remove_finger(session, session.get_one(Person, world.ada.id), "right_index",
                      "operator1", provider=keys, now=NOW)
    restore_backup(path, settings, engine, keys, daemon_stopped=True)
    assert _labels(sessions, world.ada.id) == {FingerLabel.LEFT_INDEX}


def test_the_withdrawal_preview_counts_what_the_withdrawal_then_deletes(
        world: World, sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions() as session:
        preview = preview_withdrawal(session, session.get_one(Person, world.ada.id))
    with sessions.begin() as session:
        done = withdraw_consent(session, session.get_one(Person, world.ada.id), "operator1",
                                provider=keys, now=NOW)
    assert (preview.consents, preview.fingers) == (done.consents_withdrawn, done.fingers_deleted)
    assert preview.credential_after is done.credential is Credential.PIN
    assert preview.doors == done.doors_asked_to_resync and preview.possible
    with sessions() as session:
        after = preview_withdrawal(session, session.get_one(Person, world.ada.id))
    assert not after.possible and after.doors == 0
