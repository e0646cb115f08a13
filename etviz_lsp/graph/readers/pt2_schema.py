"""The parts of torch's serialized program that a graph view reads, as msgspec structs.

Field names follow torch's schema (``torch/_export/serde/schema.py``). A 20k-node program
is about 20 MB of JSON; decoding it straight into these structs skips every field left
out here (strides, devices, ``torch_fn``, the module call graph ...) without making an
object for it, which is about twice as fast as building dicts of everything and reading a
few keys, and leaves half as many objects to free.

Arguments (``NamedArgument.arg``, node outputs, graph inputs and outputs) stay plain
dicts: a union of some thirty kinds of one key each, which ``pt2_program`` dispatches on.
Two parts stay raw JSON text (:class:`msgspec.Raw`, a view of the file's bytes) until
they are needed: each node, decoded when it is read and dropped after, so the nodes never
all exist as objects at once; and tensor metadata, as a program has thousands of values
but a few dozen distinct metadata texts, so ``pt2_text`` decodes each text once.

Defaults follow what torch's deserializer accepts as missing. A value of the wrong type
raises :class:`msgspec.ValidationError`, which names where it is.
"""

from __future__ import annotations

from typing import Any

import msgspec

Argument = dict[str, Any]
NULL = msgspec.Raw(b"null")  # raw JSON null: what a missing tensor metadata reads as


class NodeMetadata(msgspec.Struct):
    """``Node.metadata``: a ``dict[str, str]`` in the schema; three of its keys are shown."""

    stack_trace: str | None = None
    nn_module_stack: str | None = None
    debug_handle: str | None = None  # ExecuTorch's programs (an ETRecord's) carry one
    # JSON: the nodes this one was made from, each with its graph's id (torch's provenance):
    # how an ETRecord's edge ops name the exported program's (etrecord.exported_handles)
    from_node: str | None = None


class NamedArgument(msgspec.Struct):
    arg: Argument
    name: str = ""
    kind: int | None = None  # ArgumentKind: 1 positional, 2 keyword; absent in old files


class Node(msgspec.Struct):
    target: str
    inputs: list[NamedArgument] = []
    outputs: list[Argument] = []
    metadata: NodeMetadata | None = None
    is_hop_single_tensor_return: bool | None = None
    name: str | None = None  # absent before torch 2.6: then torch names a node itself


class Graph(msgspec.Struct):
    inputs: list[Argument] = []
    outputs: list[Argument] = []
    nodes: list[msgspec.Raw] = []  # decoded one at a time: see decode_node
    tensor_values: dict[str, msgspec.Raw] = {}  # decoded on demand: see TensorMeta
    sym_int_values: dict[str, Argument] = {}
    sym_bool_values: dict[str, Argument] = {}
    sym_float_values: dict[str, Argument] = {}
    custom_obj_values: dict[str, Any] = {}


class GraphModule(msgspec.Struct):
    graph: Graph
    signature: dict[str, Any]  # small: read as plain dicts


class Program(msgspec.Struct):
    """``models/<name>.json``: one ``ExportedProgram``."""

    graph_module: GraphModule
    schema_version: Any = None  # checked by the reader, which knows what to accept


class Versioned(msgspec.Struct):
    """Just the schema version, to name it when a program does not decode as above."""

    schema_version: Any = None


class TensorMeta(msgspec.Struct):
    dtype: int
    sizes: list[Argument]  # SymInt: {"as_int": n} or {"as_expr": {...}}


class WeightEntry(msgspec.Struct):
    tensor_meta: msgspec.Raw = NULL  # (msgspec.Raw | None accepts only null)


class WeightsConfig(msgspec.Struct):
    """``data/weights/<name>_weights_config.json``: shapes and dtypes, never the weights."""

    config: dict[str, WeightEntry] = {}


_PROGRAM = msgspec.json.Decoder(Program)
_NODE = msgspec.json.Decoder(Node)
_GRAPH = msgspec.json.Decoder(Graph)
_VERSIONED = msgspec.json.Decoder(Versioned)
_WEIGHTS = msgspec.json.Decoder(WeightsConfig)
_TENSOR_META = msgspec.json.Decoder(TensorMeta | None)


def decode_program(data: bytes | bytearray | memoryview) -> Program:
    return _PROGRAM.decode(data)


def decode_node(raw: msgspec.Raw) -> Node:
    """One node, decoded when it is read and dropped after: a 20k-node program's nodes
    never all exist as objects at once (~45 MB less at the peak than decoding them all)."""
    return _NODE.decode(raw)


def decode_version(data: bytes | bytearray | memoryview) -> Any:
    return _VERSIONED.decode(data).schema_version


def decode_weights(data: bytes | bytearray | memoryview) -> WeightsConfig:
    return _WEIGHTS.decode(data)


def decode_tensor_meta(raw: msgspec.Raw) -> TensorMeta | None:
    return _TENSOR_META.decode(raw)


def graph_from_argument(value: Argument) -> Graph:
    """A nested graph (``torch.cond`` branch ...) arrives inside an argument, as a plain
    dict: encoded again and decoded like the top-level one (rare, and small)."""
    return _GRAPH.decode(msgspec.json.encode(value))
