"""An XNNPACK delegate blob (inside a ``.pte``) as a graph of its XNNPACK nodes.

The blob is ExecuTorch's ``XNNHeader`` (``XH00``: where its FlatBuffer and constant data
lie), then an ``XNNGraph`` FlatBuffer (``backends/xnnpack/serialization/schema.fbs``,
shipped in the executorch wheel and read through :mod:`flatbuf`): values (tensors with
an id, dims, a datatype, flags for the graph's external inputs and outputs) and nodes
(a union of ~50 node tables whose ``*_id`` fields name the values they read and write,
``output*_id`` the ones they write). Constant data (weights) is never read.

XNNPACK's profiler logs each kernel it runs (``Convolution (NHWC, QS8) IGEMM #1``) with no
debug handle: :func:`kernel_matches` says which XNN node kinds run as which kernel, for the
latency overlay's in-order alignment of kernel events to XNN nodes.
"""

from __future__ import annotations

import re
import struct

from etviz_lsp.graph.backends import partitioner_reasons, registry
from etviz_lsp.graph.binary import executorch_files, flatbuf
from etviz_lsp.graph.core import ir

MAX_XNN_NODES = 200_000
MAX_XNN_VALUES = 1_000_000
HEADER_MAGIC = b"XH00"
GRAPH_IDENTIFIER = b"XN01"
INVALID_ID = 0xFFFFFFFF  # XNN_INVALID_VALUE_ID: "no bias" and the like
INSERTED_HANDLE = 65535  # the debug handle of nodes XNNPACK's lowering added (transposes)
# XNNDatatype names without ``xnn_datatype_``, spelled as torch spells dtypes where it can.
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "pfp32": "float32 (packed)"}


# XNNPACK's operator names (what its profiler logs, before " (") -> the XNN node kinds of
# the delegate's FlatBuffer that run as that operator.
XNN_KINDS: dict[str, tuple[str, ...]] = {
    "Convolution": ("XNNConv2d", "XNNDepthwiseConv2d"),
    "Deconvolution": ("XNNConvTranspose2d",),
    "Fully Connected": ("XNNFullyConnected",),
    "Convert": ("XNNConvert",),
    "Transpose": ("XNNStaticTranspose",),
    "Add": ("XNNAdd",), "Subtract": ("XNNSubtract",), "Multiply": ("XNNMultiply",),
    "Divide": ("XNNDiv",), "Minimum": ("XNNMinimum",), "Maximum": ("XNNMaximum",),
    "Max Pooling": ("XNNMaxPooling2d",), "Average Pooling": ("XNNAvgPooling2d",),
    "Global Average Pooling": ("XNNGlobalAvgPooling2d",),
    "Clamp": ("XNNClamp",), "Softmax": ("XNNSoftmax",), "Sigmoid": ("XNNSigmoid",),
    "Copy": ("XNNStaticReshape", "XNNCopy"), "Constant Pad": ("XNNStaticConstantPad",),
    "Resize Bilinear": ("XNNStaticResizeBilinear2D",), "Slice": ("XNNStaticSlice",),
    "HardSwish": ("XNNHardswish",), "Leaky ReLU": ("XNNLeakyReLU",), "ELU": ("XNNELU",),
}  # fmt: skip
_KIND = re.compile(r"^(.*?)\s*(?:\(| #\d+$|$)")


def schema() -> flatbuf.Schema:
    return executorch_files.schema("backends/xnnpack/serialization/schema.fbs")


def read_graph(blob: memoryview, name: str) -> ir.ProgramRecord:
    """The blob's XNNPACK graph; raises :class:`flatbuf.Damaged` when it is not one."""
    return _Reader(_root(blob), name).read()


def constants(blob: memoryview) -> tuple[int, int]:
    """Bytes of the delegate's constants (weights): in the blob, and named (kept in the
    program's named data, outside the blob). Raises :class:`flatbuf.Damaged`."""
    graph = _root(blob)
    if graph.vector_len("constant_data") > MAX_XNN_VALUES:
        raise flatbuf.Damaged(f"{graph.vector_len('constant_data'):,} constants")
    inline = named = 0
    for entry in graph.vector("constant_data"):
        if entry.get("named_key"):
            named += entry.get("size")
        else:
            inline += entry.get("size")
    return inline, named


