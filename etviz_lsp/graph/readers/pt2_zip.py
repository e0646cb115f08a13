"""A ``.pt2`` (or ETRecord) zip, read within the limits budget: layout, members, versions.

Opening the zip maps every error zipfile raises on a damaged or foreign file to one line
(:func:`open_zip`, also what ``pt2_load`` checks before ``torch.export.load``). Members
are read within a ``limits.Budget``: an uncompressed one mapped from the file, a deflated
one inflated step by step. The archive version and the program's schema version are
checked here, and an AOTInductor package or another zip is named as such. An archive this
reader does not know raises :class:`UnsupportedArchive` (``torch.export.load`` might).
"""

from __future__ import annotations

import mmap
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.binary import limits
from etviz_lsp.graph.readers import pt2_schema

# What this reader knows (torch 2.13: archive "0", schema 8.x; torch's own loader accepts
# any minor version of its major, and so do we: minor bumps only add optional fields).
ARCHIVE_VERSIONS = frozenset({"0"})
SCHEMA_MAJOR = 8

MODELS_DIR = "models/"
WEIGHTS_CONFIG = "data/weights/{}_weights_config.json"
_AOTI_DIR = "data/aotinductor/"


class UnsupportedArchive(EtvizError):
    """An archive this reader does not understand, but ``torch.export.load`` might."""


# What zipfile raises on damaged bytes besides BadZipFile (found by fuzzing): names that are
# not UTF-8, a corrupt deflate stream, an unknown compression method or encryption flag.
_ZIP_DAMAGE = (EOFError, UnicodeDecodeError, zlib.error, NotImplementedError, RuntimeError,
               ValueError)


def open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise EtvizError(str(path), "no such file")
    if path.is_dir():
        raise EtvizError(str(path), "is a directory, not a .pt2 file")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise EtvizError(str(path), _not_zip_cause(path)) from exc
    except _ZIP_DAMAGE as exc:  # a zip directory with garbage in it
        raise EtvizError(str(path), f"damaged .pt2 archive ({type(exc).__name__})") from exc
    except PermissionError as exc:
        raise EtvizError(str(path), "permission denied") from exc
    except OSError as exc:
        raise EtvizError(str(path), f"cannot read: {exc.strerror or exc}") from exc


def _not_zip_cause(path: Path) -> str:
    """A zip that lost its tail (an interrupted copy or save) still starts like a zip."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        head = b""
    if head == b"PK\x03\x04":
        return "truncated or damaged .pt2 archive (the zip directory at its end is missing)"
    return "not a .pt2 archive (not a zip file)"


def layout(path: Path, archive: zipfile.ZipFile, budget: limits.Budget) -> tuple[str, set[str]]:
    """The archive's root folder (``<name>/``) and its entries; checks kind and version."""
    names = set(archive.namelist())
    root = archive_root(names)
    check_kind(path, names, root, name_old_layout=True)
    version_file = root + "archive_version"
    version = (
        bytes(read_bytes(path, archive, version_file, budget)).decode(errors="replace").strip()
        if version_file in names
        else "(none)"
    )
    if version not in ARCHIVE_VERSIONS:
        raise UnsupportedArchive(
            str(path),
            f"archive version {version if version.isprintable() else repr(version)} "
            "is not one this reader knows "
            f"({', '.join(sorted(ARCHIVE_VERSIONS))})",
        )
    return root, names


def check_kind(path: Path, names: set[str], root: str, *, name_old_layout: bool = False) -> None:
    """Refuse a zip that holds no exported program: an AOTInductor package, any other
    zip; with ``name_old_layout``, an old layout as :class:`UnsupportedArchive` (the direct
    reader's refusal: ``torch.export.load`` might read it)."""
    if any(n.startswith(root + MODELS_DIR) and n.endswith(".json") for n in names):
        return
    if any(n.startswith(root + _AOTI_DIR) or n.endswith(".so") for n in names):
        raise EtvizError(
            str(path),
            "an AOTInductor package (compiled code, no exported graph); "
            "save the program with torch.export.save to view it",
        )
    if name_old_layout and (root + "version" in names or "version" in names):
        raise UnsupportedArchive(str(path), "an old .pt2 layout (before torch 2.7)")
    raise EtvizError(
        str(path), "a zip file but not a torch.export .pt2 archive (no models/*.json)"
    )


