"""The encrypted backup file: a header, then sections of authenticated AES-256-GCM chunks.

Format 3 (integers big-endian)::

    magic          20 bytes   b"\\x89accessd-backup\\r\\n\\x1a\\n"
    version        u16        3
    created_at     i64        microseconds since 1970-01-01T00:00:00Z
    chunk_size     u32        plaintext bytes per chunk (the final chunk may be shorter or empty)
    compression    u8         0 = none, 1 = zlib (deflate)
    key id         u8 length, then the master key id (ASCII)
    key file       16 bytes id, u64 generation: the backup key file this backup was written against
    file key       u16 length, then a random 256-bit file key wrapped by that master key
    sections       repeated, the installation's first, a manifest last:
        kind       u8         1 installation, 2 customer, 3 manifest
        customer   64 bytes   (kind 2 only) the customer's digest, hex
        section key u16 length, then nonce || AES-GCM of a random 256-bit section key, under
                   the file key (kinds 1, 3) or under the customer's key (kind 2)
        chunks     repeated: u32 length (high bit set on the final chunk), then ciphertext + tag

Each section's chunks, decrypted and concatenated (and inflated, if compressed), are a SQLite
database for kinds 1 and 2 (``accessd.backup.sections``), JSON for the manifest, which lists
every section before it with the SHA-256 of its bytes in the file.

Compression is off unless asked for (``accessd backup --compress``): a history is mostly
digests, so zlib at its fastest level halves it but runs at ~90 MB/s here, more time than the
rest of a backup together (measured on 1,000,000 events: see ``tests/privacy/bench_backup.py``).

- Every section has its own random key, so (key, nonce) pairs never repeat, within a file or
  across files. A chunk's nonce is its counter (11 bytes) and the final flag (1 byte): chunks
  cannot be reordered, dropped or duplicated, and a section cut at a chunk boundary lacks the
  chunk that decrypts as final.
- Each chunk's associated data is the SHA-256 of the file header and its section header; the
  wrapping of a section key binds the file header's digest, the kind and the customer. The file
  key's wrapping binds the header fields before it. A changed header byte fails authentication.
- A section whose customer's key was destroyed cannot be decrypted by anyone; the final flag in
  the clear lets a reader step over it, and the manifest's digest of its bytes (under the file
  key) still proves it intact. Nothing else is trusted before its tag checks.

Format 2 (read only) is the same file; only the person records inside customer sections differ:
format 3 may pack a person's event links in bulk (``accessd.backup.sections.pack_record``),
which an accessd that knows only format 2 would misread, so it refuses the file by its number.

Format 1 (read only, written before per-customer sections): the same header without the key file
fields, then chunks of one zlib stream of the whole database (final flag in the nonce only).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import secrets
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from accessd.crypto import KeyProvider
from accessd.errors import BackupError, DecryptionError, KeyFileError

# PNG's trick: a high-bit byte and both line endings reveal a file mangled by a text transfer.
MAGIC = b"\x89accessd-backup\r\n\x1a\n"
FORMAT_VERSION = 3
OLD_FORMAT_VERSION = 1
SECTION_VERSIONS = (2, FORMAT_VERSION)  # the formats with sections (see the module's text)
COMPRESSION_NONE = 0
COMPRESSION_ZLIB = 1
# Level 1: a history section compressed to 53 % at 88 MB/s here, level 6 to 53 % at 45 MB/s.
COMPRESSION_LEVEL = 1
CHUNK_SIZE = 1 << 20
TAG_BYTES = 16
KEY_BYTES = 32
NONCE_BYTES = 12
FILE_ID_BYTES = 16
MAX_CHUNK_SIZE = 16 << 20  # a header asking for more is refused before anything is allocated
MAX_WRAPPED_KEY = 1024
MAX_MANIFEST = 64 << 20
_FINAL = 0x8000_0000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FIXED = struct.Struct(">HqIB")  # version, created_at, chunk_size, compression
_KEY_FILE = struct.Struct(">16sQ")
_LENGTH = struct.Struct(">I")
_WRAP_AAD = b"accessd/backup-file-key/v1\x00"
_SECTION_AAD = b"accessd/backup-section-key/v2\x00"
_DIGEST_LEN = 64
# Never hand the decompressor more than this at once: a page of zeros compresses ~1000:1.
_MAX_INFLATE = 4 << 20


class SectionKind(enum.IntEnum):
    """What a section holds."""

    INSTALLATION = 1
    CUSTOMER = 2
    MANIFEST = 3


@dataclass(frozen=True, slots=True)
class BackupHeader:
    """What a backup file says about itself before any decryption."""

    version: int
    created_at: dt.datetime
    master_key_id: str
    chunk_size: int
    wrapped_file_key: bytes
    raw: bytes  # the header's bytes, as authenticated by every chunk
    key_file_id: bytes | None = None  # formats 2 and 3
    key_file_generation: int | None = None
    compression: int = COMPRESSION_ZLIB

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.raw).digest()


@dataclass(frozen=True, slots=True)
class SectionRecord:
    """One section as the manifest lists it."""

    kind: SectionKind
    customer: str | None
    sha256: str  # of the section's bytes in the file, header included
    size: int


def chunk_nonce(counter: int, final: bool) -> bytes:
    """The 12-byte nonce of chunk ``counter``: counter, then the final flag."""
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


# --- writing ----------------------------------------------------------------------------------


class BackupFileWriter:
    """Writes a format-3 file to ``out``: the header now, then ``write_section`` for each
    section (the installation's first), then ``finish`` (the manifest). An exception before
    ``finish`` leaves a file without its manifest, which every reader refuses."""

    def __init__(self, out: BinaryIO, provider: KeyProvider, created_at: dt.datetime, *,
                 key_file_id: bytes, key_file_generation: int,
                 chunk_size: int = CHUNK_SIZE, compress: bool = False) -> None:
        if created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware (UTC)")
        self._out = out
        self._chunk_size = chunk_size
        self._compress = compress
        compression = COMPRESSION_ZLIB if compress else COMPRESSION_NONE
        self._file_key = AESGCM.generate_key(bit_length=256)
        key_id = provider.active_key_id.encode("ascii")
        micros = (created_at.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)
        prefix = (MAGIC + _FIXED.pack(FORMAT_VERSION, micros, chunk_size, compression)
                  + bytes([len(key_id)]) + key_id
                  + _KEY_FILE.pack(key_file_id, key_file_generation))
        wrapped = provider.encrypt(provider.active_key_id, self._file_key, _WRAP_AAD + prefix)
        header = prefix + struct.pack(">H", len(wrapped)) + wrapped
        out.write(header)
        self._header_digest = hashlib.sha256(header).digest()
        self.records: list[SectionRecord] = []

    def write_section(self, kind: SectionKind, blocks: Iterable[bytes], *,
                      customer: str | None = None, customer_key: bytes | None = None) -> None:
        """Compress (if asked) and encrypt ``blocks`` as one section; a customer's under
        ``customer_key``."""
        if (kind is SectionKind.CUSTOMER) != (customer is not None and customer_key is not None):
            raise ValueError("a customer section, and only one, names its customer and key")
        section_key = AESGCM.generate_key(bit_length=256)
        ident = _section_ident(kind, customer)
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapping = AESGCM(customer_key if customer_key is not None else self._file_key)
        wrapped = nonce + wrapping.encrypt(nonce, section_key,
                                           _SECTION_AAD + self._header_digest + ident)
        section_header = ident + struct.pack(">H", len(wrapped)) + wrapped
        digest = hashlib.sha256(section_header)
        self._out.write(section_header)
        size = len(section_header)
        aead = AESGCM(section_key)
        aad = hashlib.sha256(self._header_digest + section_header).digest()
        compressor = zlib.compressobj(COMPRESSION_LEVEL) if self._compress else None
        buffer = bytearray()
        counter = 0

        def emit(plaintext: bytes, final: bool) -> None:
            nonlocal counter, size
            sealed = aead.encrypt(chunk_nonce(counter, final), plaintext, aad)
            length = _LENGTH.pack(len(sealed) | (_FINAL if final else 0))
            for piece in (length, sealed):
                self._out.write(piece)
                digest.update(piece)
            size += len(length) + len(sealed)
            counter += 1

        for block in blocks:
            buffer += compressor.compress(block) if compressor is not None else block
            # Keep at least one byte back: whatever is left at the end is the final chunk.
            while len(buffer) > self._chunk_size:
                emit(bytes(buffer[: self._chunk_size]), False)
                del buffer[: self._chunk_size]
        if compressor is not None:
            buffer += compressor.flush()
        while len(buffer) > self._chunk_size:
            emit(bytes(buffer[: self._chunk_size]), False)
            del buffer[: self._chunk_size]
        emit(bytes(buffer), True)
        self.records.append(SectionRecord(kind, customer, digest.hexdigest(), size))

    def finish(self) -> None:
        """Write the manifest: the list of sections, under the file key."""
        listing = [{"kind": r.kind.name.lower(), "customer": r.customer, "sha256": r.sha256,
                    "size": r.size} for r in self.records]
        self.write_section(SectionKind.MANIFEST, [json.dumps({"sections": listing}).encode()])


def _section_ident(kind: SectionKind, customer: str | None) -> bytes:
    if kind is SectionKind.CUSTOMER:
        assert customer is not None
        raw = customer.encode("ascii")
        if len(raw) != _DIGEST_LEN:
            raise ValueError("a customer digest is 64 hex characters")
        return bytes([kind]) + raw
    return bytes([kind])


# --- reading ----------------------------------------------------------------------------------


def read_header(stream: BinaryIO, where: str) -> BackupHeader:
    """Parse the header (no key needed: prune and listings read only this).

    :raises BackupError: not a backup, an unknown version, or a malformed header.
    """
    magic = stream.read(len(MAGIC))
    if magic != MAGIC:
        raise BackupError(f"{where} is not an accessd backup (wrong magic bytes)")
    fixed = _read_exact(stream, _FIXED.size, where)
    version, micros, chunk_size, compression = _FIXED.unpack(fixed)
    if version != OLD_FORMAT_VERSION and version not in SECTION_VERSIONS:
        raise BackupError(f"{where} is backup format {version}; this accessd reads formats "
                          f"{OLD_FORMAT_VERSION} to {FORMAT_VERSION}: restore it with the "
                          "accessd version that wrote it")
    allowed = {COMPRESSION_ZLIB} if version == OLD_FORMAT_VERSION else {COMPRESSION_NONE,
                                                                          COMPRESSION_ZLIB}
    if compression not in allowed or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise BackupError(f"{where} has a damaged header (compression {compression}, chunk size "
                          f"{chunk_size}); use another backup")
    key_len = _read_exact(stream, 1, where)[0]
    key_raw = _read_exact(stream, key_len, where)
    key_file_raw = b""
    key_file_id = generation = None
    if version in SECTION_VERSIONS:
        key_file_raw = _read_exact(stream, _KEY_FILE.size, where)
        key_file_id, generation = _KEY_FILE.unpack(key_file_raw)
    wrapped_len_raw = _read_exact(stream, 2, where)
    (wrapped_len,) = struct.unpack(">H", wrapped_len_raw)
    if wrapped_len > MAX_WRAPPED_KEY:
        raise BackupError(f"{where} has a damaged header (wrapped key of {wrapped_len} bytes)")
    wrapped = _read_exact(stream, wrapped_len, where)
    try:
        key_id = key_raw.decode("ascii")
        created_at = _EPOCH + dt.timedelta(microseconds=micros)
    except (UnicodeDecodeError, OverflowError):
        raise BackupError(f"{where} has a damaged header; use another backup") from None
    raw = magic + fixed + bytes([key_len]) + key_raw + key_file_raw + wrapped_len_raw + wrapped
    return BackupHeader(version, created_at, key_id, chunk_size, wrapped, raw, key_file_id,
                        generation, compression)


def _unwrap_file_key(header: BackupHeader, provider: KeyProvider, where: str) -> bytes:
    prefix = header.raw[: len(header.raw) - 2 - len(header.wrapped_file_key)]
    try:
        key = provider.decrypt(header.master_key_id, header.wrapped_file_key, _WRAP_AAD + prefix)
    except KeyFileError as exc:
        raise BackupError(f"{where} was encrypted under master key {header.master_key_id}, "
                          f"which this keyring does not hold ({exc}); restore with the keyring "
                          "that was in use when the backup was made") from None
    except DecryptionError:
        raise BackupError(f"{where}: the header does not authenticate under master key "
                          f"{header.master_key_id}: the file was altered or the keyring is "
                          "not this installation's; use another backup") from None
    if len(key) != KEY_BYTES:
        raise BackupError(f"{where}: the file key has the wrong size; use another backup")
    return key


@dataclass
class Section:
    """A section being read. ``readable``: its key is at hand; then ``blocks()`` yields its
    plaintext, authenticated chunk by chunk. Read it to the end, or not at all: the reader
    steps over what is left and checks it against the manifest."""

    kind: SectionKind
    customer: str | None
    stream: _SectionStream = field(repr=False)

    @property
    def readable(self) -> bool:
        return self.stream.aead is not None

    def blocks(self) -> Iterator[bytes]:
        return self.stream.plaintext()


def _chunk_field(stream: BinaryIO, where: str, counter: int,
                 of: str | None = None) -> tuple[bytes, int]:
    """The length field before chunk ``counter``, as read and as a number (``of`` names the
    section in the messages; format 1 has none).

    :raises BackupError: the file ends before the field, or inside it.
    """
    raw = stream.read(_LENGTH.size)
    if not raw:
        raise BackupError(f"{where} is truncated: {of or 'it'} ends after chunk {counter} "
                          "without its final chunk; it cannot be trusted, use another backup")
    if len(raw) < _LENGTH.size:
        inside = f" of {of}" if of else ""
        raise BackupError(f"{where} is truncated inside chunk {counter}{inside}; use another "
                          "backup")
    (value,) = _LENGTH.unpack(raw)
    return raw, value


def _check_length(length: int, chunk_size: int, where: str, counter: int,
                  of: str | None = None) -> None:
    """:raises BackupError: ``length`` cannot be a sealed chunk of at most ``chunk_size``."""
    if not TAG_BYTES <= length <= chunk_size + TAG_BYTES:
        inside = f" of {of}" if of else ""
        raise BackupError(f"{where}: chunk {counter}{inside} has an impossible length {length}: "
                          "the file is damaged; use another backup")


class _SectionStream:
    def __init__(self, stream: BinaryIO, where: str, aead: AESGCM | None, aad: bytes,
                 chunk_size: int, digest: Any, label: str, compressed: bool) -> None:
        self._stream, self._where, self.aead, self._aad = stream, where, aead, aad
        self._chunk_size, self.digest, self._label = chunk_size, digest, label
        self._compressed = compressed
        self._counter = 0
        self.done = False

    def _next(self, decrypt: bool) -> tuple[bytes | None, bool]:
        where, counter = self._where, self._counter
        length_raw, field_ = _chunk_field(self._stream, where, counter, self._label)
        final, length = bool(field_ & _FINAL), field_ & ~_FINAL
        _check_length(length, self._chunk_size, where, counter, self._label)
        sealed = _read_exact(self._stream, length, where)
        self.digest.update(length_raw)
        self.digest.update(sealed)
        self._counter += 1
        self.done = final
        if not decrypt or self.aead is None:
            return None, final
        try:
            return self.aead.decrypt(chunk_nonce(counter, final), sealed, self._aad), final
        except InvalidTag:
            raise BackupError(f"{where}: chunk {counter} of {self._label} does not "
                              "authenticate: the file was altered, damaged or reordered; "
                              "use another backup") from None

    def plaintext(self) -> Iterator[bytes]:
        inflater = zlib.decompressobj()
        while not self.done:
            data, _ = self._next(True)
            assert data is not None
            if not self._compressed:
                yield data
                continue
            yield from _inflate(inflater, data, self._where)
        if not self._compressed:
            return
        tail = inflater.flush()
        if not inflater.eof or inflater.unused_data:
            raise BackupError(f"{self._where}: the compressed stream of {self._label} is "
                              "incomplete or has trailing data; use another backup")
        if tail:
            yield tail

    def drain(self, decrypt: bool) -> None:
        while not self.done:
            self._next(decrypt)


class BackupReader:
    """Reads a backup file section by section (formats 2 and 3), or as one stream (format 1).

    :raises BackupError: anything that does not authenticate, does not end properly, or does
        not match the manifest; the message says to use another backup.
    """

    def __init__(self, stream: BinaryIO, provider: KeyProvider, where: str) -> None:
        self._stream, self._where = stream, where
        self.where = where  # how messages name the file
        self.header = read_header(stream, where)
        self._file_key = _unwrap_file_key(self.header, provider, where)

    def sections(self, customer_key: Callable[[str], bytes | None], *,
                 authenticate_skipped: bool = False) -> Iterator[Section]:
        """Each section in turn; ``customer_key(digest)`` gives a customer's key or None. The
        manifest is checked last; ``authenticate_skipped`` also decrypts (without
        decompressing) the chunks of readable sections the caller did not read."""
        if self.header.version not in SECTION_VERSIONS:
            raise BackupError(f"{self._where} is format {self.header.version}: it has no sections")
        seen: list[SectionRecord] = []
        while True:
            kind, customer, stream = self._open_section(customer_key, len(seen))
            if kind is SectionKind.MANIFEST:
                manifest = b"".join(stream.plaintext())
                self._check_manifest(manifest, seen)
                return
            if not seen and kind is not SectionKind.INSTALLATION:
                raise BackupError(f"{self._where} does not begin with the installation's "
                                  "section; use another backup")
            yield Section(kind, customer, stream)
            stream.drain(authenticate_skipped)
            seen.append(SectionRecord(kind, customer, stream.digest.hexdigest(), 0))

    def _open_section(self, customer_key: Callable[[str], bytes | None],
                      index: int) -> tuple[SectionKind, str | None, _SectionStream]:
        where = self._where
        kind_raw = self._stream.read(1)
        if not kind_raw:
            raise BackupError(f"{where} is truncated: it ends after {index} sections without "
                              "its manifest; it cannot be trusted, use another backup")
        try:
            kind = SectionKind(kind_raw[0])
        except ValueError:
            raise BackupError(f"{where}: section {index} has an unknown kind {kind_raw[0]}: "
                              "the file is damaged; use another backup") from None
        customer = None
        ident = kind_raw
        if kind is SectionKind.CUSTOMER:
            raw = _read_exact(self._stream, _DIGEST_LEN, where)
            ident += raw
            customer = raw.decode("ascii", errors="replace")
        wrapped_len_raw = _read_exact(self._stream, 2, where)
        (wrapped_len,) = struct.unpack(">H", wrapped_len_raw)
        if wrapped_len > MAX_WRAPPED_KEY:
            raise BackupError(f"{where}: section {index} has a damaged header; use another "
                              "backup")
        wrapped = _read_exact(self._stream, wrapped_len, where)
        section_header = ident + wrapped_len_raw + wrapped
        label = f"the section of customer {customer[:12]}…" if customer else \
            f"the {kind.name.lower()} section"
        wrapping = self._file_key if customer is None else customer_key(customer)
        aead = None
        if wrapping is not None:
            try:
                key = AESGCM(wrapping).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                               _SECTION_AAD + self.header.digest + ident)
            except (InvalidTag, ValueError):
                if customer is None:
                    raise BackupError(f"{where}: the key of {label} does not authenticate: the "
                                      "file was altered; use another backup") from None
                raise BackupError(f"{where}: the key of {label} does not open under the "
                                  "customer's key in the backup key file: the file was altered, "
                                  "or the key file is not this backup's; use another backup"
                                  ) from None
            aead = AESGCM(key)
        aad = hashlib.sha256(self.header.digest + section_header).digest()
        stream = _SectionStream(self._stream, where, aead, aad, self.header.chunk_size,
                                hashlib.sha256(section_header), label,
                                self.header.compression == COMPRESSION_ZLIB)
        return kind, customer, stream

    def _check_manifest(self, manifest: bytes, seen: list[SectionRecord]) -> None:
        where = self._where
        try:
            listed = json.loads(manifest)["sections"]
            expected = [(SectionKind[item["kind"].upper()], item["customer"], item["sha256"])
                        for item in listed]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackupError(f"{where}: the manifest cannot be read; use another backup"
                              ) from None
        if expected != [(r.kind, r.customer, r.sha256) for r in seen]:
            raise BackupError(f"{where}: its sections do not match its manifest (a section was "
                              "dropped, added, reordered or altered); use another backup")
        if self._stream.read(1):
            raise BackupError(f"{where} has bytes after its manifest: the file was altered; "
                              "use another backup")

    def whole(self) -> Iterator[bytes]:
        """Format 1: the database, decrypted and decompressed; read it to the end (only then
        are truncation and trailing bytes detected)."""
        if self.header.version != OLD_FORMAT_VERSION:
            raise BackupError(f"{self._where} is format {self.header.version}: read its sections")
        aead = AESGCM(self._file_key)
        inflater = zlib.decompressobj()
        counter = 0
        where = self._where
        while True:
            _raw, length = _chunk_field(self._stream, where, counter)
            _check_length(length, self.header.chunk_size, where, counter)
            sealed = _read_exact(self._stream, length, where)
            plaintext, final = _open_v1_chunk(aead, sealed, counter, self.header.digest, where)
            yield from _inflate(inflater, plaintext, where)
            counter += 1
            if final:
                break
        if self._stream.read(1):
            raise BackupError(f"{where} has bytes after its final chunk: the file was altered; "
                              "use another backup")
        tail = inflater.flush()
        if not inflater.eof or inflater.unused_data:
            raise BackupError(f"{where}: the compressed stream is incomplete or has trailing "
                              "data; use another backup")
        if tail:
            yield tail


def _open_v1_chunk(aead: AESGCM, sealed: bytes, counter: int, aad: bytes,
                   where: str) -> tuple[bytes, bool]:
    for final in (False, True):
        try:
            return aead.decrypt(chunk_nonce(counter, final), sealed, aad), final
        except InvalidTag:
            continue
    raise BackupError(f"{where}: chunk {counter} does not authenticate: the file was altered, "
                      "damaged or reordered; use another backup")


def _inflate(inflater: zlib._Decompress, data: bytes, where: str) -> Iterator[bytes]:
    try:
        while data:
            out = inflater.decompress(data, _MAX_INFLATE)
            if out:
                yield out
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise BackupError(f"{where}: the compressed stream is damaged ({exc}); "
                          "use another backup") from None


def _read_exact(stream: BinaryIO, size: int, where: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise BackupError(f"{where} is truncated; use another backup")
    return data
