"""A Vulkan delegate's payload (inside a ``.pte``) as a graph of its operator calls.

The payload is ExecuTorch's ``VulkanDelegateHeader`` (``VH00``: where its FlatBuffer and
its constant bytes lie), then a ``VkGraph`` FlatBuffer (``backends/vulkan/serialization/
schema.fbs``, shipped in the executorch wheel and read through :mod:`flatbuf`): a table
of values (tensors with dtype, dims, GPU storage and memory layout, a constant index or a
shared memory object; ints, doubles, lists), the graph's inputs and outputs as value ids,
and a chain of ``OperatorCall``s (an operator name and the value ids of its arguments,
inputs first and the output last, as ExecuTorch's Vulkan graph builder writes them). A
call's ``node_id`` is its key in the ETRecord's delegate map. Constant bytes (weights)
are counted, never read.
"""

from __future__ import annotations

import struct

from etviz_lsp.graph.backends import partitioner_reasons, registry
from etviz_lsp.graph.binary import executorch_files, flatbuf
from etviz_lsp.graph.core import ir

MAX_VK_OPS = 200_000
MAX_VK_VALUES = 1_000_000
MAX_LITERAL_ITEMS = 16  # a longer list is shown by its length
HEADER_MAGIC = b"VH00"
HEADER_LENGTH = 30
GRAPH_IDENTIFIER = b"VK00"
NAMED_DATA = 0xFFFFFFFFFFFFFFFF  # a constant's offset when its bytes are in the named data
# VkDataType names, spelled as torch spells dtypes.
DTYPES = {
    "BOOL": "bool", "UINT8": "uint8", "INT8": "int8", "INT32": "int32", "INT64": "int64",
    "FLOAT16": "float16", "FLOAT32": "float32", "FLOAT64": "float64",
}  # fmt: skip
_LITERALS = {"Int": "int_val", "Double": "double_val", "Bool": "bool_val", "String": "string_val"}
_LISTS = ("IntList", "DoubleList", "BoolList")
_DEFAULTS = ("DEFAULT_STORAGE", "DEFAULT_LAYOUT")


def schema() -> flatbuf.Schema:
    return executorch_files.schema("backends/vulkan/serialization/schema.fbs")


def _root(blob: memoryview) -> tuple[flatbuf.Table, int]:
    """The ``VkGraph`` table and how many constant bytes the payload holds after it."""
    inline = 0
    if bytes(blob[4:8]) == HEADER_MAGIC:
        if len(blob) < HEADER_LENGTH:
            raise registry.Unreadable(f"a Vulkan header cut at {len(blob)} bytes")
        offset, size, bytes_offset, inline = struct.unpack_from("<IIIQ", blob, 10)
        if offset + size > len(blob) or bytes_offset + inline > len(blob):
            raise registry.Unreadable(f"Vulkan graph or constants past the payload's end "
                                      f"({len(blob):,} bytes)")
        blob = blob[offset : offset + size]
    if bytes(blob[4:8]) != GRAPH_IDENTIFIER:
        raise registry.Unreadable("not a Vulkan graph (no VH00 header, no VK00 identifier)")
    return flatbuf.Table.root(blob, schema()), inline


def read_payload(blob: memoryview, name: str) -> registry.Payload:
    """The registry's reader: the Vulkan graph, its constants' bytes, what it runs."""
    graph, inline = _root(blob)
    reader = _Reader(graph, name)
    record = reader.read()
    facts = {
        "constants": registry.constants_fact(inline, reader.named_bytes),
        "vulkan ops": registry.op_summary(record),
    }
    overrides = [graph.enum_name(f) for f in ("storage_type_override", "memory_layout_override")]
    if any(o not in _DEFAULTS for o in overrides):
        facts["storage override"] = ", ".join(overrides)
    if graph.vector_len("shaders"):
        facts["custom shaders"] = f"{graph.vector_len('shaders')} (not read)"
    return registry.Payload(record, facts)


