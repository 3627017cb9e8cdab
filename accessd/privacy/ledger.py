"""The tamper-evident ledger: purge records and erasure-ledger entries, hash-chained and signed.

A restore trusts the erasure ledger to say what must stay destroyed, so a row changed behind the
ledger's back must show. Every write to ``purge_records`` or ``erasure_ledger`` goes through
``append``, in the writer's own transaction: it flushes the row and adds a ``LedgerSeal`` at the
head of one chain over both tables::

    content_digest = SHA-256("accessd/ledger-row/v1" | table | canonical JSON of the row)
    digest         = SHA-256("accessd/ledger-seal/v1" | canonical JSON of seq, sealed_at,
                             subject table and id, legacy flag, content_digest, prev_digest)
    signature      = Ed25519(installation key, "accessd/ledger-seal/v1 signature" | digest)

Ledger entries are sealed once; a purge record again at each change of state (its latest seal
is what the row must match). ``verify_ledger`` walks the chain (sequence, links, digests,
signatures under the installation's public key) and then every row against its latest seal,
and names the first broken one: table, id, what is wrong. ``accessd verify-log``,
``accessd doctor`` and every restore (``accessd.backup.replay``) run it.

Rows from before the ledger was sealed: migration 0005 cannot reach the keyring, so it records
only the genesis (seal 0: when, and the highest id of each table then), unsigned. The first run
holding the key (any append, the privacy scheduler, ``verify-log``, ``doctor``, a restore)
signs the genesis and seals those rows with ``legacy`` set: they are vouched for from that
moment, not from their creation, and ``verify-log`` says how many there are.

What the chain cannot show on its own: the newest seals removed together with their rows, or
every seal replaced by a new unsigned genesis, by someone who can write the database. Each
purge certificate carries the sequence number and digest of its ledger entry's seal, and a
restore refuses a live ledger that lacks a signed seal the backup holds: those are the anchors
outside the live database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from accessd.crypto import KeyProvider
from accessd.errors import LedgerError
from accessd.models import ErasureLedgerEntry, LedgerSeal, PurgeRecord, utcnow

ENTRIES = ErasureLedgerEntry.__tablename__
RECORDS = PurgeRecord.__tablename__
SEALS = LedgerSeal.__tablename__
GENESIS = "genesis"
ZERO_DIGEST = "0" * 64
_ROW_CONTEXT = b"accessd/ledger-row/v1\n"
_SEAL_CONTEXT = b"accessd/ledger-seal/v1\n"
_SIGNATURE_CONTEXT = b"accessd/ledger-seal/v1 signature\n"

LedgerRow = ErasureLedgerEntry | PurgeRecord


def key_id(public_key: bytes) -> str:
    """A short, stable name for an Ed25519 public key: what an operator reads out to check."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


def canonical_json(value: Any) -> bytes:
    """The one serialisation everything in the ledger and the certificates is hashed in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stored(value: Any) -> Any:
    """``value`` as a JSON column gives it back (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value)) if value is not None else None


def row_fields(row: LedgerRow) -> dict[str, Any]:
    """The canonical fields of a ledger row: everything it holds, in JSON-stable form."""
    if isinstance(row, ErasureLedgerEntry):
        return {"id": row.id, "recorded_at": _iso(row.recorded_at), "action": str(row.action),
                "customer_digest": row.customer_digest, "person_digest": row.person_digest,
                "finger_digest": row.finger_digest, "details": _stored(row.details or {})}
    certificate = (hashlib.sha256(row.certificate.encode()).hexdigest()
                   if row.certificate is not None else None)
    return {"id": row.id, "customer_digest": row.customer_digest,
            "contract_end": row.contract_end.isoformat() if row.contract_end else None,
            "grace_days": row.grace_days, "due_at": _iso(row.due_at), "status": str(row.status),
            "counts": _stored(row.counts or {}), "started_at": _iso(row.started_at),
            "completed_at": _iso(row.completed_at), "certificate_sha256": certificate,
            "reference_salt": row.reference_salt, "reference_digest": row.reference_digest,
            "doors": _stored(row.doors), "evidence": _stored(row.evidence)}


def content_digest(row: LedgerRow) -> str:
    """SHA-256 (hex) of a row's table and canonical fields: what its seal covers."""
    table = ENTRIES if isinstance(row, ErasureLedgerEntry) else RECORDS
    return hashlib.sha256(_ROW_CONTEXT + table.encode() + b"\n"
                          + canonical_json(row_fields(row))).hexdigest()


