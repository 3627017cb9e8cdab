"""Records the privacy promises need: purges, the erasure ledger and its seals, requests.

None of these hold a customer's or a destroyed person's identity in the clear: they name them
by a keyed digest of the public id (hex), which is useless without the id and the key.

Purge records and ledger entries are written only through ``accessd.privacy.ledger``, which
seals each new row (and each change of a purge record) into one hash chain of ``LedgerSeal``
rows signed with the installation's Ed25519 key: a restore trusts them, so they must show
any change made behind the ledger's back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from accessd.models.base import Base, UTCDateTime, enum_column, new_public_id, utcnow
from accessd.models.enums import LedgerAction, PurgeStatus, RequestKind, RequestStatus

RESTORE_KEEPS = "restore_keeps"
"""``Table.info`` flag: a restore must leave this table as it is (then re-apply its entries)."""


class PurgeRecord(Base):
    """The anonymised trace of a customer's purge, and its signed certificate.

    Written with status ``started`` (and the counts) before anything is deleted, in its own
    transaction: a purge interrupted by a power cut is found and completed at the next start.
    Once the database holds nothing of the customer it waits (``awaiting_doors``) until every
    door confirmed that its sensor dropped the templates; only then is it ``completed`` and
    its certificate signed. Flagged ``RESTORE_KEEPS``: restoring an older backup must not lose
    the proof of a purge.
    """

    __tablename__ = "purge_records"
    __table_args__ = ({"info": {RESTORE_KEEPS: True}},)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_digest: Mapped[str] = mapped_column(String(64), index=True)
    contract_end: Mapped[dt.date | None] = mapped_column(Date)
    grace_days: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[PurgeStatus] = mapped_column(
        enum_column(PurgeStatus, 16), default=PurgeStatus.STARTED
    )
    # Per data category, e.g. {"persons": 3, "fingers": 5, "access_events": 1200}.
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The signed certificate (JSON with an Ed25519 signature) handed to the customer.
    certificate: Mapped[str | None] = mapped_column(Text)
    # The customer reference's salted digest (``accessd.privacy.certificate``), hex; None for
    # purges recorded before references existed.
    reference_salt: Mapped[str | None] = mapped_column(String(32))
    reference_digest: Mapped[str | None] = mapped_column(String(64))
    # Per door asked to resync: [{"door_id", "door", "command_id", "requested_at",
    # "confirmed_at", "slots_wiped", "attempts", "removed"}]; None before doors were asked.
    doors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # What was destroyed where, as the certificate states it: {"database": ..., "backups": ...}.
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ErasureLedgerEntry(Base):
    """A destruction that a restore of an older backup must apply again.

    The table is flagged ``RESTORE_KEEPS``: a restore replaces every other table and keeps
    this one, then re-applies each entry recorded after the backup was taken, so restoring
    never resurrects destroyed data.
    """

    __tablename__ = "erasure_ledger"
    __table_args__ = (Index(None, "recorded_at"), {"info": {RESTORE_KEEPS: True}})

    id: Mapped[int] = mapped_column(primary_key=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[LedgerAction] = mapped_column(enum_column(LedgerAction))
    customer_digest: Mapped[str] = mapped_column(String(64))
    person_digest: Mapped[str | None] = mapped_column(String(64))
    finger_digest: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LedgerSeal(Base):
    """One link of the ledger's hash chain: a purge record or ledger entry as it was sealed.

    ``digest`` covers the previous seal's digest and this seal's own fields, among them the
    SHA-256 of the sealed row's canonical fields (``content_digest``); ``signature`` is the
    installation's Ed25519 signature of the digest. A purge record is sealed again at each
    change (the latest seal is what its row must match); a ledger entry once. Seal 0 is the
    genesis, written by migration 0005 with the highest ids of the rows that existed then;
    the first run holding the keyring signs it and seals those rows, marked ``legacy``.
    See ``accessd.privacy.ledger``.
    """

    __tablename__ = "ledger_seals"
    __table_args__ = (Index(None, "subject", "subject_id"), {"info": {RESTORE_KEEPS: True}})

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sealed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    subject: Mapped[str] = mapped_column(String(32))  # a table name, or "genesis"
    subject_id: Mapped[int | None] = mapped_column(Integer)
    legacy: Mapped[bool] = mapped_column(Boolean, default=False)
    content_digest: Mapped[str] = mapped_column(String(64))
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(64))  # None: the genesis, not yet signed
    signature: Mapped[str | None] = mapped_column(String(100))
    key_id: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DataSubjectRequest(Base):
    """A request under GDPR art. 15-21, tracked against its one-month (at most three) deadline.

    Kept after closing for the configured retention (default one year), also when the
    customer or person it concerned is gone: the links then become NULL.
    """

    __tablename__ = "data_subject_requests"
    __table_args__ = (Index(None, "status", "due_on"), Index(None, "closed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_public_id)
    kind: Mapped[RequestKind] = mapped_column(enum_column(RequestKind))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), index=True
    )
    requester_name: Mapped[str] = mapped_column(String(200))
    requester_contact: Mapped[str | None] = mapped_column(String(320))
    received_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    extended_due_on: Mapped[dt.date | None] = mapped_column(Date)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(
        enum_column(RequestStatus, 16), default=RequestStatus.OPEN
    )
    outcome: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
