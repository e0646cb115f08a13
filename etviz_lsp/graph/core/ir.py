"""A neutral record of one program, the seam between the readers and the builder.

Two readers fill it: ``fx_reader`` (a live ``torch.fx`` graph, e.g. an in-memory
ExportedProgram or one loaded with ``torch.export.load``) and ``pt2_archive`` (the
serialized JSON inside a ``.pt2``, read without unpickling). ``builder`` turns it into
a Model Explorer graph. Because both readers stop here, both paths give the same graph
by construction; tests check that on a corpus.

Everything in here is plain strings and tuples: no torch objects cross this line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# Node kinds, the first column a reader decides for each FX node.
USER_INPUT = "input"
PARAMETER = "parameter"
BUFFER = "buffer"
CONSTANT = "constant"
OP = "op"
GET_ATTR = "get_attr"
OUTPUT = "output"
STATE_KINDS = frozenset({PARAMETER, BUFFER, CONSTANT})


@dataclass(frozen=True, slots=True)
class ValueInfo:
    """What one output of a node holds.

    ``dtype`` is a short tensor dtype (``float32``, ``int8``) or, for non-tensors,
    ``SymInt``, ``SymFloat``, ``SymBool``, ``int``, ``float``, ``bool``, ``None``.
    ``shape`` is set for tensors only; symbolic sizes are their names (``s0``).
    ``value`` is set for scalars (``s0``, ``3``).
    """

    dtype: str
    shape: tuple[str, ...] | None = None
    value: str | None = None

    def numel(self) -> int:
        """Element count of a tensor with a fixed shape; 0 when symbolic or not a tensor."""
        if self.shape is None:
            return 0
        total = 1
        for dim in self.shape:
            if not dim.isdigit():
                return 0
            total *= int(dim)
        return total


class Scope(NamedTuple):
    """One nn.Module instance on a node's module stack: dotted path and class name.

    A named tuple (not a dataclass) because the builder keys layers on tuples of scopes:
    a tuple hashes in C, a frozen dataclass in Python, 20k nodes times the stack depth.
    """

    path: str
    cls: str


@dataclass(slots=True)
class NodeRecord:
    name: str
    kind: str
    target: str = ""
    # Inputs in order: (producer node name, producer output index).
    inputs: list[tuple[str, int]] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    # Outermost first; the root module (empty path) is left out.
    scopes: list[Scope] = field(default_factory=list)
    stack_trace: str | None = None
    # Extra attributes shown on the node: literal arguments, fqn of a parameter, ...
    attrs: dict[str, str] = field(default_factory=dict)
    # Keys in ``ProgramRecord.subprograms`` of the nested graphs this node loads (a
    # get_attr) or runs (torch.cond, while_loop, invoke_subgraph ...): see link_subgraphs.
    subgraphs: list[str] = field(default_factory=list)
    # Partition key: a partitioner's ``delegation_tag``, a user's name for it, or (after
    # delegates are expanded) ``XnnpackBackend#0``. None: not delegated.
    partition: str | None = None
    # QDQ cluster name from ``node.meta["cluster"]`` or a user function; None lets
    # ``qdq`` find clusters from the graph (see ``ProgramRecord.clusters_given``).
    cluster: str | None = None


@dataclass(slots=True)
class PartitionInfo:
    """One partition: its backend ("" if unknown), its number per backend, its layer."""

    backend: str
    index: int
    # The layer's name: ``XnnpackBackend #0``, ``XnnpackBackend #0 (tag6)``.
    label: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class DelegateRecord:
    """A lowered backend module: the program it was made from and how it was compiled."""

    backend: str
    program: ProgramRecord
    # ``compile spec <key>`` -> value (text, or ``<N bytes>``).
    compile_specs: dict[str, str] = field(default_factory=dict)
    size_bytes: int = 0


@dataclass(slots=True)
class ProgramRecord:
    """One graph: its nodes in topological order, its state, its nested graphs."""

    name: str
    nodes: list[NodeRecord] = field(default_factory=list)
    # Fully-qualified parameter name -> its value info (for per-layer parameter counts).
    parameters: dict[str, ValueInfo] = field(default_factory=dict)
    # Nested graphs by their attribute name in the program (the get_attr target): one
    # entry for a graph loaded twice (a shared ``nested_compile_region``).
    subprograms: dict[str, ProgramRecord] = field(default_factory=dict)
    # Lowered backend modules by the name of the get_attr node that loads them.
    delegates: dict[str, DelegateRecord] = field(default_factory=dict)
    # Partition key -> backend and number; filled by ``partitions.expand_delegates`` and
    # for tagged programs from the partitioner's ``partition_tags`` (backend "" if unknown).
    partitions: dict[str, PartitionInfo] = field(default_factory=dict)
    # True when cluster names came from ``node.meta["cluster"]`` or a user function:
    # then those names are the clusters and none are searched for in the graph.
    clusters_given: bool = False


def link_subgraphs(record: ProgramRecord) -> None:
    """Each node that reads a nested graph's ``get_attr`` runs that graph (cond, map ...).

    Resolved through the program's structure: a get_attr node names the graph it loads
    (``subgraphs``), the nodes that consume that get_attr run it. A user input or op whose
    name happens to equal a graph's name links to nothing; two get_attrs of one shared
    graph (``repeated_subgraph0``, ``repeated_subgraph0_1``) both link to that one graph.
    """
    if not record.subprograms:
        return
    loads = {
        rec.name: rec.subgraphs for rec in record.nodes if rec.kind == GET_ATTR and rec.subgraphs
    }
    if not loads:
        return
    for rec in record.nodes:
        if rec.kind == GET_ATTR:
            continue
        rec.subgraphs = [graph for src, _ in rec.inputs for graph in loads.get(src, ())]
