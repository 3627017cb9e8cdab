"""Reading and damaging backup files by hand, for the tests."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from accessd.backup.format import read_header
from accessd.crypto import KeyProvider


def chunk_offsets(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """The header's length and each chunk's (offset, total length with its length field)."""
    header = read_header(io.BytesIO(data), "test")
    offset, chunks = len(header.raw), []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        chunks.append((offset, 4 + length))
        offset += 4 + length
    return len(header.raw), chunks


def decrypt_to_sqlite(path: Path, provider: KeyProvider, out: Path) -> Path:
    """The database inside a backup, written to ``out``."""
    from accessd.backup.format import iter_plaintext

    with path.open("rb") as stream, out.open("wb") as target:
        for block in iter_plaintext(stream, provider, str(path)):
            target.write(block)
    return out


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]
