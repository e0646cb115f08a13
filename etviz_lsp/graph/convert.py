"""Entry points of the graph room: programs or a ``.pt2`` in, a graph collection out."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp import graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.core import builder, ids, ir, model

log = logging.getLogger(__name__)


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
    from etviz_lsp.graph.readers import fx_reader, programs

    namers = fx_reader.Namers(partition=partition_name, cluster=cluster_name)
    collection = model.GraphCollection(label=label)
    used: set[str] = set()  # graph ids: a second ``m (edge)`` becomes ``m (edge) #2``
    for name, obj in items:
        specs = programs.tag_specs(obj)
        for program_name, program in programs.named_programs(obj, name):
            program_name = ids.claim(program_name, used)
            record = fx_reader.read_exported_program(program, program_name, namers)
            collection.graphs.extend(builder.build_graphs(record, tag_specs=specs, taken=used))
    return collection


PICKLE_OPT_IN = "--allow-pickle (command line) or the setting etviz.allowPickle (editor)"


def from_pt2(path: Path, allow_pickle: bool = False) -> model.GraphCollection:
    """A ``.pt2`` written by ``torch.export.save`` -> its graphs.

    Reads the archive's serialized program directly (``pt2_archive``: no torch import, no
    unpickling, weights never loaded). Only when that reader does not know the archive
    (another archive or schema version, an old layout) and the user opted in for this run
    (``allow_pickle``) does it fall back to ``torch.export.load``, which unpickles and so
    can run code the file carries. Without the opt-in: a one-line error saying so. Naming
    a file, or trusting a workspace (which lets scripts run), is not that opt-in.
    """
    from etviz_lsp.graph.readers import pt2_archive

    try:
        records = pt2_archive.read_records(path)
    except pt2_archive.UnsupportedArchive as exc:
        if not allow_pickle:
            raise EtvizError(
                exc.path,
                f"{exc.cause}; not read: only torch.export.load could open it, and it "
                f"unpickles the file, which can run code; opt in with {PICKLE_OPT_IN} "
                "for a file you trust",
            ) from None
        log.info("%s: %s; falling back to torch.export.load (--allow-pickle)", exc.path, exc.cause)
        return from_pt2_loaded(path)
    collection = model.GraphCollection(label=path.name)
    used: set[str] = set()
    for record in records:
        record.name = ids.claim(record.name, used)
        collection.graphs.extend(builder.build_graphs(record, taken=used))
    return collection


def read_pt2(
    path: Path, *, allow_pickle: bool = False, etrecord: Path | None = None,
    beside: Path | None = None,
) -> model.GraphCollection:
    """The ``.pt2`` row of ``inputs.KINDS`` (an ETRecord companion means nothing here)."""
    return from_pt2(path, allow_pickle=allow_pickle)


def from_pt2_loaded(path: Path) -> model.GraphCollection:
    """Load a ``.pt2`` with ``torch.export.load`` (unpickles: only with the opt-in), convert it."""
    from etviz_lsp.graph.readers import pt2_load

    program = pt2_load.load_exported_program(path)
    return from_programs([(path.stem, program)], label=path.name)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Run a conversion with the cyclic garbage collector paused.

    A 20k-node graph allocates a few million small objects and no reference cycles;
    every collection the allocations trigger scans them all again, which costs about
    half the conversion time. Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class Summary:
    graphs: int
    op_nodes: int
    layers: int

    def __str__(self) -> str:
        return (
            f"{self.graphs} graph(s), {self.op_nodes} operator calls, {self.layers} module layers"
        )


def summarize(collection: model.GraphCollection) -> Summary:
    parts = [summarize_graph(g) for g in collection.graphs]
    return Summary(
        graphs=len(parts),
        op_nodes=sum(p.op_nodes for p in parts),
        layers=sum(p.layers for p in parts),
    )


def summarize_graph(graph: model.Graph) -> Summary:
    ops = sum(1 for n in graph.nodes if model.node_attr(n, "kind") == ir.OP)
    return Summary(graphs=1, op_nodes=ops, layers=len([ns for ns in graph.group_attrs if ns]))


def manifest_graphs(
    graphs: Iterable[model.Graph],
) -> list[tuple[graph_files.GraphInfo, list[model.Node]]]:
    """Each graph's entry in its JSON's manifest (id, node, op and layer counts) with the
    nodes the manifest's navigation map is read from (``graph_files.GraphFiles.wrote_graph``)."""
    found = []
    for graph in graphs:
        counts = summarize_graph(graph)
        entry = graph_files.GraphInfo(graph.id, len(graph.nodes), counts.op_nodes, counts.layers)
        found.append((entry, graph.nodes))
    return found
