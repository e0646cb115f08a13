"""A Core ML delegate's payload (inside a ``.pte``) as a graph of its ML program's operations.

The payload is a folder flattened into bytes by ExecuTorch's Core ML backend: the files'
bytes one after the other, then a JSON index of them written backwards at the very end
(``{"nodes": [...]}``: per node a ``name``, ``kind`` 0 for a file with its ``dataRegion``
``offset`` and ``size``, 1 for a folder with its ``children`` by name -> node number; the
last node is the top folder). Inside: ``metadata.json`` (input and output names) and an
``.mlpackage`` whose ``Manifest.json`` names the Core ML model, a protobuf (``Model``) whose
``mlProgram`` holds functions of MIL operations: ``const`` ops (weights: small values shown
on the ops that read them, tensors as constant nodes; bytes in ``weights/weight.bin`` are
referenced, never read), and the compute ops, each reading named values and writing named
outputs. ``<first output>:<op type>`` is an op's key in the ETRecord's delegate map.

The protobuf is read with coremltools' generated modules (Core ML lowering needs
coremltools anyway), loaded from its folder without importing coremltools itself (which
imports torch); without coremltools the node lists the package's files and says how to
get it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from etviz_lsp.graph.backends import partitioner_reasons, registry
from etviz_lsp.graph.core import ir

MAX_INDEX_BYTES = 1 << 20  # the file index at the payload's end
MAX_FILES = 10_000
MAX_LISTED = 24  # files named on the node
MAX_JSON_BYTES = 1 << 20  # metadata.json, Manifest.json
MAX_MODEL_BYTES = 256 * 1024 * 1024  # the model protobuf (weights are in weight.bin)
MAX_MIL_OPS = 200_000
MAX_LITERAL_ITEMS = 16  # a const of at most this many non-float values is shown on its op
MISSING = "Core ML program not read: coremltools is not installed (pip install coremltools)"
_PROTO_PACKAGE = "_etviz_coremltools_proto"  # coremltools' proto folder under a name of ours
_FILE, _FOLDER = 0, 1
_FIRST = {"x": 0, "weight": 1, "bias": 2}  # edges in the order people read an op's inputs


def read_payload(blob: memoryview, name: str) -> registry.Payload:
    """The registry's reader: the ML program's operations, or the package's files."""
    files = package_files(blob)
    listed = [f"{path} ({len(data):,} bytes)" for path, data in list(files.items())[:MAX_LISTED]]
    more = f", ... {len(files) - MAX_LISTED:,} more" if len(files) > MAX_LISTED else ""
    facts = {"files": ", ".join(listed) + more}
    facts.update(_metadata(files))
    model = _model_file(files)
    if model is None:
        compiled = any(".mlmodelc/" in path for path in files)
        facts[registry.PAYLOAD] = (
            "a compiled Core ML model (.mlmodelc): its program is not read" if compiled
            else "no Core ML model (model.mlmodel) in the package"
        )  # fmt: skip
        return registry.Payload(facts=facts)
    proto = proto_modules()
    if proto is None:
        return registry.Payload(facts={**facts, registry.PAYLOAD: MISSING})
    spec = _parse(proto, files[model])
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        facts[registry.PAYLOAD] = f"a Core ML {kind} model (spec {spec.specificationVersion}): " \
            "only ML programs open"
        return registry.Payload(facts=facts)
    record = _Program(spec.mlProgram, name).read()
    weights = [f"{p.rsplit('/', 1)[-1]} {len(d):,} bytes" for p, d in files.items()
               if "/weights/" in p]  # fmt: skip
    facts.update({
        "model": f"ML program (Core ML spec {spec.specificationVersion}), functions "
                 + ", ".join(spec.mlProgram.functions),
        "core ml ops": registry.op_summary(record),
        "weights": f"{', '.join(weights)} (not loaded)" if weights else "(none)",
    })  # fmt: skip
    return registry.Payload(record, facts)


