"""In a script run's child: where quantization hurts, for every quantized stage the run made.

A run that exported a float program and then a PT2E-quantized one (prepare / calibrate /
convert, re-exported) has both live here. Each quantized stage is compared with the last
float ``exported`` stage before it (:mod:`etviz_lsp.graph.overlays.numeric`) on that stage's
``ExportedProgram.example_inputs``; its graph gets the numbers on its nodes and the worst
ops in its info (before the final graph JSON is written), and the node data goes to
``m.numeric-sqnr.json`` / ``m.numeric-max-abs-error.json`` beside it (after, through
``graph_files``: the manifest written last lists them; one it does not list is not shown).

Bounded: all comparisons together get ``SECONDS`` and keep at most ``max_bytes()`` of
float outputs; past either, or on any failure, the overlay becomes one note and the graphs
are as without it. Never raises.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etviz_lsp.graph.core import model
from etviz_lsp.graph.overlays import numeric
from etviz_lsp.graph_files import GraphFiles

SECONDS = 20.0  # a MobileNet-sized pair takes ~1 s here (README "Numeric overlay")
MAX_BYTES = 2 << 30
WORST = 5  # ops listed in the graph info, sent to the editor as diagnostics
# What the overlay costs a run, said on the note, is measured in this process.


@dataclass(frozen=True, slots=True)
class Stage:
    """One captured stage: what it is (``exported``, ``quantized``...), the live program,
    its graph (node ids are the program's FX node names)."""

    kind: str
    program: Any
    graph: model.Graph


@dataclass(slots=True)
class Overlay:
    """The comparisons of one run: per quantized graph its errors, worst first."""

    errors: dict[str, list[numeric.OpError]] = field(default_factory=dict)
    targets: dict[str, dict[str, str]] = field(default_factory=dict)  # graph -> node -> op
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """What the run's answer carries: the worst ops of each graph, the notes."""
        worst = [
            {"graph": graph_id, "node": e.node, "target": self.targets[graph_id].get(e.node, ""),
             "sqnr_db": e.sqnr_db if math.isfinite(e.sqnr_db) else None,
             "max_abs": e.max_abs, "ops": len(errors)}
            for graph_id, errors in self.errors.items() for e in errors[:WORST]
        ]  # fmt: skip
        return {"worst": worst, "notes": self.notes, "seconds": round(self.seconds, 3)}


def pairs(stages: list[Stage]) -> list[tuple[Stage, Stage]]:
    """Each quantized stage with the last float exported stage before it."""
    found, last_float = [], None
    for stage in stages:
        if stage.kind == "exported":
            last_float = stage
        elif stage.kind == "quantized" and last_float is not None:
            found.append((last_float, stage))
    return found


def compute(stages: list[Stage], seconds: float = SECONDS) -> Overlay:
    """Compare every pair within one budget; annotate the quantized graphs."""
    overlay = Overlay()
    started = time.perf_counter()
    budget = numeric.Budget(seconds=seconds, max_bytes=max_bytes())
    for float_stage, quantized in pairs(stages):
        graph = quantized.graph
        try:
            errors = numeric.op_errors(
                float_stage.program, quantized.program, _inputs(float_stage.program),
                budget=budget,
            )
        except numeric.OverBudget as over:
            # fx's Interpreter appends the node it was running: the first line says why
            why = str(over).strip().splitlines()[0]
            overlay.notes.append(f"{graph.id}: numeric overlay skipped: {why}")
            break
        except Exception as exc:  # the user's program, torch: costs the overlay only
            overlay.notes.append(f"{graph.id}: numeric overlay failed: {_first_line(exc)}")
            continue
        ids = {node["id"] for node in graph.nodes}
        errors = [e for e in errors if e.node in ids]
        if not errors:
            matched = f"no op matched {float_stage.graph.id}"
            overlay.notes.append(f"{graph.id}: numeric overlay: {matched}")
            continue
        numeric.annotate(graph, errors, worst=WORST)
        overlay.errors[graph.id] = errors
        overlay.targets[graph.id] = {n["id"]: str(n.get("label", "")) for n in graph.nodes}
    overlay.seconds = time.perf_counter() - started
    return overlay


def write(overlay: Overlay, files: GraphFiles) -> list[Path]:
    """The node-data files beside the graph JSON (written already); none when nothing
    matched (an earlier run's are then not listed: not shown)."""
    if not overlay.errors:
        return []
    merged: dict[str, dict[str, model.Json]] = {}
    for graph_id, errors in overlay.errors.items():
        for metric, data in numeric.node_data(graph_id, errors).items():
            merged.setdefault(metric, {}).update(data)
    written = []
    for metric, data in merged.items():
        written.append(files.write_overlay("numeric", metric, data))
    return written


def max_bytes() -> int:
    """Float outputs kept for the comparison: a quarter of the memory free now, at most
    ``MAX_BYTES`` (a forked child shares the warm worker's pages; this is on top)."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return MAX_BYTES
    return min(MAX_BYTES, free // 4)


def _inputs(program: Any) -> tuple[Any, ...]:
    """The flat inputs the program was exported with (``example_inputs``: args, kwargs)."""
    from torch.utils import _pytree

    example = getattr(program, "example_inputs", None)
    if example is None:
        raise ValueError("the float program kept no example inputs")
    return tuple(_pytree.tree_leaves(example))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def describe(entry: dict[str, Any]) -> str:
    """One worst op of a summary, as the CLI and the editor say it:
    ``conv2d_1 (aten::conv2d) SQNR 12.3 dB, max abs error 0.41 (worst of 7 ops)``."""
    sqnr = entry.get("sqnr_db")
    said = f"SQNR {sqnr:.1f} dB" if isinstance(sqnr, (int, float)) else "exact"
    target = f" ({entry['target']})" if entry.get("target") else ""
    return (
        f"{entry.get('node')}{target} {said}, max abs error {entry.get('max_abs', 0):.3g} "
        f"(worst of {entry.get('ops', 0)} ops)"
    )


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The CLI's lines: per compared graph its worst op, then the notes."""
    lines, seen = [], set()
    for entry in summary.get("worst", []):
        if entry.get("graph") not in seen:
            seen.add(entry.get("graph"))
            lines.append(f"{entry.get('graph')}: {describe(entry)}")
    if lines and summary.get("seconds") is not None:
        lines[-1] += f"; compared in {summary['seconds']:.2f} s"
    return lines + [str(note) for note in summary.get("notes", [])]
