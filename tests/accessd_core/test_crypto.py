"""Keys and encryption: the keyring file, envelope encryption bound to rows, master key rotation."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from accessd.crypto import (
    DecryptionError,
    EncryptedTemplate,
    FileKeyProvider,
    KeyFileError,
    KeyProvider,
    RotatableKeyProvider,
    WrappedDataKey,
    decrypt_template,
    encrypt_template,
    generate_data_key,
    open_staff_secret,
    seal_staff_secret,
    unwrap_data_key,
    wrap_data_key,
)

TEMPLATE = bytes(range(256)) * 2  # a sensor template is 512 bytes of characteristics


def test_a_new_keyring_is_mode_0600_and_format_1(keyring: FileKeyProvider) -> None:
    assert stat.S_IMODE(keyring.path.stat().st_mode) == 0o600
    data = json.loads(keyring.path.read_text())
    assert data["format"] == "accessd-keyring"
    assert data["version"] == 1
    assert [k["id"] for k in data["master_keys"]] == [keyring.active_key_id]
    assert isinstance(keyring, KeyProvider)
    assert isinstance(keyring, RotatableKeyProvider)


def test_the_sensor_password_is_random_and_never_the_factory_default(tmp_path: Path) -> None:
    passwords = {FileKeyProvider.create(tmp_path / f"k{i}").sensor_password() for i in range(5)}
    assert 0 not in passwords
    assert all(0 < p < 2**32 for p in passwords)
    assert len(passwords) == 5


def test_init_refuses_to_overwrite_a_keyring(keyring: FileKeyProvider) -> None:
    before = keyring.path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        FileKeyProvider.create(keyring.path)
    assert keyring.path.read_bytes() == before


def test_a_missing_keyring_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"not found; run `accessd init`"):
        FileKeyProvider(tmp_path / "keyring.json")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606, 0o610])
def test_a_keyring_readable_by_others_is_refused_with_the_fix(
    keyring: FileKeyProvider, mode: int
) -> None:
    os.chmod(keyring.path, mode)
    with pytest.raises(KeyFileError) as caught:
        FileKeyProvider(keyring.path)
    assert f"run `chmod 600 {keyring.path}`" in str(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_keyring_only_its_owner_can_read_is_accepted(keyring: FileKeyProvider, mode: int) -> None:
    os.chmod(keyring.path, mode)  # 0400: how systemd hands over a credential
    assert FileKeyProvider(keyring.path).key_ids() == (keyring.active_key_id,)


def _b64(n: int) -> str:
    return base64.b64encode(bytes(n)).decode()


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda d: "not json {", "not JSON"),
        (lambda d: [d], "not a JSON object"),
        (lambda d: {**d, "format": "fernet"}, "expected format 'accessd-keyring' version 1"),
        (lambda d: {**d, "version": 2}, "expected format 'accessd-keyring' version 1"),
        (lambda d: {**d, "comment": "x"}, "expected exactly the fields"),
        (lambda d: {**d, "master_keys": []}, "master_keys must be a non-empty list"),
        (lambda d: {**d, "active_master_key": "mk-other"}, "active_master_key names no key"),
        (lambda d: {**d, "sensor_password": 2**32}, "sensor_password must be an integer"),
        (lambda d: {**d, "sensor_password": "1234"}, "sensor_password must be an integer"),
        (lambda d: {**d, "signing_key": _b64(16)}, "signing_key must be base64 of exactly 32"),
        (lambda d: {**d, "signing_key": "***"}, "signing_key must be base64 of exactly 32"),
        (lambda d: {**d, "master_keys": [{**d["master_keys"][0], "key": _b64(24)}]},
         "must be base64 of exactly 32 bytes"),
        (lambda d: {**d, "master_keys": [{**d["master_keys"][0], "id": "../etc"}]},
         "is not a valid id"),
        (lambda d: {**d, "master_keys": [d["master_keys"][0]] * 2}, "two master keys share"),
        (lambda d: {**d, "door_link_key": _b64(16)}, "door_link_key must be base64 of exactly"),
        (lambda d: {**d, "door_link_key": base64.b64encode(bytes(32)).decode()},
         "door_link_key is not a random key"),
    ],
)  # fmt: skip
def test_a_malformed_keyring_is_refused_never_guessed(
    keyring: FileKeyProvider, change: object, detail: str
) -> None:
    data = json.loads(keyring.path.read_text())
    changed = change(data)  # type: ignore[operator]
    keyring.path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(KeyFileError) as caught:
        FileKeyProvider(keyring.path)
    assert detail in str(caught.value)
    assert "restore it from your key backup" in str(caught.value)


def test_a_data_key_unwraps_only_for_its_own_customer(keyring: FileKeyProvider) -> None:
    customer, other = uuid.uuid4(), uuid.uuid4()
    data_key = generate_data_key()
    wrapped = wrap_data_key(keyring, data_key, customer_id=customer)
    assert wrapped.master_key_id == keyring.active_key_id
    assert unwrap_data_key(keyring, wrapped, customer_id=customer) == data_key
    with pytest.raises(DecryptionError, match=f"data key of customer {other}"):
        unwrap_data_key(keyring, wrapped, customer_id=other)


def test_a_wrapped_key_relabelled_with_another_master_key_id_fails(
    keyring: FileKeyProvider,
) -> None:
    customer = uuid.uuid4()
    wrapped = wrap_data_key(keyring, generate_data_key(), customer_id=customer)
    second = keyring.add_master_key()
    with pytest.raises(DecryptionError):
        unwrap_data_key(keyring, WrappedDataKey(second, wrapped.wrapped), customer_id=customer)


def test_a_template_round_trips_under_its_customers_data_key() -> None:
    key, ids = generate_data_key(), {"customer_id": uuid.uuid4(), "person_id": uuid.uuid4(),
                                     "finger_id": uuid.uuid4()}  # fmt: skip
    encrypted = encrypt_template(key, TEMPLATE, **ids)
    assert TEMPLATE not in encrypted.ciphertext
    assert decrypt_template(key, encrypted, **ids) == TEMPLATE
    again = encrypt_template(key, TEMPLATE, **ids)
    assert again.nonce != encrypted.nonce  # a fresh nonce every time


@pytest.mark.parametrize("moved_to", ["customer_id", "person_id", "finger_id"])
def test_a_template_moved_to_another_row_does_not_decrypt(moved_to: str) -> None:
    key = generate_data_key()
    ids = {"customer_id": uuid.uuid4(), "person_id": uuid.uuid4(), "finger_id": uuid.uuid4()}
    encrypted = encrypt_template(key, TEMPLATE, **ids)
    with pytest.raises(DecryptionError, match="copied from another finger's row"):
        decrypt_template(key, encrypted, **{**ids, moved_to: uuid.uuid4()})


def test_an_altered_template_or_another_data_key_does_not_decrypt() -> None:
    key = generate_data_key()
    ids = {"customer_id": uuid.uuid4(), "person_id": uuid.uuid4(), "finger_id": uuid.uuid4()}
    encrypted = encrypt_template(key, TEMPLATE, **ids)
    flipped = bytes([encrypted.ciphertext[0] ^ 1]) + encrypted.ciphertext[1:]
    with pytest.raises(DecryptionError):
        decrypt_template(key, EncryptedTemplate(encrypted.nonce, flipped), **ids)
    with pytest.raises(DecryptionError):
        decrypt_template(generate_data_key(), encrypted, **ids)


def test_a_staff_secret_opens_only_for_its_own_user(keyring: FileKeyProvider) -> None:
    user = uuid.uuid4()
    sealed = seal_staff_secret(keyring, b"JBSWY3DPEHPK3PXP", user_id=user)
    assert open_staff_secret(keyring, sealed, user_id=user) == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(DecryptionError, match="second-factor secret"):
        open_staff_secret(keyring, sealed, user_id=uuid.uuid4())


def test_purge_certificates_can_be_verified_with_the_public_key(keyring: FileKeyProvider) -> None:
    message = b'{"customer_digest": "ab12", "purged_at": "2025-01-01T00:00:00Z"}'
    signature = keyring.sign(message)
    Ed25519PublicKey.from_public_bytes(keyring.signing_public_key()).verify(signature, message)


def test_secrets_never_appear_in_repr(keyring: FileKeyProvider) -> None:
    data = json.loads(keyring.path.read_text())
    shown = repr(keyring) + repr(keyring._keyring)
    assert data["master_keys"][0]["key"] not in shown
    assert str(keyring.sensor_password()) not in shown
    assert data["signing_key"] not in shown


def test_a_key_added_by_another_process_is_picked_up_without_restart(
    keyring: FileKeyProvider,
) -> None:
    daemon = FileKeyProvider(keyring.path)  # loaded before the rotation
    new_id = keyring.add_master_key()
    customer = uuid.uuid4()
    wrapped = wrap_data_key(keyring, generate_data_key(), customer_id=customer)
    assert wrapped.master_key_id == new_id
    assert len(unwrap_data_key(daemon, wrapped, customer_id=customer)) == 32


def test_a_read_only_credential_refuses_rotation_saying_what_to_do(
    keyring: FileKeyProvider,
) -> None:
    credential = FileKeyProvider(keyring.path, read_only=True)
    with pytest.raises(KeyFileError, match=r"read-only here \(a systemd credential\)"):
        credential.add_master_key()


def test_the_active_master_key_cannot_be_retired(keyring: FileKeyProvider) -> None:
    with pytest.raises(KeyFileError, match="is the active one"):
        keyring.retire_master_key(keyring.active_key_id)


def test_the_door_wire_key_is_kept_in_the_keyring_and_never_shown(
        keyring: FileKeyProvider) -> None:
    assert keyring.door_link_key() is None  # until `accessd door provision`
    key = bytes(range(7, 39))
    keyring.set_door_link_key(key)
    again = FileKeyProvider(keyring.path)
    assert again.door_link_key() == key
    assert key.hex() not in repr(again) and str(key) not in repr(again._keyring)