def genesis_digest(details: Mapping[str, Any] | None) -> str:
    """The genesis' content digest, exactly as migration 0005 computes it."""
    return hashlib.sha256(json.dumps(details, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def seal_digest(seal: LedgerSeal) -> str:
    """The chain digest of a seal: its predecessor's digest and its own fields."""
    return hashlib.sha256(_SEAL_CONTEXT + canonical_json({
        "seq": seal.seq, "sealed_at": _iso(seal.sealed_at), "subject": seal.subject,
        "subject_id": seal.subject_id, "legacy": bool(seal.legacy),
        "content_digest": seal.content_digest, "prev_digest": seal.prev_digest,
    })).hexdigest()


def _sign(provider: KeyProvider, seal: LedgerSeal) -> None:
    seal.digest = seal_digest(seal)
    signature = provider.sign(_SIGNATURE_CONTEXT + bytes.fromhex(seal.digest))
    seal.signature = base64.b64encode(signature).decode()
    seal.key_id = key_id(provider.signing_public_key())


# --- writing ----------------------------------------------------------------------------------


def append(session: Session, provider: KeyProvider, row: LedgerRow, *,
           now: dt.datetime | None = None) -> LedgerSeal:
    """Write ``row`` (new, or a purge record that changed) and seal it at the chain's head.

    Runs in the caller's transaction (the caller commits): the row and its seal are committed
    together or not at all, so a power cut never leaves a row without its seal. Appenders are
    serialised (SQLite: every transaction is ``BEGIN IMMEDIATE``; PostgreSQL: a table lock).
    """
    session.add(row)
    session.flush()
    _lock(session)
    now = now or utcnow()
    seal_legacy(session, provider, now=now)
    return _add_seal(session, provider, _table_of(row), row.id, content_digest(row), now)


def _table_of(row: LedgerRow) -> str:
    return ENTRIES if isinstance(row, ErasureLedgerEntry) else RECORDS


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {SEALS} IN SHARE ROW EXCLUSIVE MODE"))


def _add_seal(session: Session, provider: KeyProvider, subject: str, subject_id: int,
              digest: str, now: dt.datetime, *, legacy: bool = False) -> LedgerSeal:
    head = session.scalars(select(LedgerSeal).order_by(LedgerSeal.seq.desc()).limit(1)).first()
    # No genesis at all: the seals were deleted; ``verify_ledger`` says so, the purge goes on.
    seal = LedgerSeal(seq=1 if head is None else head.seq + 1, sealed_at=now, subject=subject,
                      subject_id=subject_id, legacy=legacy, content_digest=digest,
                      prev_digest=(head.digest or ZERO_DIGEST) if head else ZERO_DIGEST)
    _sign(provider, seal)
    session.add(seal)
    session.flush()
    return seal


def seal_legacy(session: Session, provider: KeyProvider, *, now: dt.datetime | None = None
                ) -> int:
    """If the genesis is not yet signed: sign it and seal the rows it records as existing
    before the ledger (``legacy``). Returns how many rows were sealed; the caller commits."""
    genesis = session.scalars(select(LedgerSeal).where(LedgerSeal.seq == 0)).first()
    if genesis is None or genesis.signature is not None:
        return 0
    _lock(session)
    now = now or utcnow()
    genesis.sealed_at = now
    _sign(provider, genesis)
    session.flush()
    up_to = (genesis.details or {}).get("legacy_up_to", {})
    sealed = 0
    for model in (ErasureLedgerEntry, PurgeRecord):
        table = _table_of_model(model)
        rows: Iterable[LedgerRow] = session.scalars(
            select(model).where(model.id <= int(up_to.get(table, 0))).order_by(model.id))
        for row in rows:
            _add_seal(session, provider, table, row.id, content_digest(row), now, legacy=True)
            sealed += 1
    return sealed


def _table_of_model(model: type[ErasureLedgerEntry] | type[PurgeRecord]) -> str:
    return ENTRIES if model is ErasureLedgerEntry else RECORDS


def seal_pending(sessions: sessionmaker[Session], provider: KeyProvider) -> int:
    """``seal_legacy`` in a transaction of its own: what a run holding the keyring does first."""
    with sessions.begin() as session:
        return seal_legacy(session, provider)


def latest_seal(session: Session, row: LedgerRow) -> LedgerSeal | None:
    """The seal a row must match now (its newest)."""
    return session.scalars(select(LedgerSeal).where(
        LedgerSeal.subject == _table_of(row), LedgerSeal.subject_id == row.id)
        .order_by(LedgerSeal.seq.desc()).limit(1)).first()


# --- verifying --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerProblem:
    """One place the ledger does not hold: which row (table, id) and what is wrong."""

    table: str
    row_id: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.table} #{self.row_id}: {self.message}"


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """What ``verify_ledger`` found: counts, the chain's head, and the problems in order."""

    seals: int
    entries: int
    records: int
    legacy: int
    head_seq: int | None
    head_digest: str | None
    genesis_sealed_at: dt.datetime | None
    problems: tuple[LedgerProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        """One line: what verified, or the first problem."""
        if self.problems:
            more = len(self.problems) - 1
            return f"{self.problems[0]}" + (f" (and {more} more problem(s))" if more else "")
        legacy = f", {self.legacy} sealed as legacy" if self.legacy else ""
        head = (f"; head seal #{self.head_seq} {self.head_digest[:16]}…"
                if self.head_digest else "")
        return (f"{self.entries} ledger entries and {self.records} purge records in "
                f"{self.seals} signed seals{legacy}{head}")


class _Walk:
    """The state of one verification: problems in the order they are found."""

    def __init__(self, public_key: bytes) -> None:
        self.verifier = Ed25519PublicKey.from_public_bytes(public_key)
        self.key_id = key_id(public_key)
        self.problems: list[LedgerProblem] = []

    def problem(self, seal_or_table: LedgerSeal | str, row_id: int | None, message: str) -> None:
        if isinstance(seal_or_table, LedgerSeal):
            table, row_id = _named(seal_or_table)
        else:
            table = seal_or_table
        self.problems.append(LedgerProblem(table, row_id, message))

    def signed(self, seal: LedgerSeal) -> bool:
        try:
            raw = base64.b64decode(seal.signature or "", validate=True)
            self.verifier.verify(raw, _SIGNATURE_CONTEXT + bytes.fromhex(seal.digest or ""))
        except (InvalidSignature, ValueError, binascii.Error):
            return False
        return True


def _named(seal: LedgerSeal) -> tuple[str, int | None]:
    if seal.subject in (ENTRIES, RECORDS):
        return seal.subject, seal.subject_id
    return SEALS, seal.seq


def verify_ledger(session: Session, public_key: bytes) -> LedgerReport:
    """Check the chain and every purge record and ledger entry against it.

    ``public_key``: the installation's (``provider.signing_public_key()``). Reads only.
    """
    walk = _Walk(public_key)
    seals = session.scalars(select(LedgerSeal).order_by(LedgerSeal.seq)).all()
    rows: dict[str, dict[int, LedgerRow]] = {
        ENTRIES: {e.id: e for e in session.scalars(select(ErasureLedgerEntry))},
        RECORDS: {r.id: r for r in session.scalars(select(PurgeRecord))},
    }
    genesis = seals[0] if seals and seals[0].seq == 0 and seals[0].subject == GENESIS else None
    if genesis is None:
        walk.problem(SEALS, 0, "the genesis (seal #0) is missing: seals were deleted, or the "
                               "chain was replaced")
    latest = _walk_chain(walk, seals)
    _check_rows(walk, rows, latest, genesis)
    head = seals[-1] if seals else None
    return LedgerReport(
        seals=len(seals), entries=len(rows[ENTRIES]), records=len(rows[RECORDS]),
        legacy=sum(1 for s in seals if s.legacy), head_seq=head.seq if head else None,
        head_digest=head.digest if head else None,
        genesis_sealed_at=genesis.sealed_at if genesis and genesis.signature else None,
        problems=tuple(walk.problems))


def _walk_chain(walk: _Walk, seals: Iterable[LedgerSeal]) -> dict[tuple[str, int], LedgerSeal]:
    latest: dict[tuple[str, int], LedgerSeal] = {}
    running, expected = ZERO_DIGEST, 0
    for seal in seals:
        if seal.seq != expected:
            walk.problem(seal, None, f"seal #{seal.seq} follows seal #{expected - 1}: the seal(s) "
                                     "between them were removed")
        elif seal.prev_digest != running:
            walk.problem(seal, None, f"its seal #{seal.seq} does not follow the seal before it: "
                                     "a seal was altered, removed or reordered")
        if seal.seq == 0 and seal.subject == GENESIS:
            if seal.content_digest != genesis_digest(seal.details):
                walk.problem(seal, None, "the genesis' record of the rows from before the "
                                         "ledger was altered")
            if seal.signature is None:
                walk.problem(seal, None, "the genesis is not signed yet: the rows from before "
                                         "the ledger await sealing by a run holding the "
                                         "installation's keyring (`accessd verify-log`)")
        elif seal.subject not in (ENTRIES, RECORDS) or seal.subject_id is None:
            walk.problem(seal, None, f"seal #{seal.seq} names no ledger row "
                                     f"({seal.subject!r}): it was altered")
        else:
            latest[(seal.subject, seal.subject_id)] = seal
        if seal.signature is not None:
            if seal.digest != seal_digest(seal):
                walk.problem(seal, None, f"its seal #{seal.seq} was altered (its digest does not "
                                         "match its fields)")
            elif not walk.signed(seal):
                walk.problem(seal, None, f"its seal #{seal.seq} is not signed by this "
                                         f"installation's key {walk.key_id}")
        elif seal.seq != 0:
            walk.problem(seal, None, f"its seal #{seal.seq} is not signed")
        running = seal.digest or running
        expected = seal.seq + 1
    return latest


def _check_rows(walk: _Walk, rows: dict[str, dict[int, LedgerRow]],
                latest: dict[tuple[str, int], LedgerSeal], genesis: LedgerSeal | None) -> None:
    for (table, row_id), seal in sorted(latest.items(), key=lambda item: item[1].seq):
        row = rows[table].get(row_id)
        when = f"seal #{seal.seq} of {_iso(seal.sealed_at)}"
        if row is None:
            walk.problem(table, row_id, f"removed: it was sealed ({when}) and is no longer "
                                        "in the table")
        elif content_digest(row) != seal.content_digest:
            walk.problem(table, row_id, f"altered after it was sealed ({when})")
    awaiting = genesis is not None and genesis.signature is None
    up_to = (genesis.details or {}).get("legacy_up_to", {}) if genesis else {}
    for table in (ENTRIES, RECORDS):
        for row_id in sorted(rows[table]):
            if (table, row_id) in latest:
                continue
            if awaiting and row_id <= int(up_to.get(table, 0)):
                continue  # reported once, on the genesis
            walk.problem(table, row_id, "not sealed: written behind the ledger's back, or its "
                                        "seal was removed")


def require_intact(session: Session, public_key: bytes) -> LedgerReport:
    """``verify_ledger``, raising on the first problem.

    :raises LedgerError: the first broken row, named.
    """
    report = verify_ledger(session, public_key)
    if not report.ok:
        raise LedgerError(f"the erasure ledger does not verify: {report.describe()}")
    return report


def check_ledger(sessions: sessionmaker[Session], provider: KeyProvider) -> LedgerReport:
    """Seal what is pending (rows from before the ledger), then verify: ``verify-log``,
    ``doctor``."""
    seal_pending(sessions, provider)
    with sessions() as session:
        return verify_ledger(session, provider.signing_public_key())


def ledger_status(sessions: sessionmaker[Session], provider: KeyProvider) -> str:
    """``check_ledger`` as one line for ``accessd doctor``.

    :raises LedgerError: the first broken row, named.
    """
    report = check_ledger(sessions, provider)
    if not report.ok:
        raise LedgerError(report.describe())
    return report.describe()


def missing_signed_seals(older: Iterable[Mapping[str, Any]],
                         newer: Iterable[Mapping[str, Any]]) -> LedgerProblem | None:
    """The first signed seal of ``older`` (a backup's) that ``newer`` (the live ledger) lacks
    or holds differently: a ledger only grows, so the live one must extend every backup's."""
    by_seq = {int(s["seq"]): s for s in newer}
    for seal in sorted(older, key=lambda s: int(s["seq"])):
        if seal.get("signature") is None:
            continue  # a genesis a migration recorded on the copy: nothing signed to compare
        found = by_seq.get(int(seal["seq"]))
        table, row_id = ((seal["subject"], seal["subject_id"])
                         if seal["subject"] in (ENTRIES, RECORDS) else (SEALS, seal["seq"]))
        if found is None:
            return LedgerProblem(table, row_id, f"seal #{seal['seq']}, which the backup holds, "
                                                "is missing from the live ledger: its newest "
                                                "seals were removed, or it was replaced")
        if found.get("digest") != seal.get("digest"):
            return LedgerProblem(table, row_id, f"seal #{seal['seq']} differs between the "
                                                "backup and the live ledger: the live ledger "
                                                "was replaced")
    return None
