"""Entry points of the graph room: programs or a ``.pt2`` in, a graph collection out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp.graph import builder, model


def from_programs(
    items: list[tuple[str, Any]],
    label: str,
    *,
    partition_name: Callable[[Any], str | None] | None = None,
    cluster_name: Callable[[Any], str | None] | None = None,
) -> model.GraphCollection:
    """One graph per program found in each ``(name, object)`` (plus nested graphs).

    ``partition_name`` / ``cluster_name`` take a ``torch.fx.Node`` and return the name
    of its partition / QDQ cluster or None (ExecuTorch's ``get_node_partition_name`` and
    ``get_node_qdq_cluster_name``). Without them: partitions from ``delegation_tag`` and
    lowered delegates, clusters from ``node.meta["cluster"]`` or the graph itself.
    """
    from etviz_lsp.graph import fx_reader, programs

    namers = fx_reader.Namers(partition=partition_name, cluster=cluster_name)
    collection = model.GraphCollection(label=label)
    used: set[str] = set()
    for name, obj in items:
        specs = programs.tag_specs(obj)
        for program_name, program in programs.named_programs(obj, name):
            program_name = _unique(program_name, used)
            record = fx_reader.read_exported_program(program, program_name, namers)
            collection.graphs.extend(builder.build_graphs(record, tag_specs=specs))
    return collection


def _unique(name: str, used: set[str]) -> str:
    """Graph ids must differ: a second ``m (edge)`` becomes ``m (edge) #2``."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name} #{n}"
    used.add(candidate)
    return candidate


def from_pt2(path: Path) -> model.GraphCollection:
    """Load a ``.pt2`` (unpickles: the caller decides the file is trusted) and convert it."""
    from etviz_lsp.graph import pt2_load

    program = pt2_load.load_exported_program(path)
    return from_programs([(path.stem, program)], label=path.name)


@dataclass(frozen=True, slots=True)
class Summary:
    graphs: int
    op_nodes: int
    layers: int

    def __str__(self) -> str:
        return f"{self.graphs} graph(s), {self.op_nodes} op nodes, {self.layers} layers"


def summarize(collection: model.GraphCollection) -> Summary:
    ops = sum(1 for g in collection.graphs for n in g.nodes if n.attrs.get("kind") == "op")
    layers = sum(len([ns for ns in g.group_attrs if ns]) for g in collection.graphs)
    return Summary(graphs=len(collection.graphs), op_nodes=ops, layers=layers)
