"""Fingerprint templates at rest: sealed under the customer's data key, bound to their row.

Plaintext templates exist only in memory, only while moving between the sensor and the
database; nothing here writes them anywhere else.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from accessd.crypto import (
    EncryptedTemplate,
    KeyProvider,
    WrappedDataKey,
    decrypt_template,
    encrypt_template,
    generate_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from accessd.models import Customer, DataKey, Finger, Person


def data_key_row(session: Session, provider: KeyProvider, customer: Customer) -> DataKey:
    """The customer's wrapped data key, made on first use (at its first enrolment)."""
    if customer.data_key is None:
        wrapped = wrap_data_key(provider, generate_data_key(), customer_id=customer.public_id)
        customer.data_key = DataKey(customer_id=customer.id, master_key_id=wrapped.master_key_id,
                                    wrapped_key=wrapped.wrapped)
        session.add(customer.data_key)
        session.flush()
    return customer.data_key


def _data_key(provider: KeyProvider, row: DataKey, customer: Customer) -> bytes:
    return unwrap_data_key(provider, WrappedDataKey(row.master_key_id, row.wrapped_key),
                           customer_id=customer.public_id)


def seal(session: Session, provider: KeyProvider, finger: Finger, person: Person,
         customer: Customer, template: bytes) -> None:
    """Encrypt ``template`` into ``finger`` (whose public id must already be set)."""
    row = data_key_row(session, provider, customer)
    sealed = encrypt_template(_data_key(provider, row, customer), template,
                              customer_id=customer.public_id, person_id=person.public_id,
                              finger_id=finger.public_id)
    finger.data_key_id = row.id
    finger.template_nonce = sealed.nonce
    finger.template_ciphertext = sealed.ciphertext


def open_sealed(provider: KeyProvider, finger: Finger, person: Person, customer: Customer,
                row: DataKey) -> bytes:
    """The plaintext template of ``finger``.

    :raises DecryptionError: the ciphertext was moved from another row or altered.
    """
    return decrypt_template(_data_key(provider, row, customer),
                            EncryptedTemplate(finger.template_nonce, finger.template_ciphertext),
                            customer_id=customer.public_id, person_id=person.public_id,
                            finger_id=finger.public_id)
