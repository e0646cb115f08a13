"""Read a FlatBuffer by the ``.fbs`` schema that describes it: no generated code, no torch.

ExecuTorch ships the schemas of what it writes (``exir/_serialize/program.fbs`` for a
``.pte``, ``backends/xnnpack/serialization/schema.fbs`` for an XNNPACK delegate blob) in
its wheel. Its generated Python classes import ``executorch.exir`` (and so torch) and
unpack whole buffers; reading fields by name straight from the bytes, with the schema
telling each field's slot and type, costs neither. Only what a caller asks for is decoded.

The wire format (flatbuffers.dev, "internals"): a table starts with an ``int32`` offset
back to its vtable; the vtable lists, per field slot, the field's offset in the table (0:
absent, the default applies). References (strings, vectors, tables) are ``uint32`` offsets
forward from where they are stored; a vector or string starts with its ``uint32`` length.
A union field takes two slots: its type (``ubyte``, 0 = none) then the table.

Every read is bounds-checked: a damaged buffer raises :class:`Damaged` (never reads past the
end, never loops), which readers turn into a one-line error naming the file.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCALARS = {
    "bool": "?", "byte": "b", "ubyte": "B", "short": "h", "ushort": "H", "int": "i",
    "uint": "I", "long": "q", "ulong": "Q", "float": "f", "double": "d",
    "int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i", "uint32": "I",
    "int64": "q", "uint64": "Q", "float32": "f", "float64": "d",
}  # fmt: skip


class Damaged(Exception):
    """The bytes do not hold what the schema says (offset out of range, bad length)."""


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str  # scalar, "string", or a table / struct / enum / union name
    slot: int
    vector: bool = False
    default: str = ""


@dataclass(slots=True)
class Schema:
    tables: dict[str, dict[str, FieldDef]] = field(default_factory=dict)
    structs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    enums: dict[str, tuple[str, dict[int, str]]] = field(default_factory=dict)  # base, names
    unions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (member, table)
    root_type: str = ""
    file_identifier: str = ""


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_DECL = re.compile(r"\b(table|struct|enum|union)\s+(\w+)\s*(?::\s*(\w+))?\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(\[?\s*[\w.]+\s*\]?)\s*(?:=\s*([^;(]+?))?\s*(?:\(([^)]*)\))?\s*;")


def parse_schema(path: Path) -> Schema:
    """The tables, enums and unions of ``path`` and of the files it includes."""
    schema = Schema()
    _parse_into(schema, path, set())
    return schema


def _parse_into(schema: Schema, path: Path, seen: set[Path]) -> None:
    if path in seen:
        return
    seen.add(path)
    text = _COMMENT.sub("", path.read_text())
    for include in re.findall(r'include\s+"([^"]+)"\s*;', text):
        _parse_into(schema, path.parent / include, seen)
    if match := re.search(r"\broot_type\s+(\w+)\s*;", text):
        schema.root_type = match[1]
    if match := re.search(r'\bfile_identifier\s+"([^"]*)"\s*;', text):
        schema.file_identifier = match[1]
    for kind, name, base, body in _DECL.findall(text):
        if kind == "enum":
            schema.enums[name] = (base, _enum_values(body))
        elif kind == "union":
            members = [m.strip() for m in body.split(",") if m.strip()]
            schema.unions[name] = [
                (m.split(":")[0].strip(), m.split(":")[-1].strip()) for m in members
            ]
        elif kind == "struct":
            schema.structs[name] = [(f[0], f[1].strip()) for f in _FIELD.findall(body)]
        else:
            schema.tables[name] = _table_fields(body, schema)


def _enum_values(body: str) -> dict[int, str]:
    values, next_value = {}, 0
    for item in (part.strip() for part in body.split(",")):
        if not item:
            continue
        name, _, number = item.partition("=")
        next_value = int(number.strip(), 0) if number.strip() else next_value
        values[next_value] = name.strip()
        next_value += 1
    return values


def _table_fields(body: str, schema: Schema) -> dict[str, FieldDef]:
    fields: dict[str, FieldDef] = {}
    slot = 0
    for name, type_text, default, _attrs in _FIELD.findall(body):
        type_text = type_text.replace(" ", "")
        vector = type_text.startswith("[")
        base = type_text.strip("[]").split(".")[-1]
        if base in schema.unions and not vector:
            slot += 1  # the hidden ``<name>_type`` slot comes first
        fields[name] = FieldDef(name, base, slot, vector, default.strip())
        slot += 1
    return fields


class Table:
    """One table in ``buf`` at ``pos``, read field by field through its schema."""

    __slots__ = ("buf", "pos", "schema", "type_name", "_vtable", "_vtable_len")

    def __init__(self, buf: memoryview | bytes, pos: int, schema: Schema, type_name: str) -> None:
        self.buf, self.pos, self.schema, self.type_name = buf, pos, schema, type_name
        vtable = pos - _get(buf, "<i", pos)
        self._vtable = vtable
        self._vtable_len = _get(buf, "<H", vtable)
        if self._vtable_len < 4 or vtable + self._vtable_len > len(buf):
            raise Damaged(f"bad vtable for a {type_name} at byte {pos}")

    @classmethod
    def root(cls, buf: memoryview | bytes, schema: Schema) -> Table:
        return cls(buf, _get(buf, "<I", 0), schema, schema.root_type)

    def _field_pos(self, slot: int) -> int:
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_len:
            return 0
        offset = _get(self.buf, "<H", self._vtable + entry)
        return self.pos + offset if offset else 0

    def has(self, name: str) -> bool:
        return self._field_pos(self._def(name).slot) != 0

    def _def(self, name: str) -> FieldDef:
        try:
            return self.schema.tables[self.type_name][name]
        except KeyError:
            raise KeyError(f"{self.type_name} has no field {name!r}") from None

    def get(self, name: str) -> Any:
        """Scalars, enums (as their number), strings, tables; None when absent."""
        fdef = self._def(name)
        if fdef.vector:
            return self.vector(name)
        if fdef.type in self.schema.unions:
            return self.union(name)[1]
        pos = self._field_pos(fdef.slot)
        fmt = self._scalar_format(fdef.type)
        if fmt is not None:
            return _get(self.buf, "<" + fmt, pos) if pos else self._default(fdef, fmt)
        if not pos:
            return None
        if fdef.type == "string":
            return _string(self.buf, pos + _get(self.buf, "<I", pos))
        if fdef.type in self.schema.structs:
            return self._struct(fdef.type, pos)
        return Table(self.buf, pos + _get(self.buf, "<I", pos), self.schema, fdef.type)

    def union(self, name: str) -> tuple[str, Table | None]:
        """The member name (``KernelCall``) and its table; ``("NONE", None)`` if absent."""
        fdef = self._def(name)
        type_pos = self._field_pos(fdef.slot - 1)
        index = _get(self.buf, "<B", type_pos) if type_pos else 0
        members = self.schema.unions[fdef.type]
        if index == 0:
            return "NONE", None
        if index > len(members):
            raise Damaged(f"{self.type_name}.{name}: union member {index} is not in the schema")
        member, table_name = members[index - 1]
        pos = self._field_pos(fdef.slot)
        if not pos:
            return member, None
        return member, Table(self.buf, pos + _get(self.buf, "<I", pos), self.schema, table_name)

    def vector_len(self, name: str) -> int:
        pos = self._field_pos(self._def(name).slot)
        return _get(self.buf, "<I", pos + _get(self.buf, "<I", pos)) if pos else 0

    def vector(self, name: str) -> list[Any]:
        """A vector of scalars, strings or tables (read whole: callers check its length)."""
        fdef = self._def(name)
        pos = self._field_pos(fdef.slot)
        if not pos:
            return []
        start = pos + _get(self.buf, "<I", pos)
        length = _get(self.buf, "<I", start)
        fmt = self._scalar_format(fdef.type)
        size = struct.calcsize("<" + fmt) if fmt else 4
        if fdef.type in self.schema.structs:
            raise Damaged(f"{self.type_name}.{name}: vectors of structs are not read")
        if start + 4 + length * size > len(self.buf):
            raise Damaged(f"{self.type_name}.{name}: vector of {length} runs past the end")
        first = start + 4
        if fmt is not None:
            return list(struct.unpack_from(f"<{length}{fmt}", self.buf, first))
        items: list[Any] = []
        for i in range(length):
            item = first + 4 * i
            target = item + _get(self.buf, "<I", item)
            if fdef.type == "string":
                items.append(_string(self.buf, target))
            else:
                items.append(Table(self.buf, target, self.schema, fdef.type))
        return items

    def vector_bytes(self, name: str) -> memoryview:
        """A ``[ubyte]`` vector as a view of the buffer (never copied)."""
        pos = self._field_pos(self._def(name).slot)
        if not pos:
            return memoryview(b"")
        start = pos + _get(self.buf, "<I", pos)
        length = _get(self.buf, "<I", start)
        if start + 4 + length > len(self.buf):
            raise Damaged(f"{self.type_name}.{name}: {length} bytes run past the end")
        return memoryview(self.buf)[start + 4 : start + 4 + length]

    def enum_name(self, name: str) -> str:
        """An enum field's member name (``INT``), or its number when the schema has none."""
        fdef = self._def(name)
        value = self.get(name)
        return self.schema.enums.get(fdef.type, ("", {}))[1].get(value, str(value))

    def _scalar_format(self, type_name: str) -> str | None:
        if type_name in _SCALARS:
            return _SCALARS[type_name]
        enum = self.schema.enums.get(type_name)
        return _SCALARS.get(enum[0] or "int") if enum else None

    def _default(self, fdef: FieldDef, fmt: str) -> Any:
        text = fdef.default
        if fmt in "fd":
            return float(text or 0)
        if fmt == "?":
            return text == "true"
        if text and not text.lstrip("-").isdigit():  # an enum member by name (``CPU``)
            names = self.schema.enums.get(fdef.type, ("", {}))[1]
            return next((number for number, name in names.items() if name == text), 0)
        return int(text or 0)

    def _struct(self, type_name: str, pos: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, type_text in self.schema.structs[type_name]:
            fmt = self._scalar_format(type_text) or "I"
            size = struct.calcsize(fmt)
            pos += (-pos) % size  # struct fields are aligned to their size
            out[name] = _get(self.buf, "<" + fmt, pos)
            pos += size
        return out


def _get(buf: memoryview | bytes, fmt: str, pos: int) -> Any:
    if pos < 0:
        raise Damaged(f"offset {pos} before the start of the buffer")
    try:
        return struct.unpack_from(fmt, buf, pos)[0]
    except struct.error:
        raise Damaged(f"offset {pos} past the end of the buffer ({len(buf)} bytes)") from None


def _string(buf: memoryview | bytes, pos: int) -> str:
    length = _get(buf, "<I", pos)
    if pos + 4 + length > len(buf):
        raise Damaged(f"string of {length} bytes at {pos} runs past the end")
    return bytes(buf[pos + 4 : pos + 4 + length]).decode("utf-8", errors="replace")
