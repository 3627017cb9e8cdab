"""The encrypted backup file, format version 1: a header, then authenticated AES-256-GCM chunks.

Layout (integers big-endian)::

    magic         20 bytes   b"\\x89accessd-backup\\r\\n\\x1a\\n"
    version       u16        1
    created_at    i64        microseconds since 1970-01-01T00:00:00Z
    chunk_size    u32        plaintext bytes per chunk (the final chunk may be shorter, or empty)
    compression   u8         1 = zlib (deflate)
    key id        u8 length, then the master key id (ASCII)
    file key      u16 length, then a random 256-bit file key wrapped by that master key
    chunks        repeated: u32 length, then AES-256-GCM ciphertext (plaintext + 16-byte tag)

The plaintext of the chunks, concatenated, is the zlib stream of the database snapshot.

- Every backup has its own random file key, so (key, nonce) pairs never repeat across files.
- A chunk's nonce is its counter (11 bytes) and a final flag (1 byte): chunks cannot be
  reordered, dropped or duplicated, and a file cut at a chunk boundary lacks the chunk
  that decrypts with the final flag set, so truncation is detected, not silently accepted.
- Each chunk's associated data is the SHA-256 of the whole header; the file key's wrapping
  binds the header fields before it. A changed header byte fails authentication.
- Nothing is trusted before its tag checks: readers yield only authenticated plaintext, and
  a header's sizes are bounded before anything is allocated for them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from accessd.crypto import KeyProvider
from accessd.errors import BackupError, DecryptionError, KeyFileError

# PNG's trick: a high-bit byte and both line endings reveal a file mangled by a text transfer.
MAGIC = b"\x89accessd-backup\r\n\x1a\n"
FORMAT_VERSION = 1
COMPRESSION_ZLIB = 1
CHUNK_SIZE = 1 << 20
TAG_BYTES = 16
FILE_KEY_BYTES = 32
MAX_CHUNK_SIZE = 16 << 20  # a header asking for more is refused before anything is allocated
MAX_WRAPPED_KEY = 1024
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FIXED = struct.Struct(">HqIB")  # version, created_at, chunk_size, compression
_LENGTH = struct.Struct(">I")
_WRAP_AAD = b"accessd/backup-file-key/v1\x00"
# Never hand the decompressor more than this at once: a page of zeros compresses ~1000:1.
_MAX_INFLATE = 4 << 20




@dataclass(frozen=True, slots=True)
class BackupHeader:
    """What a backup file says about itself before any decryption."""

    created_at: dt.datetime
    master_key_id: str
    chunk_size: int
    wrapped_file_key: bytes
    raw: bytes  # the header's bytes, as authenticated by every chunk

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.raw).digest()


def chunk_nonce(counter: int, final: bool) -> bytes:
    """The 12-byte nonce of chunk ``counter``: counter, then the final flag."""
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _header_prefix(created_at: dt.datetime, chunk_size: int, key_id: str) -> bytes:
    micros = (created_at - _EPOCH) // dt.timedelta(microseconds=1)
    key = key_id.encode("ascii")
    return MAGIC + _FIXED.pack(FORMAT_VERSION, micros, chunk_size, COMPRESSION_ZLIB) + bytes(
        [len(key)]) + key


class BackupWriter:
    """Compresses and encrypts a stream into ``out``; ``close`` writes the final chunk.

    Use as a context manager; an exception inside the block leaves the output unfinished
    (no final chunk), so a reader refuses it.
    """

    def __init__(self, out: BinaryIO, provider: KeyProvider, created_at: dt.datetime,
                 chunk_size: int = CHUNK_SIZE) -> None:
        if created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware (UTC)")
        self._out = out
        self._chunk_size = chunk_size
        file_key = AESGCM.generate_key(bit_length=256)
        key_id = provider.active_key_id
        prefix = _header_prefix(created_at.astimezone(dt.UTC), chunk_size, key_id)
        wrapped = provider.encrypt(key_id, file_key, _WRAP_AAD + prefix)
        header = prefix + struct.pack(">H", len(wrapped)) + wrapped
        out.write(header)
        self._aad = hashlib.sha256(header).digest()
        self._aead = AESGCM(file_key)
        self._compressor = zlib.compressobj(6)
        self._buffer = bytearray()
        self._counter = 0
        self._closed = False

    def write(self, data: bytes) -> None:
        self._buffer += self._compressor.compress(data)
        # Keep at least one byte back: whatever is left at close becomes the final chunk.
        while len(self._buffer) > self._chunk_size:
            self._emit(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]

    def close(self) -> None:
        if self._closed:
            return
        self._buffer += self._compressor.flush()
        while len(self._buffer) > self._chunk_size:
            self._emit(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]
        self._emit(bytes(self._buffer), final=True)
        self._buffer.clear()
        self._closed = True

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        sealed = self._aead.encrypt(chunk_nonce(self._counter, final), plaintext, self._aad)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._counter += 1

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()


def read_header(stream: BinaryIO, where: str) -> BackupHeader:
    """Parse the header (no key needed: prune and listings read only this).

    :raises BackupError: not a backup, an unknown version, or a malformed header.
    """
    magic = stream.read(len(MAGIC))
    if magic != MAGIC:
        raise BackupError(f"{where} is not an accessd backup (wrong magic bytes)")
    fixed = _read_exact(stream, _FIXED.size, where)
    version, micros, chunk_size, compression = _FIXED.unpack(fixed)
    if version != FORMAT_VERSION:
        raise BackupError(f"{where} is backup format {version}; this accessd reads format "
                          f"{FORMAT_VERSION}: restore it with the accessd version that wrote it")
    if compression != COMPRESSION_ZLIB or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise BackupError(f"{where} has a damaged header (compression {compression}, chunk size "
                          f"{chunk_size}); use another backup")
    key_len = _read_exact(stream, 1, where)[0]
    key_raw = _read_exact(stream, key_len, where)
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
    raw = magic + fixed + bytes([key_len]) + key_raw + wrapped_len_raw + wrapped
    return BackupHeader(created_at, key_id, chunk_size, wrapped, raw)


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
    if len(key) != FILE_KEY_BYTES:
        raise BackupError(f"{where}: the file key has the wrong size; use another backup")
    return key


def iter_plaintext(stream: BinaryIO, provider: KeyProvider, where: str,
                   header: BackupHeader | None = None) -> Iterator[bytes]:
    """Decrypt and decompress the chunks after the header, yielding authenticated bytes only.

    The caller must consume the iterator to the end: only then are truncation, trailing
    bytes and a damaged compressed stream detected.

    :raises BackupError: anything that does not authenticate or does not end properly.
    """
    header = header or read_header(stream, where)
    aead = AESGCM(_unwrap_file_key(header, provider, where))
    inflater = zlib.decompressobj()
    counter = 0
    while True:
        length_raw = stream.read(_LENGTH.size)
        if not length_raw:
            raise BackupError(f"{where} is truncated: it ends after chunk {counter} without its "
                              "final chunk; it cannot be trusted, use another backup")
        if len(length_raw) < _LENGTH.size:
            raise BackupError(f"{where} is truncated inside chunk {counter}; use another backup")
        (length,) = _LENGTH.unpack(length_raw)
        if not TAG_BYTES <= length <= header.chunk_size + TAG_BYTES:
            raise BackupError(f"{where}: chunk {counter} has an impossible length {length}: "
                              "the file is damaged; use another backup")
        sealed = _read_exact(stream, length, where)
        plaintext, final = _open_chunk(aead, sealed, counter, header.digest, where)
        yield from _inflate(inflater, plaintext, where)
        counter += 1
        if final:
            break
    if stream.read(1):
        raise BackupError(f"{where} has bytes after its final chunk: the file was altered; "
                          "use another backup")
    tail = inflater.flush()
    if not inflater.eof or inflater.unused_data:
        raise BackupError(f"{where}: the compressed stream is incomplete or has trailing data; "
                          "use another backup")
    if tail:
        yield tail


def _open_chunk(aead: AESGCM, sealed: bytes, counter: int, aad: bytes,
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

