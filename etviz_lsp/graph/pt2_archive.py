"""Read a ``.pt2`` written by ``torch.export.save`` straight from its zip: no torch, no pickle.

``torch.export.load`` unpickles sample inputs (and any weight saved with pickle), then
rebuilds real weights and an FX graph: about 15 s for a 20k-node program. A graph view
needs none of that. The archive also holds the program as JSON (``models/<name>.json``,
torch's serialization schema, ``torch/_export/serde/schema.py``) and the weights' shapes
and dtypes as JSON (``data/weights/<name>_weights_config.json``). This module reads those
two files into the same :class:`ir.ProgramRecord` that ``fx_reader`` makes from the
loaded program, mirroring what torch's deserializer (``serialize.py``,
``GraphModuleDeserializer``) would build: the same node names, the ``getitem`` nodes it
adds for multi-output ops, the same argument split into positional and keyword, the same
metadata. The equivalence test (``tests/test_pt2_archive.py``) holds both paths to that.

Only JSON is parsed; weight payloads are never opened. An archive this reader does not
know (another archive version or schema major version, an old layout) raises
:class:`UnsupportedArchive`: the caller may then fall back to ``torch.export.load`` if the
user opted in to unpickling for this run.
"""

from __future__ import annotations

import keyword
import mmap
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import msgspec

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import ir, limits, naming, pt2_schema

# What this reader knows (torch 2.13: archive "0", schema 8.x; torch's own loader accepts
# any minor version of its major, and so do we: minor bumps only add optional fields).
ARCHIVE_VERSIONS = frozenset({"0"})
SCHEMA_MAJOR = 8

_MODELS_DIR = "models/"
_WEIGHTS_CONFIG = "data/weights/{}_weights_config.json"
_AOTI_DIR = "data/aotinductor/"

# schema.ScalarType / Layout / MemoryFormat -> how torch prints them, minus "torch.".
DTYPES = {
    1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32",
    8: "float64", 9: "complex32", 10: "complex64", 11: "complex128", 12: "bool",
    13: "bfloat16", 28: "uint16", 29: "float8_e4m3fn", 30: "float8_e5m2",
    31: "float8_e4m3fnuz", 32: "float8_e5m2fnuz", 33: "float8_e8m0fnu", 34: "uint32",
    35: "uint64",
}  # fmt: skip
LAYOUTS = {
    1: "sparse_coo", 2: "sparse_csr", 3: "sparse_csc", 4: "sparse_bsr", 5: "sparse_bsc",
    6: "_mkldnn", 7: "strided",
}  # fmt: skip
MEMORY_FORMATS = {
    1: "contiguous_format", 2: "channels_last", 3: "channels_last_3d", 4: "preserve_format"
}

# Targets torch deserializes as "sym ops": every input positional, named by its output.
_SYM_OPS = frozenset(
    f"_operator.{name}"
    for name in [
        "eq", "ne", "le", "ge", "lt", "gt", "neg", "pos", "mul", "add", "sub", "floordiv",
        "mod", "pow", "truediv", "and_", "or_", "lshift", "rshift",
    ]  # fmt: skip
) | frozenset(
    {"math.trunc", "torch.sym_not", "torch.sym_int", "torch.sym_float", "torch.sym_ite",
     "torch.sym_max", "torch.sym_min", "torch.sym_sqrt", "torch.ops.aten.item.default"}
)  # fmt: skip
_HIGHER_ORDER = "torch.ops.higher_order."
# Argument kinds that never hold a literal (tensors, graphs, objects).
_NOT_LITERAL = frozenset(
    {"as_none", "as_tensor", "as_graph", "as_custom_obj", "as_operator", "as_complex",
     "as_optional_tensor", "as_string_to_argument"}
)  # fmt: skip
# Argument kinds that can refer to graph nodes (see _GraphReader._nodes_in).
_NODE_KINDS = frozenset(
    {"as_tensor", "as_tensors", "as_sym_int", "as_sym_float", "as_sym_bool",
     "as_optional_tensor", "as_sym_ints", "as_sym_floats", "as_sym_bools",
     "as_optional_tensors", "as_nested_tensors", "as_graph", "as_custom_obj",
     "as_string_to_argument"}
)  # fmt: skip
_POSITIONAL, _KEYWORD = 1, 2
# How a node's literal arguments are named: schema names (OpOverloads), Python parameter
# names (symbolic ops: torch stores them), position (higher-order ops: no names stored).
_BY_SCHEMA, _BY_NAME, _BY_POSITION = "schema", "name", "position"


class UnsupportedArchive(EtvizError):
    """An archive this reader does not understand, but ``torch.export.load`` might."""


def read_records(path: Path, bounds: limits.Limits | None = None) -> list[ir.ProgramRecord]:
    """Every program in the ``.pt2`` at ``path`` (``model`` first), named after the file.

    What it may cost is bounded by ``bounds`` (default: ``limits.current()``)."""
    budget = (bounds or limits.current()).budget(str(path))
    with _open_zip(path) as archive:
        root, names = _layout(path, archive, budget)
        records = []
        for model in _model_names(names, root):
            weights_file = root + _WEIGHTS_CONFIG.format(model)
            weights = (
                _read_weights(path, archive, weights_file, budget) if weights_file in names else {}
            )
            name = path.stem if model == "model" else f"{path.stem}.{model}"
            member = f"{root}{_MODELS_DIR}{model}.json"
            records.append(read_member(path, archive, member, name, weights, budget=budget))
        return records


