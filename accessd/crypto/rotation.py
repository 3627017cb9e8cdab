"""Master key rotation (``accessd keys rotate``): templates are never touched.

Three steps, each safe to interrupt and to repeat:

1. add a new master key to the keyring and make it active (the old ones stay);
2. rewrap every data key and staff secret under it, in one transaction, and reseal what else
   lives under a master key (``before_retire``: the backup key file);
3. retire every master key no row uses any more.

A crash after 1 leaves a keyring with two keys and rows wrapped under either: running the
rotation again finishes the job. Backups taken before a rotation hold data keys wrapped under
the retired key: they can no longer be unwrapped (see the note in the module ``accessd.crypto``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto.envelope import (
    SealedSecret,
    WrappedDataKey,
    open_staff_secret,
    seal_staff_secret,
    unwrap_data_key,
    wrap_data_key,
)
from accessd.crypto.keyring import KeyProvider, RotatableKeyProvider
from accessd.models import Customer, DataKey, StaffUser, utcnow
from accessd.progress import Progress, Tally, no_progress


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What a rotation did."""

    new_key_id: str
    data_keys_rewrapped: int
    staff_secrets_rewrapped: int
    retired_key_ids: tuple[str, ...]
    kept_key_ids: tuple[str, ...]  # old keys still referenced (should be empty)


def rewrap_all(session: Session, provider: KeyProvider, key_id: str,
               progress: Progress = no_progress) -> tuple[int, int]:
    """Rewrap every data key and staff secret not yet under ``key_id``; the caller commits.
    ``progress`` counts keys and secrets rewrapped.

    :returns: (data keys rewrapped, staff secrets rewrapped).
    """
    total = (session.scalar(select(func.count()).select_from(DataKey)
                            .where(DataKey.master_key_id != key_id)) or 0) + (
        session.scalar(select(func.count()).select_from(StaffUser).where(
            StaffUser.totp_key_id.is_not(None), StaffUser.totp_key_id != key_id)) or 0)
    tally = Tally(progress, total)
    progress(0, total)
    data_keys = 0
    rows = session.execute(
        select(DataKey, Customer.public_id)
        .join(DataKey.customer)
        .where(DataKey.master_key_id != key_id)
    )
    for row, customer_id in rows:
        wrapped = WrappedDataKey(row.master_key_id, row.wrapped_key)
        plain = unwrap_data_key(provider, wrapped, customer_id=customer_id)
        rewrapped = wrap_data_key(provider, plain, customer_id=customer_id, master_key_id=key_id)
        row.master_key_id, row.wrapped_key = rewrapped.master_key_id, rewrapped.wrapped
        row.rewrapped_at = utcnow()
        data_keys += 1
        tally.add()
    secrets = 0
    for user in session.scalars(
        select(StaffUser).where(
            StaffUser.totp_key_id.is_not(None), StaffUser.totp_key_id != key_id
        )
    ):
        assert user.totp_key_id is not None and user.totp_secret_ciphertext is not None
        seed = open_staff_secret(
            provider,
            SealedSecret(user.totp_key_id, user.totp_secret_ciphertext),
            user_id=user.public_id,
        )
        sealed = seal_staff_secret(provider, seed, user_id=user.public_id, key_id=key_id)
        user.totp_key_id, user.totp_secret_ciphertext = sealed.key_id, sealed.ciphertext
        secrets += 1
        tally.add()
    session.flush()
    return data_keys, secrets


def master_keys_in_use(session: Session) -> set[str]:
    """The master key ids some row still needs."""
    used = set(session.scalars(select(DataKey.master_key_id).distinct()))
    used.update(
        key_id
        for key_id in session.scalars(select(StaffUser.totp_key_id).distinct())
        if key_id is not None
    )
    return used


def retire_unused_master_keys(
    provider: RotatableKeyProvider, sessions: sessionmaker[Session]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Retire every inactive master key no row uses; keep (and report) the ones still used.

    :returns: (retired ids, kept ids).
    """
    with sessions() as session:
        used = master_keys_in_use(session)
    retired: list[str] = []
    kept: list[str] = []
    for key_id in provider.key_ids():
        if key_id == provider.active_key_id:
            continue
        if key_id in used:
            kept.append(key_id)
        else:
            provider.retire_master_key(key_id)
            retired.append(key_id)
    return tuple(retired), tuple(kept)


def rotate_master_key(
    provider: RotatableKeyProvider,
    sessions: sessionmaker[Session],
    *,
    before_retire: Callable[[], object] | None = None,
    progress: Progress = no_progress,
) -> RotationResult:
    """Add a master key, rewrap everything under it, then retire the old keys.

    ``before_retire`` reseals what the database does not hold under the new key before the old
    ones go (``accessd.backup.housekeeping.key_resealer``: the backup key file); if it raises,
    no key is retired and running the rotation again finishes the job.

    :raises KeyFileError: the keyring cannot be written (read-only credential) or lacks a key.
    :raises DecryptionError: a wrapped key does not unwrap (nothing is changed then).
    """
    new_key_id = provider.add_master_key()
    with sessions() as session, session.begin():
        data_keys, staff_secrets = rewrap_all(session, provider, new_key_id, progress)
    if before_retire is not None:
        before_retire()
    retired, kept = retire_unused_master_keys(provider, sessions)
    return RotationResult(new_key_id, data_keys, staff_secrets, retired, kept)