def package_files(blob: memoryview) -> dict[str, memoryview]:
    """Every file of the flattened folder: its path under the top folder -> its bytes."""
    tail = bytes(blob[-MAX_INDEX_BYTES:])[::-1].decode("latin-1")
    if not tail.startswith("{"):
        raise registry.Unreadable("not a Core ML package (no file index at its end)")
    try:
        index, length = json.JSONDecoder().raw_decode(tail)
    except ValueError:
        raise registry.Unreadable("not a Core ML package (its file index is not JSON)") from None
    nodes = index.get("nodes") if isinstance(index, dict) else None
    if not isinstance(nodes, list) or not 0 < len(nodes) <= MAX_FILES:
        raise registry.Unreadable("a Core ML package index without its nodes")
    data_end = len(blob) - length
    files: dict[str, memoryview] = {}
    for path, node in _walk(nodes):
        region = node.get("dataRegion")
        offset, size = (region.get("offset"), region.get("size")) if isinstance(region, dict) \
            else (None, None)
        if not (isinstance(offset, int) and isinstance(size, int)
                and 0 <= offset <= offset + size <= data_end):  # fmt: skip
            raise registry.Unreadable(f"Core ML package file {path} lies outside the payload")
        files[path] = blob[offset : offset + size]
    return files


def _walk(nodes: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The files under the top folder (the last node), each once, with their paths."""
    pending: list[tuple[int, str]] = [(len(nodes) - 1, "")]
    seen: set[int] = set()
    while pending:
        number, path = pending.pop()
        if not isinstance(number, int) or not 0 <= number < len(nodes) or number in seen:
            raise registry.Unreadable(f"Core ML package index: node {number} is not a node")
        seen.add(number)
        node = nodes[number]
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            raise registry.Unreadable(f"Core ML package index: node {number} has no name")
        name = node["name"].encode("latin-1").decode("utf-8", "replace")
        here = f"{path}/{name}" if number != len(nodes) - 1 else ""
        if node.get("kind") == _FILE:
            yield here.lstrip("/"), node
            continue
        children = node.get("children")
        if node.get("kind") != _FOLDER or not isinstance(children, dict):
            raise registry.Unreadable(f"Core ML package index: {name} is neither file nor folder")
        pending.extend((child, here) for child in sorted(children.values(), key=str, reverse=True))


def _json(files: dict[str, memoryview], path: str) -> dict[str, Any]:
    data = files.get(path)
    if data is None or len(data) > MAX_JSON_BYTES:
        return {}
    try:
        value = json.loads(bytes(data))
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _metadata(files: dict[str, memoryview]) -> dict[str, str]:
    meta = _json(files, "metadata.json")
    facts = {}
    for key, fact in (("inputNames", "inputs"), ("outputNames", "outputs")):
        if isinstance(meta.get(key), list):
            facts[fact] = ", ".join(map(str, meta[key][:64]))
    return facts


def _model_file(files: dict[str, memoryview]) -> str | None:
    """The model protobuf the package's manifest names (else any ``model.mlmodel``)."""
    for manifest in (p for p in files if p.endswith(".mlpackage/Manifest.json")):
        found = _json(files, manifest)
        entry = found.get("itemInfoEntries", {}).get(found.get("rootModelIdentifier"))
        path = entry.get("path") if isinstance(entry, dict) else None
        candidate = f"{manifest.removesuffix('Manifest.json')}Data/{path}"
        if isinstance(path, str) and candidate in files:
            return candidate
    return next((p for p in files if p.endswith("/model.mlmodel") or p == "model.mlmodel"), None)


@cache
def proto_modules() -> ModuleType | None:
    """coremltools' generated ``Model_pb2`` (its ``MIL_pb2`` beside it), or None when
    coremltools is not installed. Loaded from coremltools' folder under a package name of
    ours: importing ``coremltools.proto`` would run ``coremltools/__init__`` (torch)."""
    if "coremltools.proto.Model_pb2" in sys.modules:  # the user's process has it already
        return sys.modules["coremltools.proto.Model_pb2"]
    try:
        spec = importlib.util.find_spec("coremltools")
    except (ImportError, ValueError):  # ValueError: a None entry in sys.modules
        return None
    folders = list(spec.submodule_search_locations or []) if spec else []
    proto = next((Path(f) / "proto" for f in folders if (Path(f) / "proto").is_dir()), None)
    if proto is None:
        return None
    try:
        package = importlib.util.spec_from_file_location(
            _PROTO_PACKAGE, proto / "__init__.py", submodule_search_locations=[str(proto)]
        )
        if package is None or package.loader is None:
            return None
        module = importlib.util.module_from_spec(package)
        sys.modules[_PROTO_PACKAGE] = module
        package.loader.exec_module(module)
        return importlib.import_module(f"{_PROTO_PACKAGE}.Model_pb2")
    except (ImportError, TypeError, AttributeError):  # protobuf missing or too old for them
        sys.modules.pop(_PROTO_PACKAGE, None)
        return None


def _parse(proto: ModuleType, data: memoryview) -> Any:
    if len(data) > MAX_MODEL_BYTES:
        raise registry.Unreadable(
            f"a Core ML model of {len(data):,} bytes, over {MAX_MODEL_BYTES:,}"
        )
    from google.protobuf.message import DecodeError

    try:
        return proto.Model.FromString(bytes(data))
    except DecodeError as exc:
        raise registry.Unreadable(f"damaged Core ML model ({exc})") from None


class _Program:
    """An ``mlProgram``'s functions -> one record: inputs, ops, constants, outputs."""

    def __init__(self, program: Any, name: str) -> None:
        self.program = program
        self.record = ir.ProgramRecord(name=name)
        self.written: dict[str, tuple[str, int]] = {}  # value name -> (node, output index)
        self.consts: dict[str, tuple[ir.ValueInfo, Any]] = {}  # name -> info, its Value
        self.ops = 0

    def read(self) -> ir.ProgramRecord:
        several = len(self.program.functions) > 1
        for fname, function in self.program.functions.items():
            scopes = [ir.Scope(fname, "function")] if several else []
            self.written, self.consts = {}, {}
            for value in function.inputs:
                rec = ir.NodeRecord(value.name, ir.USER_INPUT, outputs=[self._info(value.type)],
                                    scopes=scopes)
                self.record.nodes.append(rec)
                self.written[value.name] = (rec.name, 0)
            blocks = function.block_specializations  # by opset: the function's own first
            block = blocks.get(function.opset) or next(iter(blocks.values()), None)
            if block is None:
                continue
            for op in block.operations:
                self._op(op, scopes)
            out = ir.NodeRecord("output", ir.OUTPUT, scopes=scopes)
            out.inputs = [self._source(name, scopes) for name in block.outputs]
            self.record.nodes.append(out)
        return self.record

    def _info(self, value_type: Any) -> ir.ValueInfo:
        kind = value_type.WhichOneof("type")
        if kind != "tensorType":
            return ir.ValueInfo(kind or "?")
        tensor = value_type.tensorType
        dtype = tensor.DESCRIPTOR.fields_by_name["dataType"].enum_type.values_by_number.get(
            tensor.dataType
        )
        dims = tuple(
            str(d.constant.size) if d.WhichOneof("dimension") == "constant" else "?"
            for d in tensor.dimensions
        )
        return ir.ValueInfo(dtype.name.lower() if dtype else str(tensor.dataType), dims)

    def _op(self, op: Any, scopes: list[ir.Scope]) -> None:
        self.ops += 1
        if self.ops > MAX_MIL_OPS:
            raise registry.Unreadable(f"over {MAX_MIL_OPS:,} operations in a Core ML program")
        outputs = [(o.name, self._info(o.type)) for o in op.outputs]
        if op.type == "const" and len(outputs) == 1 and "val" in op.attributes:
            self.consts[outputs[0][0]] = (outputs[0][1], op.attributes["val"])
            return
        name = outputs[0][0] if outputs else f"{op.type}_{self.ops}"
        rec = ir.NodeRecord(name, ir.OP, target=op.type, scopes=scopes)
        rec.attrs[registry.DELEGATE_DEBUG_ID] = f"{name}:{op.type}"
        for param in sorted(op.inputs, key=lambda p: (_FIRST.get(p, len(_FIRST)), p)):
            for number, binding in enumerate(op.inputs[param].arguments):
                key = param if len(op.inputs[param].arguments) == 1 else f"{param}[{number}]"
                self._argument(rec, key, binding, scopes)
        if len(op.blocks):
            rec.attrs["blocks"] = f"{len(op.blocks)} (their operations are not shown)"
        for index, (value_name, info) in enumerate(outputs):
            rec.outputs.append(info)
            self.written[value_name] = (rec.name, index)
        self.record.nodes.append(rec)

    def _argument(self, rec: ir.NodeRecord, key: str, binding: Any, scopes: list[ir.Scope]) -> None:
        if binding.WhichOneof("binding") == "value":
            rec.attrs[key] = _value_text(binding.value)
            return
        const = self.consts.get(binding.name)
        if const is not None and _is_literal(const):
            rec.attrs[key] = _value_text(const[1])
        else:
            rec.inputs.append(self._source(binding.name, scopes))

    def _source(self, name: str, scopes: list[ir.Scope]) -> tuple[str, int]:
        """Who wrote value ``name``; a weight (or a name nothing wrote) becomes its node."""
        if name not in self.written:
            info, value = self.consts.get(name, (ir.ValueInfo("?"), None))
            where = _weight_text(value) if value is not None else "not written by any operation"
            rec = ir.NodeRecord(name, ir.CONSTANT, outputs=[info], scopes=scopes,
                                attrs={"fqn": name, "value": where})
            self.record.nodes.append(rec)
            self.written[name] = (rec.name, 0)
        return self.written[name]


def _is_literal(const: tuple[ir.ValueInfo, Any]) -> bool:
    """Small non-weight values (strides, pads, axes, dtype names) read best on the op."""
    info, value = const
    if value.WhichOneof("value") != "immediateValue":
        return False
    floating = info.dtype.startswith(("float", "bfloat"))
    return (info.shape == () or not floating) and 0 <= info.numel() <= MAX_LITERAL_ITEMS


def _value_text(value: Any) -> str:
    if value.WhichOneof("value") != "immediateValue":
        return _weight_text(value)
    immediate = value.immediateValue
    if immediate.WhichOneof("value") != "tensor":
        return f"<{immediate.WhichOneof('value')}>"
    tensor = immediate.tensor
    kind = tensor.WhichOneof("value")
    if kind is None:
        return "[]"
    items = getattr(tensor, kind).values
    if kind == "bytes":
        return f"<{len(items):,} bytes>"
    shown = [repr(v) if isinstance(v, str) else str(v) for v in list(items[:MAX_LITERAL_ITEMS])]
    if len(items) == 1 and not value.type.tensorType.rank:
        return shown[0]
    more = f", ... {len(items):,} values" if len(items) > MAX_LITERAL_ITEMS else ""
    return f"[{', '.join(shown)}{more}]"


def _weight_text(value: Any) -> str:
    """Where a weight's bytes are: in the weights file (never read), or in the model."""
    if value.WhichOneof("value") == "blobFileValue":
        blob = value.blobFileValue
        return f"{blob.fileName.removeprefix('@model_path/')} @ {blob.offset:,} (not loaded)"
    immediate = value.immediateValue if value.WhichOneof("value") == "immediateValue" else None
    if immediate is not None and immediate.WhichOneof("value") == "tensor":
        kind = immediate.tensor.WhichOneof("value")
        count = len(getattr(immediate.tensor, kind).values) if kind else 0
        return f"in the model ({count:,} {'bytes' if kind == 'bytes' else 'values'}, not shown)"
    return "?"


# ---- why not delegated (issue 26): how CoreMLPartitioner's reasons are collected -----------
#
# Its operator support (``_OperatorsSupportedForCoreMLBackend`` in
# ``backends/apple/coreml/partition/coreml_partitioner.py``) asks coremltools about each node
# and says why it skips one through ``log_once(message)`` ("Skipping op for CoreML delegation
# because it is not supported by CoreML: cumsum"), with no node: the node is the one its
# ``is_node_supported`` is looking at. It logs a message once per partition call; every
# call of ``log_once`` is heard, so each node gets its words.

COREML_PARTITIONER = "executorch.backends.apple.coreml.partition.coreml_partitioner"
SUPPORT = "_OperatorsSupportedForCoreMLBackend"

NOT_DELEGATED = partitioner_reasons.ReasonSource(
    "CoreMLPartitioner",
    said=(
        partitioner_reasons.Said(COREML_PARTITIONER, SUPPORT, "log_once", node=None, reason="msg"),
    ),
    check=partitioner_reasons.Check(COREML_PARTITIONER, SUPPORT),
)


# Registered last, with how its partitioner's reasons are heard (above).
BACKEND = registry.register(registry.Backend(
    "CoreMLBackend", "Core ML", hue=178, read=read_payload, reasons=NOT_DELEGATED,
))  # fmt: skip