def archive_root(names: set[str]) -> str:
    """torch writes every entry under one folder named after the archive at save time."""
    for name in names:
        if name.endswith("/archive_format") and name.count("/") == 1:
            return name.split("/", 1)[0] + "/"
    first = min(names, default="")
    return first.split("/", 1)[0] + "/" if "/" in first else ""


def model_names(names: set[str], root: str) -> list[str]:
    prefix = root + MODELS_DIR
    models = sorted(
        n[len(prefix) : -len(".json")]
        for n in names
        if n.startswith(prefix) and n.endswith(".json") and "/" not in n[len(prefix) :]
    )
    # torch.export.load returns the program saved as "model": show it first.
    return sorted(models, key=lambda m: m != "model")


def read_bytes(
    path: Path, archive: zipfile.ZipFile, name: str, budget: limits.Budget
) -> bytes | bytearray | memoryview:
    """A member's bytes: mapped if stored, else inflated within ``budget`` (see _inflate)."""
    info = archive.getinfo(name)
    budget.declared(name, info.compress_size, info.file_size)  # before a byte is read
    mapped = _mapped(path, info)
    if mapped is not None:
        budget.streamed(name, len(mapped), len(mapped))  # its size on disk: ratio 1
        return mapped
    try:
        return _inflate(path, info, budget)
    except (zlib.error, EOFError) as exc:
        cause = first_line(f"{type(exc).__name__}: {exc}")
        raise EtvizError(str(path), f"damaged .pt2 archive: cannot read {name} ({cause})") from exc
    except OSError as exc:
        raise EtvizError(str(path), f"cannot read {name}: {exc}") from exc


def read_program(
    path: Path,
    archive: zipfile.ZipFile,
    name: str,
    budget: limits.Budget,
    schema_major: int = SCHEMA_MAJOR,
) -> pt2_schema.Program:
    data = read_bytes(path, archive, name, budget)
    try:
        program = pt2_schema.decode_program(data)
    except msgspec.ValidationError as exc:  # JSON, but not a program as this reader knows it
        _check_schema(path, _version_of(path, name, data), schema_major)  # a newer one: say so
        cause = first_line(str(exc))
        raise UnsupportedArchive(str(path), f"unexpected serialized program ({cause})") from None
    except RecursionError:
        raise _too_deep(path, name) from None
    # Invalid UTF-8 inside a JSON string (found by fuzzing an ETRecord) is damage too.
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise EtvizError(str(path), f"damaged .pt2 archive: {name} is not valid JSON") from exc
    _check_schema(path, program.schema_version, schema_major)
    budget.count(f"nodes in {name}", len(program.graph_module.graph.nodes),
                 budget.limits.max_nodes)
    return program


_LOCAL_HEADER = 30  # bytes before a member's name in its local header (zip format)


def _data_start(header: bytes, info: zipfile.ZipInfo) -> int | None:
    """Where a member's data starts, from its local header (None: no header there)."""
    if len(header) < _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + _LOCAL_HEADER + name_length + extra_length