class _Reader:
    def __init__(self, graph: flatbuf.Table, name: str) -> None:
        self.graph = graph
        self.record = ir.ProgramRecord(name=name)
        self.values: list[tuple[str, flatbuf.Table | None]] = []
        self.written: dict[int, tuple[str, int]] = {}  # value id -> (node, output index)
        self.constants: list[flatbuf.Table] = []
        self.named_bytes = 0

    def read(self) -> ir.ProgramRecord:
        for count, vector in ((MAX_VK_VALUES, "values"), (MAX_VK_OPS, "chain"),
                              (MAX_VK_VALUES, "constants")):
            if self.graph.vector_len(vector) > count:
                raise registry.Unreadable(
                    f"{self.graph.vector_len(vector):,} {vector} in a Vulkan graph, over {count:,}"
                )
        self.values = [value.union("value") for value in self.graph.vector("values")]
        self.constants = self.graph.vector("constants")
        self.named_bytes = sum(c.get("length") for c in self.constants if c.get("named_key"))
        for value_id in self.graph.vector("input_ids"):
            self._input(value_id)
        for index, call in enumerate(self.graph.vector("chain")):
            self._call(index, call)
        out = ir.NodeRecord("output", ir.OUTPUT)
        for value_id in self.graph.vector("output_ids"):
            out.inputs.extend(self._sources(value_id))
        self.record.nodes.append(out)
        return self.record

    def _value(self, value_id: int) -> tuple[str, flatbuf.Table | None]:
        if not 0 <= value_id < len(self.values):
            raise registry.Unreadable(f"value id {value_id} of {len(self.values)}")
        return self.values[value_id]

    def _info(self, value_id: int) -> ir.ValueInfo:
        kind, table = self._value(value_id)
        if kind == "VkTensor" and table is not None:
            dtype = table.enum_name("datatype")
            dims = tuple(map(str, table.vector("dims")))
            return ir.ValueInfo(DTYPES.get(dtype, dtype.lower()), dims)
        if kind == "SymInt" and table is not None:
            return ir.ValueInfo("SymInt", value=str(table.get("value")))
        return ir.ValueInfo(kind.lower(), value=self._literal(value_id))

    def _storage(self, value_id: int) -> str:
        """Where the GPU keeps a tensor: storage, layout, shared memory object."""
        kind, table = self._value(value_id)
        if kind != "VkTensor" or table is None:
            return ""
        parts = [table.enum_name("storage_type"), table.enum_name("memory_layout")]
        text = ", ".join(p for p in parts if p not in _DEFAULTS)
        if table.get("mem_obj_id") >= 0:
            text += f"{', ' if text else ''}memory object {table.get('mem_obj_id')}"
        return text

    def _literal(self, value_id: int) -> str:
        kind, table = self._value(value_id)
        if table is None or kind == "Null":
            return "None"
        if kind in _LITERALS:
            literal = table.get(_LITERALS[kind])
            return repr(literal) if kind == "String" else str(literal)
        if kind in _LISTS or kind == "ValueList":
            count = table.vector_len("items")
            if count > MAX_LITERAL_ITEMS:
                return f"<{count} items>"
            items = table.vector("items")
            if kind == "ValueList":  # value ids: their literals, one level deep
                return "[" + ", ".join(self._item_literal(i) for i in items) + "]"
            return str(items)
        return f"<{kind}>"

    def _item_literal(self, value_id: int) -> str:
        kind = self._value(value_id)[0]
        return f"<{kind}>" if kind in ("ValueList", "VkTensor") else self._literal(value_id)

    def _items(self, value_id: int) -> list[int]:
        """A value's wireable parts: itself (a tensor, a SymInt) or a ValueList's items."""
        kind, table = self._value(value_id)
        if kind == "ValueList" and table is not None:
            if table.vector_len("items") > MAX_VK_VALUES:
                raise registry.Unreadable("a Vulkan value list longer than the graph")
            return [i for i in table.vector("items") if self._value(i)[0] in ("VkTensor", "SymInt")]
        return [value_id] if kind in ("VkTensor", "SymInt") else []

    def _input(self, value_id: int) -> None:
        name = f"input_{value_id}"
        attrs = {"value id": str(value_id)}
        if self._storage(value_id):
            attrs["storage"] = self._storage(value_id)
        rec = ir.NodeRecord(name, ir.USER_INPUT, outputs=[self._info(value_id)], attrs=attrs)
        self.record.nodes.append(rec)
        self.written[value_id] = (name, 0)

    def _sources(self, value_id: int) -> list[tuple[str, int]]:
        """The producers of a value (each item of a list); a constant becomes its node."""
        found = []
        for item in self._items(value_id):
            if item not in self.written:
                self._constant(item)
            found.append(self.written[item])
        return found

    def _constant(self, value_id: int) -> None:
        kind, table = self._value(value_id)
        constant = table.get("constant_id") if kind == "VkTensor" and table is not None else -1
        attrs = {"fqn": f"constant {constant}" if constant >= 0 else f"value {value_id}"}
        if 0 <= constant < len(self.constants):
            entry = self.constants[constant]
            where = "named data" if entry.get("offset") == NAMED_DATA else "in the payload"
            attrs["bytes"] = f"{entry.get('length'):,} ({where}, not read)"
        name = f"value_{value_id}"
        self.record.nodes.append(
            ir.NodeRecord(name, ir.CONSTANT, outputs=[self._info(value_id)], attrs=attrs)
        )
        self.written[value_id] = (name, 0)

    def _call(self, index: int, call: flatbuf.Table) -> None:
        rec = ir.NodeRecord(f"vk_op_{index}", ir.OP, target=call.get("name") or "?")
        rec.attrs[registry.DELEGATE_DEBUG_ID] = str(call.get("node_id"))
        args = call.vector("args")
        for position, value_id in enumerate(args[:-1]):
            if self._items(value_id):
                rec.inputs.extend(self._sources(value_id))
            else:
                rec.attrs[f"args[{position}]"] = self._literal(value_id)
        for out_index, value_id in enumerate(self._items(args[-1]) if args else []):
            rec.outputs.append(self._info(value_id))
            self.written[value_id] = (rec.name, out_index)
            if self._storage(value_id):
                rec.attrs[f"out {out_index} storage"] = self._storage(value_id)
        self.record.nodes.append(rec)


# ---- why not delegated (issue 26): how VulkanPartitioner's reasons are collected -----------
#
# Its operator support (``VulkanSupportedOperators`` in
# ``backends/vulkan/partitioner/vulkan_partitioner.py``) says why it skips a node through
# ``log_skip(node, reason)`` (an INFO line on the root logger: "[Vulkan Partitioner] Due to
# [no operator implementation], skipping ..."); a node it refuses without a word is "not
# supported by its operator support".

VULKAN_PARTITIONER = "executorch.backends.vulkan.partitioner.vulkan_partitioner"

NOT_DELEGATED = partitioner_reasons.ReasonSource(
    "VulkanPartitioner",
    said=(
        partitioner_reasons.Said(
            VULKAN_PARTITIONER, "VulkanSupportedOperators", "log_skip", node="node", reason="reason"
        ),
    ),
    check=partitioner_reasons.Check(VULKAN_PARTITIONER, "VulkanSupportedOperators"),
)


# Registered last, with how its partitioner's reasons are heard (above).
BACKEND = registry.register(registry.Backend(
    "VulkanBackend", "Vulkan", hue=276, read=read_payload, reasons=NOT_DELEGATED,
))  # fmt: skip
