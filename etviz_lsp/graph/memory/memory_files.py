"""The memory plan's files beside a graph JSON, written after it through ``graph_files``
(which names them and lists them in the manifest): node data ``m.memory-out.json`` and
``m.memory-live.json`` (Model Explorer colours the graph by the one loaded last: bytes
alive), and the timeline ``m.memory.svg``; each atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from etviz_lsp.graph.core import model
from etviz_lsp.graph.memory import memory_plan, memory_svg
from etviz_lsp.graph_files import GraphFiles


@dataclass(frozen=True, slots=True)
class MemoryFiles:
    node_data: dict[str, Path] = field(default_factory=dict)  # memory-out, memory-live
    svg: Path | None = None
    summary: tuple[str, ...] = ()  # per buffer: peak and the largest tensors alive there


def write(collection: model.GraphCollection, files: GraphFiles, svg: Path | None) -> MemoryFiles:
    """The files for the memory plans the reader left on ``collection`` (none: nothing)."""
    if memory_plan.EXTRAS_KEY not in collection.extras:
        return MemoryFiles()
    return write_plans(memory_plan.plans_of(collection), files, svg, collection.label)


def write_plans(
    plans: list[memory_plan.MemoryPlan], files: GraphFiles, svg: Path | None, label: str
) -> MemoryFiles:
    """Node data of every plan (keyed by graph id), one timeline with a panel per buffer
    (beside the graph unless ``svg`` says where)."""
    paths: dict[str, Path] = {}
    for metric, data in memory_plan.node_data(plans).items():
        paths[f"memory-{metric}"] = files.write_overlay("memory", metric, data)
    title = f"{label}: planned memory over the {plans[0].unit if plans else 'instruction'}s"
    written = files.write_memory_svg(memory_svg.render(plans, title), svg)
    return MemoryFiles(paths, written, tuple(memory_plan.summary_lines(plans)))