def _root(blob: memoryview) -> flatbuf.Table:
    if bytes(blob[4:8]) == HEADER_MAGIC and len(blob) >= 30:
        offset, size = struct.unpack_from("<II", blob, 10)
        if offset + size > len(blob):
            raise flatbuf.Damaged(f"XNNPACK graph at {offset}+{size} past the blob's end")
        blob = blob[offset : offset + size]
    if bytes(blob[4:8]) != GRAPH_IDENTIFIER:
        raise flatbuf.Damaged("not an XNNPACK graph (no XN01 identifier)")
    return flatbuf.Table.root(blob, schema())


class _Reader:
    def __init__(self, graph: flatbuf.Table, name: str) -> None:
        self.graph = graph
        self.record = ir.ProgramRecord(name=name)
        self.values: dict[int, tuple[ir.ValueInfo, int, bool]] = {}  # id -> info, flags, const
        self.quant: dict[int, str] = {}  # id -> its quantization, as text
        self.written: dict[int, tuple[str, int]] = {}

    def read(self) -> ir.ProgramRecord:
        for count, field in ((MAX_XNN_VALUES, "xvalues"), (MAX_XNN_NODES, "xnodes")):
            if self.graph.vector_len(field) > count:
                raise flatbuf.Damaged(f"{self.graph.vector_len(field):,} {field}, over {count:,}")
        for value in self.graph.vector("xvalues"):
            self._value(value)
        for value_id in self.graph.vector("input_ids"):
            self._input(value_id)
        for index, node in enumerate(self.graph.vector("xnodes")):
            self._node(index, node)
        out = ir.NodeRecord("output", ir.OUTPUT)
        out.inputs = [self._source(value_id) for value_id in self.graph.vector("output_ids")]
        self.record.nodes.append(out)
        return self.record

    def _value(self, value: flatbuf.Table) -> None:
        kind, table = value.union("xvalue_union")
        if table is None:
            return
        quant = ""
        if kind == "XNNQuantizedTensorValue":
            quant_kind, params = table.union("quant_params")
            quant = _quant_text(quant_kind, params)
            table = table.get("tensor_value")
            if table is None:
                return
        dtype = table.enum_name("datatype").removeprefix("xnn_datatype_")
        dtype = DTYPES.get(dtype, dtype)
        info = ir.ValueInfo(dtype, tuple(str(d) for d in table.vector("dims")))
        constant = table.get("constant_buffer_idx") != 0
        self.values[table.get("id_out")] = (info, table.get("flags"), constant)
        if quant:
            self.quant[table.get("id_out")] = quant

    def _input(self, value_id: int) -> None:
        name = f"input_{value_id}"
        info = self.values.get(value_id, (ir.ValueInfo("?"), 0, False))[0]
        attrs = {"value id": str(value_id)}
        rec = ir.NodeRecord(name, ir.USER_INPUT, outputs=[info], attrs=attrs)
        self.record.nodes.append(rec)
        self.written[value_id] = (name, 0)

    def _source(self, value_id: int) -> tuple[str, int]:
        if value_id not in self.written:  # a weight or other constant: a node of its own
            info, _, constant = self.values.get(value_id, (ir.ValueInfo("?"), 0, False))
            name = f"value_{value_id}"
            attrs = {"fqn": f"{'constant' if constant else 'value'} {value_id}"}
            if value_id in self.quant:
                attrs["quantization"] = self.quant[value_id]
            rec = ir.NodeRecord(name, ir.CONSTANT, outputs=[info], attrs=attrs)
            self.record.nodes.append(rec)
            self.written[value_id] = (name, 0)
        return self.written[value_id]

    def _node(self, index: int, node: flatbuf.Table) -> None:
        kind, table = node.union("xnode_union")
        rec = ir.NodeRecord(f"xnode_{index}", ir.OP, target=kind)
        handle = node.get("debug_handle")
        rec.attrs["debug_handle"] = (
            f"{handle} (inserted by the lowering)" if handle == INSERTED_HANDLE else str(handle)
        )
        if table is None:
            self.record.nodes.append(rec)
            return
        outputs: list[int] = []
        for field, fdef in schema().tables[table.type_name].items():
            if fdef.vector:
                if fdef.type not in schema().tables and table.vector_len(field) <= 16:
                    rec.attrs[field] = str(table.vector(field))
                continue
            value = table.get(field)
            if not field.endswith("_id") or not isinstance(value, int):
                if isinstance(value, int | float) and field != "flags":
                    rec.attrs[field] = str(value)
                continue
            if value == INVALID_ID:
                continue
            if field.startswith("output"):
                outputs.append(value)
            else:
                rec.inputs.append(self._source(value))
        for out_index, value_id in enumerate(outputs):
            rec.outputs.append(self.values.get(value_id, (ir.ValueInfo("?"), 0, False))[0])
            self.written[value_id] = (rec.name, out_index)
            if value_id in self.quant:
                rec.attrs[f"out {out_index} quantization"] = self.quant[value_id]
        self.record.nodes.append(rec)


