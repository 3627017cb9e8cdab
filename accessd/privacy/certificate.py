"""Purge certificates anyone can check: signed by the installation, about one customer, saying
what was destroyed where.

A certificate (format ``accessd-purge-certificate`` version 2) is JSON::

    {"certificate": BODY, "algorithm": "Ed25519", "signature": base64(Ed25519(BODY bytes))}

where the signed bytes are BODY serialised with sorted keys, no whitespace and ASCII only
(``canonical_json``), so any Ed25519 implementation can check it. BODY states:

- who: ``customer_reference`` (the salted SHA-256 of the reference the customer was given at
  contract start: only someone holding it can tell the certificate is theirs) and
  ``customer_digest`` (the installation's own keyed name for the customer, which a restore
  matches on; it tells an outsider nothing);
- what and where (``destroyed``): the database (counts per category, the SQLite WAL
  truncated or not), each door's sensor with the time its daemon confirmed the resync that
  dropped the templates, and backups (``BackupDestruction``: by default, the data key's
  destruction; the per-customer backup keys once they exist);
- which installation: the fingerprint of its Ed25519 public key, never the key itself. A
  certificate is checked against a key the checker trusts (published by the facility:
  ``accessd public-key``), so a forgery signed with another key cannot carry its own proof;
- where it sits in the ledger: the sequence number and digest of the seal of the purge's
  ledger entry (``accessd.privacy.ledger``), an anchor outside the live database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from accessd.config import Settings
from accessd.crypto import KeyProvider
from accessd.errors import InvalidInputError, UsageError
from accessd.models import REFERENCE_ALPHABET, PurgeRecord
from accessd.privacy.ledger import canonical_json, key_id

CERTIFICATE_FORMAT = "accessd-purge-certificate"
CERTIFICATE_VERSION = 2
REFERENCE_SCHEME = "sha256(salt || 'accessd/customer-reference/v1' || REFERENCE)"
"""How ``customer_reference.digest`` is made: salt as bytes (hex in the certificate),
the reference without dashes, upper case."""
_REFERENCE_CONTEXT = b"accessd/customer-reference/v1"
_STATEMENT = ("Every person, enrolled fingerprint template, consent record and access event held "
              "for this customer was deleted from the database and its data key destroyed, so "
              "that copies of its templates in backups or on storage media can no longer be "
              "decrypted; each door listed under destroyed.sensors confirmed that its "
              "fingerprint sensor holds none of the customer's templates; backups are covered "
              "as stated under destroyed.backups. Kept on purpose, with no link to the customer "
              "or its people: the records of data-subject requests about them (the requester's "
              "name and contact details, dates and outcome), as proof that each request was "
              "answered, until their own retention period ends; and, anonymised, any events of "
              "its people in the facility's own door log.")

installation_key_id = key_id


def key_fingerprint(public_key: bytes) -> str:
    """The full fingerprint of an Ed25519 public key (SHA-256 of its 32 raw bytes), to publish
    and to read out: ``SHA256:`` and 64 hex digits."""
    return "SHA256:" + hashlib.sha256(public_key).hexdigest()


def public_key_pem(public_key: bytes) -> str:
    """The key as a PEM ``PUBLIC KEY`` block, for tools such as openssl."""
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def parse_public_key(text: str) -> bytes:
    """An Ed25519 public key given as base64, hex or PEM (or a file holding one), raw.

    :raises UsageError: not a 32-byte Ed25519 public key in any of those forms.
    """
    candidate = text.strip()
    path = Path(candidate)
    if len(candidate) < 1024 and "\n" not in candidate and path.is_file():
        candidate = path.read_text(encoding="utf-8", errors="replace").strip()
    if "-----BEGIN PUBLIC KEY-----" in candidate:
        try:
            loaded = load_pem_public_key(candidate.encode())
        except ValueError:
            loaded = None
        if isinstance(loaded, Ed25519PublicKey):
            return loaded.public_bytes(Encoding.Raw, PublicFormat.Raw)
    for decode in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            key = decode(candidate)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    raise UsageError("--public-key must be the installation's Ed25519 public key as the "
                     "facility published it (`accessd public-key` prints it): base64, hex or "
                     "PEM, or a file holding it. Never take it from the certificate itself")


# --- the customer reference -------------------------------------------------------------------

_REFERENCE_CHARS = re.compile(f"[{REFERENCE_ALPHABET}]{{25}}")


def normalise_reference(text: str) -> str:
    """A customer reference as typed (any case, dashes or spaces, O for 0, I or L for 1) in
    its canonical form: 25 characters of Crockford's base32, no dashes.

    :raises InvalidInputError: not 25 such characters.
    """
    cleaned = re.sub(r"[\s-]", "", text).upper().translate(str.maketrans("OIL", "011"))
    if not _REFERENCE_CHARS.fullmatch(cleaned):
        raise InvalidInputError("customer_reference", "a customer reference is 25 letters and "
                                "digits in five groups, e.g. 7K3QX-M2D9A-1EDDN-QZDAZ-FVC48; "
                                "check it against the one issued at contract start")
    return cleaned


def new_reference_salt() -> str:
    """A fresh salt for one certificate's reference digest (hex)."""
    return secrets.token_hex(16)