def read_member(
    path: Path,
    archive: zipfile.ZipFile,
    member: str,
    name: str,
    weights: dict[str, pt2_schema.WeightEntry] | None = None,
    schema_major: int = SCHEMA_MAJOR,
    budget: limits.Budget | None = None,
) -> ir.ProgramRecord:
    """One serialized program (``member`` of ``archive``) -> a record named ``name``.

    Also what the ETRecord reader uses: ExecuTorch stores its programs in this JSON too,
    written by its own copy of the serializer (``schema_major`` 5). Its cost is bounded by
    ``budget`` (default: a fresh one of ``limits.current()`` for the file).
    """
    budget = budget or limits.current().budget(str(path))
    program = _read_program(path, archive, member, budget, schema_major)
    try:
        return _ProgramReader(program, weights or {}).read(name)
    except _Unknown as exc:
        raise UnsupportedArchive(str(path), str(exc)) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError,
            RecursionError, msgspec.ValidationError) as exc:
        cause = _first_line(f"{type(exc).__name__}: {exc}")
        raise UnsupportedArchive(str(path), f"unexpected serialized program ({cause})") from None


# ---- the zip ---------------------------------------------------------------------------


# What zipfile raises on damaged bytes besides BadZipFile (found by fuzzing): names that are
# not UTF-8, a corrupt deflate stream, an unknown compression method or encryption flag.
_ZIP_DAMAGE = (EOFError, UnicodeDecodeError, zlib.error, NotImplementedError, RuntimeError,
               ValueError)


def _open_zip(path: Path) -> zipfile.ZipFile:
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


