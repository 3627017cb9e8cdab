"""Reading, opening and damaging backup files by hand, for the tests.

``open_everything`` is the attacker's (or the auditor's) view: given a backup and every key the
installation still holds (its keyring and its backup key file), it decrypts every section it
can, opens every person record it can, unwraps every data key it finds and decrypts every
template it can, and returns all the plaintext. A test greps that for canaries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import sqlite3
import struct
import tempfile
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from accessd.backup.format import (
    MAGIC,
    BackupReader,
    SectionKind,
    chunk_nonce,
    read_header,
)
from accessd.backup.keys import BackupKeys, key_file_path, load
from accessd.backup.sections import PEOPLE_TABLE, open_record, unpack_record
from accessd.crypto import (
    EncryptedTemplate,
    KeyProvider,
    WrappedDataKey,
    decrypt_template,
    unwrap_data_key,
)
from accessd.errors import CryptoError

_FINAL = 0x8000_0000


@dataclass
class Span:
    """Where one section lies in a backup file."""

    kind: SectionKind
    customer: str | None
    start: int
    chunks: list[tuple[int, int]] = field(default_factory=list)  # (offset, length incl. field)

    @property
    def end(self) -> int:
        offset, length = self.chunks[-1]
        return offset + length


def layout(data: bytes) -> tuple[int, list[Span]]:
    """The header's length and every section's span (format 2)."""
    header = read_header(io.BytesIO(data), "test")
    offset, spans = len(header.raw), []
    while offset < len(data):
        kind = SectionKind(data[offset])
        span = Span(kind, None, offset)
        offset += 1
        if kind is SectionKind.CUSTOMER:
            span.customer = data[offset:offset + 64].decode()
            offset += 64
        (wrapped,) = struct.unpack(">H", data[offset:offset + 2])
        offset += 2 + wrapped
        while True:
            (length,) = struct.unpack(">I", data[offset:offset + 4])
            span.chunks.append((offset, 4 + (length & ~_FINAL)))
            offset += 4 + (length & ~_FINAL)
            if length & _FINAL:
                break
        spans.append(span)
    return len(header.raw), spans


def chunk_offsets(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """The header's length and the installation section's chunks (offset, total length)."""
    header, spans = layout(data)
    return header, spans[0].chunks


@dataclass
class Opened:
    """Everything a backup gave up to the keys at hand."""

    plaintext: list[bytes] = field(default_factory=list)
    sections: int = 0
    unreadable_sections: int = 0
    records: int = 0
    sealed_records: int = 0
    templates: list[bytes] = field(default_factory=list)

    def contains(self, needle: bytes) -> bool:
        return any(needle in blob for blob in self.plaintext)


def installation_keys(directory: Path, provider: KeyProvider) -> BackupKeys | None:
    """The backup key file in ``directory``, if there is one."""
    path = key_file_path(directory)
    return load(path, provider) if path.exists() else None


def open_everything(path: Path, provider: KeyProvider, keys: BackupKeys | None) -> Opened:
    """Decrypt every section of ``path`` it can, every person record, every template."""
    opened = Opened()
    with path.open("rb") as stream, tempfile.TemporaryDirectory() as tmp:
        reader = BackupReader(stream, provider, str(path))
        if reader.header.version == 1:
            data = b"".join(reader.whole())
            opened.plaintext.append(data)
            opened.sections = 1
            return opened
        for section in reader.sections(keys.customer_key if keys else (lambda _: None)):
            opened.sections += 1
            if not section.readable:
                opened.unreadable_sections += 1
                continue
            data = b"".join(section.blocks())
            opened.plaintext.append(data)
            if section.kind is SectionKind.CUSTOMER:
                assert section.customer is not None and keys is not None
                copy = Path(tmp) / f"{opened.sections}.sqlite3"
                copy.write_bytes(data)
                _open_people(copy, section.customer, keys, provider, opened)
    return opened


def _open_people(copy: Path, customer: str, keys: BackupKeys, provider: KeyProvider,
                 opened: Opened) -> None:
    with sqlite3.connect(copy) as db:
        customer_public = db.execute("SELECT public_id FROM customers").fetchone()[0]
        data_keys = {row[0]: (row[1], row[2]) for row in db.execute(
            "SELECT id, master_key_id, wrapped_key FROM data_keys")}
        records = db.execute(f"SELECT person_digest, record FROM {PEOPLE_TABLE}").fetchall()
    customer_id = uuid.UUID(str(customer_public))
    for digest, sealed in records:
        opened.sealed_records += 1
        key = keys.person_key(customer, digest)
        if key is None:
            continue
        record = open_record(key, customer, digest, sealed)
        opened.records += 1
        opened.plaintext.append(record)
        tables, _ = unpack_record(record)
        people = _rows(tables.get("persons"))
        for finger in _rows(tables.get("fingers")):
            person = next(p for p in people if p["id"] == finger["person_id"])
            key_id, wrapped = data_keys[finger["data_key_id"]]
            try:
                data_key = unwrap_data_key(provider, WrappedDataKey(key_id, wrapped),
                                           customer_id=customer_id)
                template = decrypt_template(
                    data_key, EncryptedTemplate(finger["template_nonce"],
                                                finger["template_ciphertext"]),
                    customer_id=customer_id, person_id=uuid.UUID(str(person["public_id"])),
                    finger_id=uuid.UUID(str(finger["public_id"])))
            except CryptoError:
                continue
            opened.templates.append(template)
            opened.plaintext.append(template)


def _rows(table: tuple[list[str], list[list[object]]] | None) -> list[dict[str, object]]:
    if table is None:
        return []
    columns, rows = table
    return [dict(zip(columns, row, strict=True)) for row in rows]


def canaries(text: str) -> list[bytes]:
    """How a string may lie in a file: UTF-8, UTF-16 both ways."""
    return [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]


def windows(data: bytes, size: int = 16) -> list[bytes]:
    """Every ``size``-byte window of ``data``."""
    return [data[i:i + size] for i in range(len(data) - size + 1)]


def write_format_1(path: Path, provider: KeyProvider, database: Path,
                   created_at: dt.datetime, chunk_size: int = 1 << 20) -> Path:
    """A backup as accessd wrote them before per-customer sections (format 1): the whole
    database, compressed and encrypted under the file key, with the data keys blanked."""
    copy = path.with_suffix(".plain")
    with sqlite3.connect(database) as db:
        db.execute("VACUUM INTO ?", (str(copy),))
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE data_keys SET wrapped_key = X''")
    plain = copy.read_bytes()
    copy.unlink()
    file_key = AESGCM.generate_key(bit_length=256)
    key_id = provider.active_key_id.encode()
    micros = (created_at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    prefix = MAGIC + struct.pack(">HqIB", 1, micros, chunk_size, 1) + bytes([len(key_id)]) + key_id
    wrapped = provider.encrypt(provider.active_key_id, file_key,
                               b"accessd/backup-file-key/v1\x00" + prefix)
    header = prefix + struct.pack(">H", len(wrapped)) + wrapped
    aad = hashlib.sha256(header).digest()
    compressed = zlib.compress(plain, 6)
    pieces = [compressed[i:i + chunk_size] for i in range(0, len(compressed), chunk_size)]
    out = bytearray(header)
    for n, piece in enumerate(pieces):
        sealed = AESGCM(file_key).encrypt(chunk_nonce(n, n == len(pieces) - 1), piece, aad)
        out += struct.pack(">I", len(sealed)) + sealed
    path.write_bytes(bytes(out))
    path.chmod(0o600)
    return path


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]
