"""Zip archives written byte by byte, headers saying whatever a test wants.

``zipfile`` always writes true headers and must compress every byte it stores; a zip
bomb of several GiB would take it a quarter of a minute. Here a member's deflate stream
is made of one compressed block repeated (each block ends with a full flush, so every
copy is the same bytes), and its headers may declare sizes that are not true.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

STORED, DEFLATED = 0, 8


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    data: bytes  # as stored in the archive (deflated or not)
    method: int
    crc: int
    size: int  # the uncompressed size both headers declare
    compressed_size: int | None = None  # declared; None: len(data), the truth


def stored(name: str, data: bytes) -> Member:
    return Member(name, data, STORED, zlib.crc32(data), len(data))


def deflated(name: str, head: bytes, block: bytes = b"", repeat: int = 0,
             tail: bytes = b"") -> Member:
    """``head + block * repeat + tail``, deflated, without compressing every copy."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    packed_block = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH) if repeat else b""
    last = packer.compress(tail) + packer.flush()
    crc = zlib.crc32(head)
    for _ in range(repeat):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    data = first + packed_block * repeat + last
    return Member(name, data, DEFLATED, crc, len(head) + len(block) * repeat + len(tail))


def write(path: Path, members: list[Member]) -> Path:
    """Local headers and data, then the central directory (no zip64: sizes under 4 GiB)."""
    body, directory = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        declared = len(m.data) if m.compressed_size is None else m.compressed_size
        fields = struct.pack("<HHHHHIIIHH", 20, 0, m.method, 0, 0x21, m.crc, declared, m.size,
                             len(name), 0)
        offset = len(body)
        body += b"PK\x03\x04" + fields + name + m.data
        directory += (b"PK\x01\x02" + struct.pack("<H", 20) + fields
                      + struct.pack("<HHHII", 0, 0, 0, 0, offset) + name)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path