def _quant_text(kind: str, params: flatbuf.Table | None) -> str:
    if params is None:
        return ""
    if kind == "PerTensorQuant":
        scale, zero_point = params.get("scale"), params.get("zero_point")
        return f"per tensor: scale {scale:.6g}, zero point {zero_point}"
    if kind == "PerChannelQuant":
        return f"per channel (dim {params.get('channel_dim')})"
    return kind


def read_payload(blob: memoryview, name: str) -> registry.Payload:
    """The registry's reader: the XNN graph, its constants' bytes and what it runs."""
    graph = read_graph(blob, name)
    inline, named = constants(blob)
    return registry.Payload(graph, {
        "constants": registry.constants_fact(inline, named),
        "xnnpack nodes": registry.op_summary(graph),
    })  # fmt: skip


def event_kind(name: str) -> str:
    """``Convolution (NHWC, QS8) IGEMM #1`` -> ``Convolution``."""
    match = _KIND.match(name)
    return (match.group(1) if match else name).strip()


def kernel_matches(event: str, node_target: str) -> bool:
    """Whether XNNPACK's kernel ``event`` runs the XNN node kind ``node_target``."""
    kind = event_kind(event)
    if kind in XNN_KINDS:
        return node_target in XNN_KINDS[kind]
    # An operator this table does not know: the same letters (``Tanh`` / ``XNNTanh``).
    plain = re.sub(r"[^a-z0-9]", "", kind.lower())
    return bool(plain) and node_target.lower().removeprefix("xnn").startswith(plain)


# ---- why not delegated (issue 26): how XnnpackPartitioner's reasons are collected ----------
#
# Its partitioner configs (``backends/xnnpack/partition/config/``) reject a node through a
# module-level ``WhyNoPartition`` (listened to for every partitioner: ``partitioner_reasons``).
# An op with no config at all (``cumsum``) is never looked at by one and gets no word: its
# own answer then is that its configs, keyed by target name, hold none for that op.

CONFIG_PARTITIONER = "executorch.exir.backend.canonical_partitioners.config_partitioner"


def no_config(partitioner: object, node: object) -> str | None:
    """``no partitioner config for cumsum.default`` when the partitioner's configs have
    none for the node's target (as its ``ConfigerationBasedPartitioner`` looks them up)."""
    import importlib

    configs = getattr(partitioner, "target_partitioner_configs", None)
    target = getattr(getattr(node, "target", None), "__name__", None)
    if not isinstance(configs, dict) or not isinstance(target, str):
        return None
    name = importlib.import_module(CONFIG_PARTITIONER).format_target_name(target)
    return None if name in configs else f"no partitioner config for {name}"


NOT_DELEGATED = partitioner_reasons.ReasonSource("XnnpackPartitioner", ask=no_config)


# Registered last, with how its partitioner's reasons are heard (above).
BACKEND = registry.register(registry.Backend(
    "XnnpackBackend", "XNNPACK", hue=212, read=read_payload, kernel_match=kernel_matches,
    reasons=NOT_DELEGATED,
))  # fmt: skip