def reference_digest(reference: str, salt_hex: str) -> str:
    """The salted digest of a customer reference that a certificate carries (hex)."""
    canonical = normalise_reference(reference)
    return hashlib.sha256(bytes.fromhex(salt_hex) + _REFERENCE_CONTEXT
                          + canonical.encode()).hexdigest()


# --- what was destroyed where -----------------------------------------------------------------

BackupDestruction = Callable[[str, dt.datetime], dict[str, Any]]
"""The purge's hook for backups: given the customer digest and the moment the customer's data
key was destroyed, destroy what makes its backup copies readable (if there is more than the
data key) and return the certificate's ``destroyed.backups`` entry. Called once the database
holds nothing of the customer, before the purge record leaves ``started``; it must be
idempotent (a purge interrupted after it ran calls it again). Raising ``AccessdError`` or
``OSError`` leaves the purge ``started``: the next run retries."""


def backups_by_data_key(customer_digest: str, destroyed_at: dt.datetime) -> dict[str, Any]:
    """The default ``BackupDestruction``: what is true while backups share the master key.

    Backups never hold a usable data key (each backup's copy is blanked), so the destroyed
    data key makes the customer's templates in every backup unreadable. Names and history in
    backups taken before the purge remain until those backups expire, and a restore re-applies
    the purge from the ledger before anything goes live.
    """
    return {
        "method": "data_key_destroyed",
        "data_key_destroyed_at": _iso(destroyed_at),
        "keys_destroyed_at": None,
        "templates": "unreadable in every backup: backups never hold a usable data key, and "
                     "the customer's data key no longer exists",
        "other_data": "backups taken before the purge keep it, encrypted under the "
                      "installation's master key, until they expire (at most 12 months); a "
                      "restore re-applies this purge before the restored data is used",
    }


