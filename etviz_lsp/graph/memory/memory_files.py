"""The memory plan's files beside a graph JSON, written after it (``overlay_files``' rule):
node data ``m.memory-out.json`` and ``m.memory-live.json`` (Model Explorer colours the graph
by the one loaded last: bytes alive), and the timeline ``m.memory.svg``; each atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from etviz_lsp import atomic_file, overlay_files
from etviz_lsp.graph.core import model
from etviz_lsp.graph.core.writer import write_json_atomic
from etviz_lsp.graph.memory import memory_plan, memory_svg


@dataclass(frozen=True, slots=True)
class MemoryFiles:
    node_data: dict[str, Path] = field(default_factory=dict)  # memory-out, memory-live
    svg: Path | None = None
    summary: tuple[str, ...] = ()  # per buffer: peak and the largest tensors alive there


def svg_path(graph_json: Path) -> Path:
    """``m.json`` -> ``m.memory.svg``, beside it."""
    return graph_json.with_name(f"{graph_json.name.removesuffix('.json')}.memory.svg")


def write(collection: model.GraphCollection, graph_json: Path, svg: Path | None) -> MemoryFiles:
    """The files for the memory plans the reader left on ``collection`` (none: nothing)."""
    if memory_plan.EXTRAS_KEY not in collection.extras:
        return MemoryFiles()
    return write_plans(memory_plan.plans_of(collection), graph_json, svg, collection.label)


def write_plans(
    plans: list[memory_plan.MemoryPlan], graph_json: Path, svg: Path | None, label: str
) -> MemoryFiles:
    """Node data of every plan (keyed by graph id), one timeline with a panel per buffer."""
    paths: dict[str, Path] = {}
    for metric, data in memory_plan.node_data(plans).items():
        paths[f"memory-{metric}"] = overlay_files.overlay_path(graph_json, "memory", metric)
        write_json_atomic(paths[f"memory-{metric}"], data)
    svg = svg or svg_path(graph_json)
    title = f"{label}: planned memory over the {plans[0].unit if plans else 'instruction'}s"
    atomic_file.write_bytes(svg, memory_svg.render(plans, title).encode())
    return MemoryFiles(paths, svg, tuple(memory_plan.summary_lines(plans)))
