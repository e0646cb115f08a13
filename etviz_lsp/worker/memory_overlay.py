"""In a script run's child: the memory plan of every ``executorch`` stage the run made
(``graph.memory_fx``, from ExecuTorch's own tensor specs), or of the ``.pte`` opened.

Before the graph JSON is written the stages' graphs get the figures (node attributes,
graph info); after it, the node data ``m.memory-live.json`` / ``m.memory-out.json`` and the
timeline ``m.memory.svg`` go beside it (``graph.memory_files``, listed in the manifest).
What fails costs the memory plan only: a warning of the run, never its graphs.
"""

from __future__ import annotations

from typing import Any

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.memory import memory_files, memory_fx
from etviz_lsp.graph.memory.memory_plan import MemoryPlan
from etviz_lsp.graph_files import GraphFiles


def compute(stages: list[Any], opened: list[MemoryPlan], warnings: list[str]) -> list[MemoryPlan]:
    """The plans of the run's ``executorch`` stages (their graphs annotated), after those
    the reader of an opened ``.pte`` already made."""
    try:
        return [*opened, *memory_fx.stage_plans(stages)]
    except Exception as exc:  # ExecuTorch's objects, whatever their version holds
        warnings.append(f"memory plan not shown: {type(exc).__name__}: {exc}")
        return list(opened)


def write(
    plans: list[MemoryPlan], files: GraphFiles, label: str, warnings: list[str]
) -> dict[str, Any]:
    """The files beside the graph JSON; the run's answer part (summary lines; the SVG's
    path is in the manifest)."""
    if not plans:
        return {}
    try:
        written = memory_files.write_plans(plans, files, None, label)
    except (EtvizError, OSError) as exc:
        warnings.append(f"memory plan not written: {exc}")
        return {}
    return {"memory": {"summary": list(written.summary)}}