# --- signing and writing ----------------------------------------------------------------------


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def sensors_entry(doors: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``destroyed.sensors``: each door asked, and when its daemon confirmed the wipe."""
    entries = []
    for door in doors or []:
        entry: dict[str, Any] = {"door": door["door"], "confirmed_at": door.get("confirmed_at"),
                                 "slots_wiped": door.get("slots_wiped")}
        if door.get("removed"):
            entry["removed_at"] = door.get("removed_at")
            entry["note"] = ("the door was removed from the installation before its daemon "
                             "confirmed: its sensor was not confirmed wiped")
        entries.append(entry)
    return entries


def sign_certificate(provider: KeyProvider, record: PurgeRecord, *,
                     ledger_seal: tuple[int, str] | None = None) -> str:
    """The certificate of a completed purge (JSON), signed with the installation's key.

    ``ledger_seal``: (seq, digest) of the seal of the purge's ledger entry.
    """
    public = provider.signing_public_key()
    evidence = record.evidence or {}
    reference = None
    if record.reference_digest and record.reference_salt:
        reference = {"scheme": REFERENCE_SCHEME, "salt": record.reference_salt,
                     "digest": record.reference_digest}
    body: dict[str, Any] = {
        "format": CERTIFICATE_FORMAT, "version": CERTIFICATE_VERSION, "statement": _STATEMENT,
        "customer_reference": reference,
        "customer_digest": record.customer_digest,
        "contract_end": record.contract_end.isoformat() if record.contract_end else None,
        "grace_days": record.grace_days, "due_at": _iso(record.due_at),
        "started_at": _iso(record.started_at), "completed_at": _iso(record.completed_at),
        "counts": dict(record.counts),
        "destroyed": {"database": evidence.get("database"),
                      "sensors": sensors_entry(record.doors),
                      "backups": evidence.get("backups")},
        "ledger": ({"seal": ledger_seal[0], "digest": ledger_seal[1]}
                   if ledger_seal is not None else None),
        "installation_key_id": key_id(public),
        "installation_key_fingerprint": key_fingerprint(public),
    }
    signature = base64.b64encode(provider.sign(canonical_json(body))).decode()
    return json.dumps({"certificate": body, "algorithm": "Ed25519", "signature": signature},
                      indent=2, sort_keys=True) + "\n"


def certificate_dir(settings: Settings) -> Path:
    """Where purge certificates are written for the operator: ``data_dir/purge-certificates``."""
    return settings.data_dir / "purge-certificates"


def certificate_path(record: PurgeRecord, directory: Path) -> Path:
    """The file name a completed record's certificate gets in ``directory``."""
    completed = record.completed_at or record.started_at
    return directory / f"purge-certificate-{completed:%Y%m%d}-{record.customer_digest[:16]}.json"


def write_certificate(record: PurgeRecord, directory: Path) -> Path:
    """Write the record's certificate as a file the operator can hand to the customer."""
    if record.certificate is None or record.completed_at is None:
        raise ValueError(f"purge record {record.id} has no certificate yet: it is not completed")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # whatever the umask, and for a directory made before
    path = certificate_path(record, directory)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(fd, 0o600)  # whatever the umask, and over a stale temporary file
        out.write(record.certificate)
    os.replace(tmp, path)  # atomic: never a half-written certificate
    return path


# --- checking ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateCheck:
    """The outcome of ``verify_certificate``: valid or not, why, and what it certifies."""

    valid: bool
    reason: str
    body: dict[str, Any] | None = None


def verify_certificate(source: Path | str | bytes, public_key: bytes | None = None, *,
                       provider: KeyProvider | None = None,
                       customer_reference: str | None = None) -> CertificateCheck:
    """Check a purge certificate against a key the caller trusts, and optionally that it is
    about the customer holding ``customer_reference``.

    The trusted key is ``public_key`` (raw 32 bytes, as the facility published it), else this
    installation's (``provider``). A key or fingerprint inside the certificate is never
    trusted: it must name the trusted key, or the certificate is rejected. With no trusted
    key, nothing can be checked: invalid.
    """
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        return CertificateCheck(False, f"cannot read {source!s}: {exc.strerror}")
    try:
        document = json.loads(raw)
        body, signature = document["certificate"], base64.b64decode(document["signature"],
                                                                      validate=True)
        if not isinstance(body, dict) or body.get("format") != CERTIFICATE_FORMAT:
            raise ValueError("not an accessd purge certificate")
        if body.get("version") not in (1, CERTIFICATE_VERSION):
            raise ValueError(f"version {body.get('version')!r} is not one this accessd knows")
    except (ValueError, KeyError, TypeError) as exc:
        return CertificateCheck(False, f"not a well-formed purge certificate: {exc}")
    trusted = public_key if public_key is not None else (
        provider.signing_public_key() if provider is not None else None)
    if trusted is None:
        return CertificateCheck(False, "no trusted key to check against: give the key the "
                                       "facility published (--public-key), or run this on the "
                                       "installation; a key inside the certificate proves "
                                       "nothing", body)
    mismatch = _names_another_key(body, trusted)
    if mismatch is not None:
        return CertificateCheck(False, mismatch, body)
    try:
        Ed25519PublicKey.from_public_bytes(trusted).verify(signature, canonical_json(body))
    except (InvalidSignature, ValueError):
        return CertificateCheck(False, "the signature does not match the trusted key: the "
                                       "certificate was altered after it was signed, or is not "
                                       "genuine", body)
    reason = f"valid: signed by {key_id(trusted)} ({key_fingerprint(trusted)})"
    if customer_reference is not None:
        problem = _reference_problem(body, customer_reference)
        if problem is not None:
            return CertificateCheck(False, problem, body)
        reason += "; issued for the customer holding this reference"
    return CertificateCheck(True, reason, body)


def _names_another_key(body: dict[str, Any], trusted: bytes) -> str | None:
    """Why the certificate's own key material names another key than the trusted one."""
    expected = f"the trusted key {key_id(trusted)}"
    embedded = body.get("installation_public_key")  # version 1 carried the raw key
    if embedded is not None:
        try:
            claimed = base64.b64decode(str(embedded), validate=True)
        except (ValueError, binascii.Error):
            return "the certificate's installation_public_key is not base64: not genuine"
        if claimed != trusted:
            return (f"made by installation key {key_id(claimed)}, not by {expected}: not "
                    "issued by the installation you trust")
    fingerprint = body.get("installation_key_fingerprint")
    if fingerprint is not None and fingerprint != key_fingerprint(trusted):
        return (f"names installation key {body.get('installation_key_id') or fingerprint}, not "
                f"{expected}: not issued by the installation you trust")
    if embedded is None and fingerprint is None:
        return "the certificate names no installation key: not genuine"
    return None


def _reference_problem(body: dict[str, Any], customer_reference: str) -> str | None:
    try:
        canonical = normalise_reference(customer_reference)
    except InvalidInputError as exc:
        return str(exc)
    block = body.get("customer_reference")
    if not isinstance(block, dict) or not block.get("salt") or not block.get("digest"):
        return ("this certificate carries no customer reference (issued before references "
                "existed, or for a customer without one): it cannot be matched to one")
    try:
        digest = reference_digest(canonical, str(block["salt"]))
    except ValueError:
        return "the certificate's customer reference salt is not hex: not genuine"
    if not hmac.compare_digest(digest, str(block["digest"])):
        return ("the customer reference does not match: this certificate is about another "
                "customer, or the reference was mistyped")
    return None