def _mapped(path: Path, info: zipfile.ZipInfo) -> memoryview | None:
    """An uncompressed member as a view of the file mapped into memory, not read into it.

    torch stores the program JSON uncompressed: mapping it spares a copy of 22 MB at 20k
    nodes and ~5,000 page faults (the kernel maps a file's pages in batches, where fresh
    memory faults in page by page). The CRC is checked, as zipfile checks it. None when
    the member is compressed or encrypted, or is not where the zip directory says, or its
    CRC is wrong: then :func:`_inflate` reads it (and reports what is wrong).
    """
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    try:
        with path.open("rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    start = _data_start(mapped[info.header_offset : info.header_offset + _LOCAL_HEADER], info)
    if start is None:
        return None
    view = memoryview(mapped)[start : start + info.compress_size]
    if len(view) != info.file_size or zlib.crc32(view) != info.CRC:
        return None
    return view  # the decoded program's raw parts keep it (and the mapping) alive


_READ_SIZE = 64 * 1024  # compressed bytes read per step


def _inflate(path: Path, info: zipfile.ZipInfo, budget: limits.Budget) -> bytearray:
    """A member's bytes, inflated step by step within ``budget``.

    Not ``zipfile``'s reader: it inflates a member whole before anything can be checked.
    Here (the header's sizes having been checked by the caller) every step of at most
    ``limits.chunk`` bytes counts what was read and inflated, so a member that inflates
    past a limit, or past the size its header declares, is refused after one step.
    """
    name = info.filename
    if info.flag_bits & 0x1:
        raise EtvizError(str(path), f"{name} is encrypted: not a torch.export archive")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise EtvizError(
            str(path),
            f"{name} is compressed with zip method {info.compress_type} "
            "(torch writes stored or deflated members only)",
        )
    out, crc = bytearray(), 0
    with path.open("rb") as handle:
        for read, piece in _steps(path, handle, info, budget.limits.chunk):
            budget.streamed(name, read, len(piece))
            if len(out) + len(piece) > info.file_size:
                raise limits.LimitExceeded(
                    str(path), f"{name} inflates past the {info.file_size:,} bytes its zip "
                    "header declares (a damaged or crafted archive): refused unread",
                )
            out += piece
            crc = zlib.crc32(piece, crc)
    if len(out) != info.file_size or crc != info.CRC:
        raise EtvizError(
            str(path), f"damaged .pt2 archive: {name} does not match its zip header "
            "(size or CRC)",
        )
    return out


def _steps(
    path: Path, handle: BinaryIO, info: zipfile.ZipInfo, chunk: int
) -> Iterator[tuple[int, bytes]]:
    """(compressed bytes read, bytes inflated) for each step to the member's end."""
    handle.seek(info.header_offset)
    start = _data_start(handle.read(_LOCAL_HEADER), info)
    if start is None:
        raise EtvizError(
            str(path), f"damaged .pt2 archive: {info.filename} is not where the zip directory says"
        )
    handle.seek(start)
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    left, pending = info.compress_size, b""
    while True:
        read = b""
        if not pending and left > 0:
            read = handle.read(min(_READ_SIZE, left))
            if not read:
                raise EOFError(f"{info.filename} ends early")
            left -= len(read)
            pending = read
        if inflater is None:
            piece, pending = pending, b""
        else:
            piece = inflater.decompress(pending, chunk)
            pending = inflater.unconsumed_tail
        yield len(read), piece
        if inflater.eof if inflater is not None else left == 0:
            return
        if not piece and not pending and left == 0:
            raise EOFError(f"{info.filename}: its compressed data ends early")


def _version_of(path: Path, name: str, data: bytes | bytearray | memoryview) -> Any:
    try:
        return pt2_schema.decode_version(data)
    except msgspec.ValidationError:
        raise UnsupportedArchive(str(path), f"{name} does not hold a JSON object") from None
    except RecursionError:
        raise _too_deep(path, name) from None


def _too_deep(path: Path, name: str) -> limits.LimitExceeded:
    return limits.LimitExceeded(
        str(path), f"{name} nests deeper than {limits.json_depth():,} levels: refused unread"
    )


def read_weights(
    path: Path, archive: zipfile.ZipFile, name: str, budget: limits.Budget
) -> dict[str, pt2_schema.WeightEntry]:
    data = read_bytes(path, archive, name, budget)
    try:
        return pt2_schema.decode_weights(data).config
    except msgspec.ValidationError as exc:
        cause = first_line(str(exc))
        raise UnsupportedArchive(str(path), f"unexpected weights config {name} ({cause})") from None
    except RecursionError:
        raise _too_deep(path, name) from None
    except msgspec.DecodeError as exc:
        raise EtvizError(str(path), f"damaged .pt2 archive: {name} is not valid JSON") from exc


def first_line(text: str) -> str:
    """Error messages stay on one line, whatever a damaged file put in them."""
    lines = text.splitlines()
    return lines[0] if lines else text


def _check_schema(path: Path, version: Any, schema_major: int = SCHEMA_MAJOR) -> None:
    if not isinstance(version, dict) or "major" not in version:
        raise UnsupportedArchive(str(path), "serialized program has no schema version")
    major, minor = version.get("major"), version.get("minor")
    # torch also reads 0.0 (programs written before versions were recorded).
    if major != schema_major and (major, minor) != (0, 0):
        raise UnsupportedArchive(
            str(path),
            f"serialized schema version {major}.{minor} is not one this reader knows "
            f"({schema_major}.x)",
        )