def _layout(path: Path, archive: zipfile.ZipFile, budget: limits.Budget) -> tuple[str, set[str]]:
    """The archive's root folder (``<name>/``) and its entries; checks kind and version."""
    names = set(archive.namelist())
    root = _root(names)
    has_models = any(n.startswith(root + _MODELS_DIR) and n.endswith(".json") for n in names)
    if not has_models:
        if any(n.startswith(root + _AOTI_DIR) or n.endswith(".so") for n in names):
            raise EtvizError(
                str(path),
                "an AOTInductor package (compiled code, no exported graph); "
                "save the program with torch.export.save to view it",
            )
        if root + "version" in names or "version" in names:
            raise UnsupportedArchive(str(path), "an old .pt2 layout (before torch 2.7)")
        raise EtvizError(
            str(path), "a zip file but not a torch.export .pt2 archive (no models/*.json)"
        )
    version_file = root + "archive_version"
    version = (
        bytes(_read_bytes(path, archive, version_file, budget)).decode(errors="replace").strip()
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


def _root(names: set[str]) -> str:
    """torch writes every entry under one folder named after the archive at save time."""
    for name in names:
        if name.endswith("/archive_format") and name.count("/") == 1:
            return name.split("/", 1)[0] + "/"
    first = min(names, default="")
    return first.split("/", 1)[0] + "/" if "/" in first else ""


def _model_names(names: set[str], root: str) -> list[str]:
    prefix = root + _MODELS_DIR
    models = sorted(
        n[len(prefix) : -len(".json")]
        for n in names
        if n.startswith(prefix) and n.endswith(".json") and "/" not in n[len(prefix) :]
    )
    # torch.export.load returns the program saved as "model": show it first.
    return sorted(models, key=lambda m: m != "model")


def _read_bytes(
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
        cause = _first_line(f"{type(exc).__name__}: {exc}")
        raise EtvizError(str(path), f"damaged .pt2 archive: cannot read {name} ({cause})") from exc
    except OSError as exc:
        raise EtvizError(str(path), f"cannot read {name}: {exc}") from exc


def _read_program(
    path: Path,
    archive: zipfile.ZipFile,
    name: str,
    budget: limits.Budget,
    schema_major: int = SCHEMA_MAJOR,
) -> pt2_schema.Program:
    data = _read_bytes(path, archive, name, budget)
    try:
        program = pt2_schema.decode_program(data)
    except msgspec.ValidationError as exc:  # JSON, but not a program as this reader knows it
        _check_schema(path, _version_of(path, name, data), schema_major)  # a newer one: say so
        cause = _first_line(str(exc))
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


def _read_weights(
    path: Path, archive: zipfile.ZipFile, name: str, budget: limits.Budget
) -> dict[str, pt2_schema.WeightEntry]:
    data = _read_bytes(path, archive, name, budget)
    try:
        return pt2_schema.decode_weights(data).config
    except msgspec.ValidationError as exc:
        cause = _first_line(str(exc))
        raise UnsupportedArchive(str(path), f"unexpected weights config {name} ({cause})") from None
    except RecursionError:
        raise _too_deep(path, name) from None
    except msgspec.DecodeError as exc:
        raise EtvizError(str(path), f"damaged .pt2 archive: {name} is not valid JSON") from exc


def _first_line(text: str) -> str:
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


# ---- the program -----------------------------------------------------------------------


class _Unknown(Exception):
    """Something in the serialized program this reader does not know how to show."""


class _ProgramReader:
    def __init__(
        self, program: pt2_schema.Program, weights: dict[str, pt2_schema.WeightEntry]
    ) -> None:
        self.graph = program.graph_module.graph
        self.signature = program.graph_module.signature
        self.weights = weights
        self.input_specs: list[dict[str, Any]] = self.signature.get("input_specs", [])
        self.tensors = _TensorInfos()

    def read(self, name: str) -> ir.ProgramRecord:
        kinds = self._placeholder_kinds()
        record = _GraphReader(self.graph, self.input_specs, kinds, self.tensors).read(name)
        self._mark_mutations(record)
        self._parameters(record)
        return record

    def _placeholder_kinds(self) -> dict[str, tuple[str, str]]:
        """Placeholder name -> (record kind, fully-qualified target), as fx_reader's."""
        kinds: dict[str, tuple[str, str]] = {}
        for spec in self.input_specs:
            ((kind, body),) = spec.items()
            arg_name = _spec_arg_name(kind, body)
            state = _STATE_INPUTS.get(kind)
            if state is None:
                kinds[arg_name] = (ir.USER_INPUT, "")
            else:
                record_kind, target_field = state
                kinds[arg_name] = (record_kind, _text(body[target_field], target_field))
        return kinds

    def _mark_mutations(self, record: ir.ProgramRecord) -> None:
        targets = {"buffer_mutation": "buffer_name", "user_input_mutation": "user_input_name"}
        by_name: dict[str, ir.NodeRecord] = {}  # made at the first mutation: most have none
        for spec in self.signature.get("output_specs", []):
            ((kind, body),) = spec.items()
            if kind not in targets:
                continue
            by_name = by_name or {node.name: node for node in record.nodes}
            node = by_name.get(body["arg"]["name"])
            if node is not None and body.get(targets[kind]):
                node.attrs["mutates"] = _text(body[targets[kind]], targets[kind])

    def _parameters(self, record: ir.ProgramRecord) -> None:
        """Parameter shapes from the weights config (never the weights themselves)."""
        tensor_values = self.graph.tensor_values
        for spec in self.input_specs:
            body = spec.get("parameter")
            if body is None:
                continue
            fqn = body["parameter_name"]
            entry = self.weights.get(fqn)
            meta = entry.tensor_meta if entry else pt2_schema.NULL
            if not self.weights:  # an old archive: the graph's own meta
                meta = tensor_values.get(body["arg"]["name"], pt2_schema.NULL)
            info = self.tensors.info(meta)
            if info is not None:
                record.parameters[fqn] = info


# Serialized input spec kind -> (record kind, the field naming its fully-qualified target).
_STATE_INPUTS = {
    "parameter": (ir.PARAMETER, "parameter_name"),
    "buffer": (ir.BUFFER, "buffer_name"),
    "tensor_constant": (ir.CONSTANT, "tensor_constant_name"),
    "custom_obj": (ir.CONSTANT, "custom_obj_name"),
}


def _spec_arg_name(kind: str, body: dict[str, Any]) -> str:
    """The placeholder an input spec names (as torch's ``deserialize_input_spec``)."""
    if kind == "constant_input":
        return str(body.get("name", ""))
    arg = body.get("arg", {})
    if kind != "user_input":
        return str(arg.get("name", ""))
    ((arg_kind, value),) = arg.items()
    if arg_kind in ("as_tensor", "as_custom_obj"):
        return str(value["name"])
    if arg_kind in ("as_sym_int", "as_sym_float"):
        return str(value.get("as_name", ""))
    return ""


class _GraphReader:
    """One serialized graph (top level or a nested cond/while_loop body) -> a record."""

    def __init__(
        self,
        graph: pt2_schema.Graph,
        input_specs: list[dict[str, Any]],
        kinds: dict[str, tuple[str, str]],
        tensors: _TensorInfos,
    ) -> None:
        self.graph = graph
        self.input_specs = input_specs
        self.kinds = kinds
        self.tensors = tensors
        self.tensor_values = graph.tensor_values
        self.sym_values: dict[str, tuple[str, Any]] = {}
        for values, dtype in (
            (graph.sym_int_values, "SymInt"),
            (graph.sym_float_values, "SymFloat"),
            (graph.sym_bool_values, "SymBool"),
        ):
            for value_name, value in values.items():
                self.sym_values[value_name] = (dtype, value)
        self.names = _Namespace()
        self.known: set[str] = set()  # serialized value names that are graph nodes
        # Graph name -> the get_attr node that loads it for the node being read (FX
        # names that node: ``repeated_subgraph0_1`` for a second call of one graph).
        self.graph_loads: dict[str, str] = {}
        self.scope_cache: dict[str, list[ir.Scope]] = {}

    def read(self, name: str) -> ir.ProgramRecord:
        self.record = ir.ProgramRecord(name=name)
        for index, graph_input in enumerate(self.graph.inputs):
            self._placeholder(index, graph_input)
        for node in self.graph.nodes:
            self._node(pt2_schema.decode_node(node))
        self._output()
        # A damaged file can have a list or a number where an input's name goes.
        if {type(src) for rec in self.record.nodes for src, _ in rec.inputs} - {str}:
            raise _Unknown("an input that is not a node name")
        ir.link_subgraphs(self.record)
        return self.record

    # -- values -------------------------------------------------------------------------

    def _value(self, name: str) -> ir.ValueInfo:
        """What torch's deserializer puts in ``meta["val"]`` for a value name."""
        raw = self.tensor_values.get(name)
        if raw is not None:
            info = self.tensors.info(raw)
            if info is not None:
                return info
        sym = self.sym_values.get(name)
        if sym is not None:
            return _sym_info(*sym)
        if name in self.graph.custom_obj_values:
            return ir.ValueInfo(dtype="CustomObjArgument")
        raise _Unknown(f"no type recorded for value '{name}'")

    # -- nodes --------------------------------------------------------------------------

    def _add(
        self,
        name: str,
        kind: str,
        target: str = "",
        outputs: list[ir.ValueInfo] | None = None,
        meta: pt2_schema.NodeMetadata | None = None,
    ) -> ir.NodeRecord:
        rec = ir.NodeRecord(name=name, kind=kind, target=target, outputs=outputs or [])
        if meta is not None:
            rec.scopes = self._scopes(meta.nn_module_stack)
            rec.stack_trace = meta.stack_trace or None
        self.record.nodes.append(rec)
        self.known.add(name)
        return rec

    def _placeholder(self, index: int, graph_input: dict[str, Any]) -> None:
        ((kind, value),) = graph_input.items()
        if kind in ("as_tensor", "as_custom_obj"):
            name, info = value["name"], self._value(value["name"])
        elif kind == "as_sym_int" and "as_name" in value:
            name, info = value["as_name"], self._value(value["as_name"])
        elif kind in ("as_int", "as_float", "as_bool", "as_none", "as_string"):
            spec_name = ""
            if index < len(self.input_specs):
                ((spec_kind, body),) = self.input_specs[index].items()
                spec_name = _spec_arg_name(spec_kind, body)
            name, info = spec_name or f"arg{index}", _constant_info(kind, value)
        else:
            raise _Unknown(f"graph input of kind '{kind}'")
        self.names.create(name)
        node_kind, fqn = self.kinds.get(name, (ir.USER_INPUT, ""))
        rec = self._add(name, node_kind, outputs=[info])
        if fqn:
            rec.attrs["fqn"] = fqn

    def _node(self, node: pt2_schema.Node) -> None:
        target, is_sym_op, is_hop, has_schema = _target_kind(node.target)
        meta = node.metadata or _NO_METADATA
        ordered = _ordered_inputs(node.inputs, is_sym_op, has_schema)
        if self.graph_loads:
            self.graph_loads = {}
        if not has_schema and not is_sym_op:  # nested graphs (cond, while_loop) become
            # get_attr nodes, placed before the node that runs them, as torch places them
            for item in ordered:
                if "as_graph" in item.arg:
                    self._graph_arg(item.arg["as_graph"], meta)
        name = node.name or self._fallback_name(node, is_sym_op)
        inputs, attrs = self._arguments(ordered, _naming_rule(has_schema, is_sym_op, is_hop))
        rec = ir.NodeRecord(
            name=name,
            kind=ir.OP,
            target=target,
            inputs=inputs,
            outputs=[],
            scopes=self._scopes(meta.nn_module_stack),
            stack_trace=meta.stack_trace or None,
            attrs=attrs,
        )
        if meta.debug_handle is not None:  # as fx_reader records node.meta["debug_handle"]
            rec.attrs["debug_handle"] = meta.debug_handle
        self.names.create(name)
        self.record.nodes.append(rec)
        self.known.add(name)
        if is_sym_op:
            outputs = node.outputs
            rec.name = outputs[0][next(iter(outputs[0]))]["as_name"]
            rec.outputs = [self._value(rec.name)]
            self.known.add(rec.name)
            return
        self._outputs(rec, node, meta, is_hop)

    def _arguments(
        self, ordered: list[pt2_schema.NamedArgument], naming_rule: str | None
    ) -> tuple[list[tuple[str, int]], dict[str, str]]:
        """A node's inputs (producer, output index), and its literal arguments as attrs
        (named as fx_reader names them: schema name, Python parameter name, position)."""
        inputs: list[tuple[str, int]] = []
        attrs: dict[str, str] = {}
        for position, item in enumerate(ordered):
            arg = item.arg
            tensor = arg.get("as_tensor")
            if tensor is not None:  # the common case, kept short
                inputs.append((tensor["name"], 0))
                continue
            ((kind, value),) = arg.items()
            if kind in _NODE_KINDS:
                inputs.extend((src, 0) for src in self._nodes_in(kind, value))
            if naming_rule is not None:
                text = _literal_text(kind, value, self._symbol)
                if text is not None:
                    attrs[_argument_key(item, position, naming_rule)] = text
        return inputs, attrs

    def _symbol(self, name: str) -> str | None:
        """The value of a symbolic node (``s77``), as torch prints the loaded SymInt."""
        sym = self.sym_values.get(name)
        return _sym_info(*sym).value if sym is not None else None

    def _fallback_name(self, node: pt2_schema.Node, is_sym_op: bool) -> str:
        """Archives before node names were stored: torch names a node after its output."""
        outputs = node.outputs
        if outputs:
            ((kind, value),) = outputs[0].items()
            if kind == "as_tensor" and len(outputs) == 1:
                return str(value["name"])
            if is_sym_op and isinstance(value, dict) and "as_name" in value:
                return str(value["as_name"])
        return self.names.peek(_op_base_name(node.target))

    def _outputs(
        self,
        rec: ir.NodeRecord,
        node: pt2_schema.Node,
        meta: pt2_schema.NodeMetadata,
        is_hop: bool,
    ) -> None:
        """Mirror torch's ``deserialize_outputs``: the node's name, value, getitems."""
        outputs = node.outputs
        if not outputs:
            return
        ((kind, value),) = outputs[0].items()
        if (
            len(outputs) == 1
            and is_hop
            and node.is_hop_single_tensor_return is not True
            and kind != "as_none"
        ):
            # A higher-order op returning a one-element tuple: one getitem reads it.
            item = value["name"] if kind == "as_tensor" else value.get("as_name")
            if item is None:
                raise _Unknown(f"output of kind '{kind}' on '{rec.name}'")
            info = self._getitem(rec.name, str(item), 0, meta)
            rec.outputs = [info]
            return
        if len(outputs) == 1 and kind == "as_tensor":
            self._rename(rec, value["name"])
            rec.outputs = [self._value(rec.name)]
            return
        if len(outputs) == 1 and kind in ("as_sym_int", "as_sym_bool", "as_sym_float"):
            self._rename(rec, value["as_name"])
            rec.outputs = [self._value(rec.name)]
            return
        if len(outputs) == 1 and kind == "as_none":
            self._rename(rec, self.names.create(f"{_op_base_name(node.target)}_unused"))
            rec.outputs = [ir.ValueInfo(dtype="None")]
            return
        if len(outputs) == 1:
            if kind != "as_tensors":
                raise _Unknown(f"output of kind '{kind}' on '{rec.name}'")
            items = [{"as_tensor": item} for item in value]
        else:
            items = outputs
        rec.outputs = self._getitems(rec.name, items, meta)

    def _getitems(
        self, parent: str, items: list[dict[str, Any]], meta: pt2_schema.NodeMetadata
    ) -> list[ir.ValueInfo]:
        infos = []
        for index, item in enumerate(items):
            ((kind, value),) = item.items()
            if kind == "as_tensor":
                infos.append(self._getitem(parent, value["name"], index, meta))
            elif kind in ("as_sym_int", "as_sym_float"):
                infos.append(self._getitem(parent, value["as_name"], index, meta))
            elif kind == "as_none":
                name = self.names.create("as_none")
                rec = self._add(name, ir.OP, "operator.getitem", [ir.ValueInfo("None")], meta)
                rec.inputs = [(parent, index)]
                infos.append(ir.ValueInfo(dtype="None"))
            elif kind in ("as_tensors", "as_sym_ints", "as_sym_floats"):
                name = self.names.create("getitem")
                rec = self._add(name, ir.OP, "operator.getitem", None, meta)
                rec.inputs = [(parent, index)]
                nested = [{kind[:-1]: element} for element in value]
                rec.outputs = self._getitems(name, nested, meta)
                infos.append(ir.ValueInfo(dtype="list"))
            else:
                raise _Unknown(f"output of kind '{kind}' on '{parent}'")
        return infos

    def _getitem(
        self, parent: str, name: str, index: int, meta: pt2_schema.NodeMetadata
    ) -> ir.ValueInfo:
        self.names.create(name)
        info = self._value(name)
        rec = self._add(name, ir.OP, "operator.getitem", [info], meta)
        rec.inputs = [(parent, index)]
        return info

    def _rename(self, rec: ir.NodeRecord, name: str) -> None:
        """torch renames a single-output node after its output value."""
        rec.name = name
        self.known.add(name)

    def _output(self) -> None:
        sources = []
        texts: list[str] = []  # every output in order: node names and constants
        for graph_output in self.graph.outputs:
            ((kind, value),) = graph_output.items()
            if kind == "as_tensor":
                sources.append(value["name"])
            elif kind in ("as_sym_int", "as_sym_bool", "as_sym_float") and "as_name" in value:
                sources.append(value["as_name"])
            elif kind in ("as_int", "as_float", "as_bool", "as_none", "as_string"):
                texts.append(_scalar_text(kind, value) or "None")
                continue
            else:
                raise _Unknown(f"graph output of kind '{kind}'")
            texts.append(sources[-1])
        name = self.names.create("output")
        rec = self._add(name, ir.OUTPUT)
        rec.inputs = [(src, 0) for src in sources]
        if len(texts) != len(sources):  # some outputs are constants: show them all
            rec.attrs["values"] = "[" + ", ".join(texts) + "]"

    # -- inputs -------------------------------------------------------------------------

    def _graph_arg(self, value: dict[str, Any], meta: pt2_schema.NodeMetadata) -> None:
        """A get_attr node loading the graph; FX names it (a second load of one shared
        graph is ``<graph>_1``), the graph itself is read once."""
        graph_name = _text(value["name"], "as_graph.name")
        node_name = self.names.create(graph_name)
        self.graph_loads[graph_name] = node_name
        rec = self._add(node_name, ir.GET_ATTR, graph_name, [], meta)
        rec.subgraphs = [graph_name]
        if graph_name not in self.record.subprograms:
            graph = pt2_schema.graph_from_argument(value["graph"])
            sub = _GraphReader(graph, self.input_specs, {}, self.tensors)
            self.record.subprograms[graph_name] = sub.read(f"{self.record.name}/{graph_name}")

    def _nodes_in(self, kind: str, value: Any) -> Iterator[str]:
        """The nodes an argument of kind ``kind`` (one of ``_NODE_KINDS``) refers to."""
        if kind == "as_tensor":
            yield value["name"]
        elif kind in ("as_tensors",):
            for item in value:
                yield item["name"]
        elif kind in ("as_sym_int", "as_sym_float", "as_sym_bool", "as_optional_tensor"):
            yield from _named(value)
        elif kind in ("as_sym_ints", "as_sym_floats", "as_sym_bools", "as_optional_tensors"):
            for item in value:
                yield from _named(item)
        elif kind == "as_nested_tensors":
            for inner in value:
                for item in inner:
                    yield item["name"]
        elif kind == "as_graph":
            yield self.graph_loads.get(value["name"], value["name"])
        elif kind == "as_custom_obj":
            if value["name"] in self.known:
                yield value["name"]
        elif kind == "as_string_to_argument":
            for item in value.values():
                ((item_kind, item_value),) = item.items()
                yield from self._nodes_in(item_kind, item_value)

    def _scopes(self, stack: str | None) -> list[ir.Scope]:
        if not stack:
            return []
        found = self.scope_cache.get(stack)
        if found is None:
            found = module_stack_scopes(stack)
            self.scope_cache[stack] = found
        return found  # shared between nodes: records are read, never changed, past here


_NO_METADATA = pt2_schema.NodeMetadata()  # shared, never changed


def _ordered_inputs(
    inputs: list[pt2_schema.NamedArgument], is_sym_op: bool, has_schema: bool
) -> list[pt2_schema.NamedArgument]:
    """A node's arguments in the order torch passes them: args, then kwargs."""
    if is_sym_op:
        return inputs
    for item in inputs:
        if item.kind != _POSITIONAL:
            break
    else:  # all positional: the common case, in order already
        return inputs
    args: list[pt2_schema.NamedArgument] = []
    kwargs: dict[str, pt2_schema.NamedArgument] = {}
    for item in inputs:
        if has_schema:
            if item.kind == _KEYWORD and not keyword.iskeyword(item.name):
                kwargs[item.name] = item
            else:
                args.append(item)
        elif item.kind == _POSITIONAL or item.name == "":
            args.append(item)
        else:
            kwargs[item.name] = item
    return [*args, *kwargs.values()]


def _argument_key(item: pt2_schema.NamedArgument, position: int, naming_rule: str) -> str:
    """A literal's attr key: its name, or for a higher-order op's positional argument
    its position (``arg 1``), as ``fx_reader`` keys them."""
    if naming_rule != _BY_POSITION:
        return item.name
    positional = item.kind == _POSITIONAL or item.name == ""  # as _ordered_inputs splits
    return f"arg {position}" if positional else item.name


def _naming_rule(has_schema: bool, is_sym_op: bool, is_hop: bool) -> str | None:
    if has_schema:
        return _BY_SCHEMA
    if is_sym_op:
        return _BY_NAME
    return _BY_POSITION if is_hop else None


def _text(value: Any, field: str) -> str:
    """A value the schema says is a string (a damaged file may hold anything there)."""
    if not isinstance(value, str):
        raise _Unknown(f"'{field}' is not text")
    return value


def _named(value: dict[str, Any]) -> Iterator[str]:
    """The node a Sym*Argument / OptionalTensorArgument refers to, if any."""
    if "as_name" in value:
        yield value["as_name"]
    elif "as_tensor" in value:
        yield value["as_tensor"]["name"]


# ---- text ------------------------------------------------------------------------------


def module_stack_scopes(text: str) -> list[ir.Scope]:
    """``key,path,Class;key,path,Class`` -> scopes, as ``naming.scopes_from_stack``.

    A path may hold commas inside brackets (``L['self'].layers[0]``): torch splits at
    top-level commas only, and so do we. Repeated keys keep their first position and the
    last value, as a dict does. torch writes module names as they are, so a name holding
    ``;`` or ``,`` (legal in ``add_module``) cuts an entry in pieces, which
    ``torch.export.load`` then refuses: the pieces are joined back here.
    """
    by_key: dict[str, ir.Scope | None] = {}
    items = text.split(";")
    index = 0
    while index < len(items):
        item = items[index]
        entry = _stack_entry(item)
        while entry is None and index + 1 < len(items):  # a name holding ";"
            index += 1
            item = f"{item};{items[index]}"
            entry = _stack_entry(item)
        if entry is None:
            raise _Unknown(f"nn_module_stack entry {item!r}")
        key, scope = entry
        by_key[key] = scope
        index += 1
    return naming.unique_scopes(by_key.values())


@lru_cache(maxsize=16384)  # stacks differ, their entries repeat (each layer's root, ...)
def _stack_entry(item: str) -> tuple[str, ir.Scope | None] | None:
    """``key,path,Class`` (None when it is not one, e.g. a piece of a longer entry)."""
    parts = _split_top_level(item)
    if len(parts) == 3:
        key, path, cls = parts
        return key, naming.module_scope(path, cls)
    if len(parts) < 3:
        return None
    # A name holding ",": the class (a qualified name, no commas) is last and the key
    # ends with the path (``L__self__a,b`` for ``a,b``).
    rest = parts[:-1]
    for cut in range(1, len(rest)):
        key, path = ",".join(rest[:cut]), ",".join(rest[cut:])
        if key.endswith(path):
            return key, naming.module_scope(path, parts[-1])
    return None


def _split_top_level(text: str) -> list[str]:
    if "[" not in text and "(" not in text:
        return text.split(",")
    out, start, depth = [], 0, 0
    for index, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            out.append(text[start:index])
            start = index + 1
    out.append(text[start:])
    return out


class _TargetKind(NamedTuple):
    name: str  # as fx_reader spells it
    is_sym_op: bool
    is_hop: bool  # a higher-order op (cond, while_loop, ...)
    has_schema: bool  # an OpOverload: its arguments split into positional and keyword


_TARGET_KINDS: dict[str, _TargetKind] = {}
# How ExecuTorch's serializer (an ETRecord's programs) writes an edge dialect op: the
# same operator, and fx_reader spells the live one as the aten op (``aten.relu.default``).
_EDGE_OPS = "executorch.exir.dialects.edge.ops."


def _target_kind(serialized: str) -> _TargetKind:
    """Worked out once per distinct target: a 20k-node program has a few dozen."""
    found = _TARGET_KINDS.get(serialized)
    if found is None and serialized.startswith(_EDGE_OPS):
        found = _target_kind("torch.ops." + serialized[len(_EDGE_OPS) :])
        _TARGET_KINDS[serialized] = found
    if found is None:
        is_sym_op = serialized in _SYM_OPS
        is_hop = serialized.startswith(_HIGHER_ORDER)
        has_schema = not is_sym_op and not is_hop and serialized.startswith("torch.ops.")
        found = _TargetKind(_target_name(serialized), is_sym_op, is_hop, has_schema)
        _TARGET_KINDS[serialized] = found
    return found


def _target_name(serialized: str) -> str:
    """Spell a serialized target as ``fx_reader.target_name`` spells the live one."""
    if serialized.startswith("torch.ops."):
        return serialized[len("torch.ops.") :]
    if serialized.startswith("#"):
        raise _Unknown(f"extension operator '{serialized}'")
    module, _, func = serialized.rpartition(".")
    if not module:
        raise _Unknown(f"unknown operator '{serialized}'")
    return f"{module.lstrip('_')}.{func}"


def _op_base_name(serialized: str) -> str:
    """FX's default node name for a target: ``torch.ops.aten.foo.default`` -> ``foo``."""
    parts = serialized.split(".")
    base = parts[-2] if serialized.startswith("torch.ops.") and len(parts) >= 2 else parts[-1]
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()
    return re.sub(r"[^0-9a-zA-Z_]+", "_", base) or "_unnamed"


class _TensorInfos:
    """Value infos of a program's tensors, by the raw JSON text of their metadata.

    A 20k-node program has 20k tensor values but a few dozen distinct metadata texts
    (dtype, sizes, strides ...): each text is decoded once, and nodes share its info
    (immutable). JSON ``null`` gives None.
    """

    def __init__(self) -> None:
        self._by_text: dict[bytes, ir.ValueInfo] = {}

    def info(self, raw: msgspec.Raw) -> ir.ValueInfo | None:
        text = bytes(raw)
        found = self._by_text.get(text)
        if found is None:
            meta = pt2_schema.decode_tensor_meta(raw)
            if meta is None:
                return None
            found = self._by_text[text] = _tensor_info(meta)
        return found


def _tensor_info(meta: pt2_schema.TensorMeta) -> ir.ValueInfo:
    dtype = DTYPES.get(meta.dtype)
    if dtype is None:
        raise _Unknown(f"tensor dtype code {meta.dtype}")
    return ir.ValueInfo(dtype=dtype, shape=tuple([_size_text(size) for size in meta.sizes]))


def _size_text(size: dict[str, Any]) -> str:
    value = size.get("as_int")
    if value is not None:
        return str(value)
    return _expr_text(size["as_expr"]["expr_str"])


_EXPR_CACHE: dict[str, str] = {}


def _expr_text(srepr: str) -> str:
    text = _EXPR_CACHE.get(srepr)
    if text is None:
        # Imported here: only dynamic shapes have expressions, and its imports
        # (fractions, decimal) cost a static program's start time for nothing.
        from etviz_lsp.graph import sym_expr

        try:
            text = naming.sym_text(sym_expr.to_text(srepr))
        except sym_expr.SymExprError as exc:
            raise _Unknown(str(exc)) from None
        _EXPR_CACHE[srepr] = text
    return text


def _sym_info(dtype: str, value: dict[str, Any]) -> ir.ValueInfo:
    """A SymInt/SymFloat/SymBool value; a constant one is a plain int/float/bool."""
    ((kind, body),) = value.items()
    if kind != "as_expr":
        plain = {"SymInt": "int", "SymFloat": "float", "SymBool": "bool"}[dtype]
        return ir.ValueInfo(dtype=plain, value=str(float(body) if plain == "float" else body))
    text = _expr_text(body["expr_str"])
    if dtype == "SymInt" and text.lstrip("-").isdigit():  # torch turns Integer(n) into n
        return ir.ValueInfo(dtype="int", value=str(int(text)))
    return ir.ValueInfo(dtype=dtype, value=text)


def _constant_info(kind: str, value: Any) -> ir.ValueInfo:
    if kind == "as_none":
        return ir.ValueInfo(dtype="None")
    if kind == "as_string":
        return ir.ValueInfo(dtype="str")
    if kind == "as_float":
        return ir.ValueInfo(dtype="float", value=str(float(value)))
    return ir.ValueInfo(dtype=type(value).__name__, value=str(value))


def format_argument(arg: dict[str, Any]) -> str | None:
    """A serialized Argument as ``fx_reader.format_literal`` shows its loaded value."""
    ((kind, value),) = arg.items()
    return _literal_text(kind, value)


def _literal_text(
    kind: str, value: Any, symbol: Callable[[str], str | None] | None = None
) -> str | None:
    """A literal argument's text; ``symbol`` gives a symbolic node's value (``s77``) so
    a list of sizes shows them (``[0, s77]``)."""
    if kind in _NOT_LITERAL:
        if kind == "as_complex":
            return naming.complex_text(float(value["real"]), float(value["imag"]))
        return None
    if isinstance(value, list):
        if not value:
            return "[]"  # torch loads every empty list as [], tensors lists included
        if kind == "as_optional_tensors":
            return _optional_tensors_text(value)
        element_kind = _ELEMENT_KIND.get(kind)
        if element_kind is None:
            return None
        items = [_item_text(element_kind, item, symbol) for item in value]
        if any(item is None for item in items):
            return None
        return "[" + ", ".join(str(item) for item in items) + "]"
    return _scalar_text(kind, value)


def _item_text(
    kind: str, value: Any, symbol: Callable[[str], str | None] | None
) -> str | None:
    if symbol is not None and isinstance(value, dict) and "as_name" in value:
        return symbol(value["as_name"])
    return _scalar_text(kind, value)


def _optional_tensors_text(items: list[Any]) -> str | None:
    """``[None, i]`` (as fx_reader shows it); None when every item is a tensor (edges)."""
    texts = []
    for item in items:
        ((kind, value),) = item.items()
        if kind == "as_none":
            texts.append("None")
        elif kind == "as_tensor":
            texts.append(_text(value["name"], "as_tensor.name"))
        else:
            return None
    if "None" not in texts:
        return None
    return "[" + ", ".join(texts) + "]"


_ELEMENT_KIND = {
    "as_ints": "as_int", "as_floats": "as_float", "as_bools": "as_bool",
    "as_strings": "as_string", "as_sym_ints": "as_sym_int", "as_sym_floats": "as_sym_float",
    "as_sym_bools": "as_sym_bool", "as_int_lists": "as_ints", "as_float_lists": "as_floats",
}  # fmt: skip


def _scalar_text(kind: str, value: Any) -> str | None:
    if kind == "as_int":
        return str(int(value))
    if kind == "as_float":
        return naming.float_text(float(value))  # also "Infinity"/"NaN", as torch writes them
    if kind == "as_bool":
        return str(bool(value))
    if kind == "as_string":
        return naming.enum_text(str(value))
    if kind in ("as_ints", "as_floats"):
        if not isinstance(value, list):  # a damaged file: would recurse forever
            raise ValueError(f"{kind} holds {type(value).__name__}, not a list")
        return _literal_text(kind, value)
    if kind in ("as_sym_int", "as_sym_float", "as_sym_bool"):
        if "as_name" in value:
            return None  # a symbolic value is a graph node: an edge, not a literal
        ((inner, plain),) = value.items()
        return _scalar_text(inner, plain)
    if kind == "as_scalar_type":
        dtype = DTYPES.get(value)
        if dtype is None:
            raise _Unknown(f"dtype code {value}")
        return dtype
    if kind == "as_memory_format":
        return MEMORY_FORMATS.get(value)
    if kind == "as_layout":
        return LAYOUTS.get(value)
    if kind == "as_device":
        index = value.get("index")
        return f"{value['type']}:{index}" if index is not None else str(value["type"])
    return None


class _Namespace:
    """FX's node-name picker (``torch.fx.graph._Namespace.create_name``), for the names
    torch's deserializer lets FX choose (``getitem``, ``as_none``, ``output``).

    Serialized names are taken as they are; only their numeric suffixes matter (FX
    counts from the last one it saw per base name), so those are parsed lazily, the
    first time FX's choice is needed.
    """

    _NAME = re.compile(r"^([a-zA-Z_][0-9a-zA-Z_]*?)(?:_(\d+))?$")

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.base_count: dict[str, int] = {}
        self.pending: list[str] = []

    def create(self, candidate: str) -> str:
        if candidate not in self.used and candidate.isidentifier():
            self.used.add(candidate)
            if candidate[-1].isdigit():
                self.pending.append(candidate)
            return candidate
        self._settle()
        name, base, num = self._pick(candidate)
        self.used.add(name)
        self.base_count[base] = num
        return name

    def peek(self, candidate: str) -> str:
        self._settle()
        return self._pick(candidate)[0]

    def _settle(self) -> None:
        """Counters of the names taken as they were (FX keeps a name's own suffix)."""
        for name in self.pending:
            match = self._NAME.match(name)
            if match is not None and match.group(2) is not None:
                self.base_count[match.group(1)] = int(match.group(2))
        self.pending.clear()

    def _pick(self, candidate: str) -> tuple[str, str, int]:
        match = self._NAME.match(candidate)
        if match is None:
            candidate = re.sub(r"[^0-9a-zA-Z_]+", "_", candidate) or "_unnamed"
            if candidate[0].isdigit():
                candidate = f"_{candidate}"
            match = self._NAME.match(candidate)
            assert match is not None
        base, digits = match.group(1), match.group(2)
        if digits is None or candidate in self.used:
            num = self.base_count.get(base, 0)
        else:
            num = int(digits)
        while candidate in self.used:
            num += 1
            candidate = f"{base}_{num}"
        return candidate, base, num
