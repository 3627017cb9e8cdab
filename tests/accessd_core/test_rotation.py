"""Master key rotation: data keys rewrapped, templates untouched and readable, old key gone."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import (
    EncryptedTemplate,
    FileKeyProvider,
    KeyFileError,
    SealedSecret,
    WrappedDataKey,
    decrypt_template,
    open_staff_secret,
    rotate_master_key,
    seal_staff_secret,
    unwrap_data_key,
)
from accessd.models import DataKey, Finger, StaffRole, StaffUser, new_public_id
from tests.accessd_core.factories import add_customer, add_person_with_finger, template_for

TOTP_SEED = b"JBSWY3DPEHPK3PXP"


def populate(sessions: sessionmaker[Session], keys: FileKeyProvider) -> None:
    with sessions.begin() as session:
        for company, people in (("Acme", ["Ada One", "Alan Two"]), ("Beta", ["Bea Three"])):
            customer = add_customer(session, keys, company)
            for name in people:
                add_person_with_finger(session, keys, customer, name)
        user = StaffUser(public_id=new_public_id(), username="admin", password_hash="x",
                         role=StaffRole.ADMIN)  # fmt: skip
        sealed = seal_staff_secret(keys, TOTP_SEED, user_id=user.public_id)
        user.totp_key_id, user.totp_secret_ciphertext = sealed.key_id, sealed.ciphertext
        session.add(user)


def templates(session: Session) -> dict[int, tuple[bytes, bytes]]:
    rows = session.scalars(select(Finger))
    return {f.id: (f.template_nonce, f.template_ciphertext) for f in rows}


def read_everything(session: Session, keys: FileKeyProvider) -> None:
    for finger in session.scalars(select(Finger)):
        data_key_row = finger.data_key
        customer = data_key_row.customer
        data_key = unwrap_data_key(
            keys,
            WrappedDataKey(data_key_row.master_key_id, data_key_row.wrapped_key),
            customer_id=customer.public_id,
        )
        plaintext = decrypt_template(
            data_key,
            EncryptedTemplate(finger.template_nonce, finger.template_ciphertext),
            customer_id=customer.public_id,
            person_id=finger.person.public_id,
            finger_id=finger.public_id,
        )
        assert plaintext == template_for(finger.person.name)
    user = session.scalars(select(StaffUser)).one()
    assert user.totp_key_id is not None and user.totp_secret_ciphertext is not None
    sealed = SealedSecret(user.totp_key_id, user.totp_secret_ciphertext)
    assert open_staff_secret(keys, sealed, user_id=user.public_id) == TOTP_SEED


def test_rotation_rewraps_data_keys_leaves_templates_and_destroys_the_old_key(
    sessions: sessionmaker[Session], keyring: FileKeyProvider
) -> None:
    populate(sessions, keyring)
    old_key = keyring.active_key_id
    with sessions() as session:
        before = templates(session)
        old_wrapped = [
            (d.customer.public_id, WrappedDataKey(d.master_key_id, d.wrapped_key))
            for d in session.scalars(select(DataKey))
        ]

    result = rotate_master_key(keyring, sessions)

    assert result.data_keys_rewrapped == 2
    assert result.staff_secrets_rewrapped == 1
    assert result.retired_key_ids == (old_key,)
    assert result.kept_key_ids == ()
    on_disk = json.loads(keyring.path.read_text())
    assert [k["id"] for k in on_disk["master_keys"]] == [result.new_key_id]
    assert on_disk["active_master_key"] == result.new_key_id
    with sessions() as session:
        assert templates(session) == before
        assert set(session.scalars(select(DataKey.master_key_id))) == {result.new_key_id}
        read_everything(session, FileKeyProvider(keyring.path))
    customer_id, wrapped = old_wrapped[0]
    with pytest.raises(KeyFileError, match=f"master key {old_key} is not in key file"):
        unwrap_data_key(keyring, wrapped, customer_id=customer_id)


def test_a_rotation_interrupted_after_adding_the_key_is_finished_by_the_next(
    sessions: sessionmaker[Session], keyring: FileKeyProvider
) -> None:
    populate(sessions, keyring)
    first = keyring.active_key_id
    interrupted = keyring.add_master_key()  # then the power went
    result = rotate_master_key(keyring, sessions)
    assert set(result.retired_key_ids) == {first, interrupted}
    assert keyring.key_ids() == (result.new_key_id,)
    with sessions() as session:
        read_everything(session, keyring)
