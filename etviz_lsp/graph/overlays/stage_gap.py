"""The runtime numeric gap on the stages users read: each row of ExecuTorch's
``Inspector.calculate_numeric_gap`` (``numeric_gap.Gap``, placed on the ``.pte`` graph's
instruction) moved onto the ops of a run's ``lowered`` / ``executorch`` stage that
instruction ran, so the editor can colour them and put the worst on the user's lines.

What is sound, and so what is done:

- a delegate call's row is the SNR of the delegate's outputs (XNNPACK logs no
  intermediates): every op of its partition (the edge ops of the call's debug handles,
  ``Links.handles``) gets that value, read as "the group this op is in ends this far from
  the reference"; its line is the group's output op (the last op that is not a
  quantize / dequantize), where the compared tensor is made;
- a CPU kernel's row goes onto the op it ran, found in order and by op as the latency is
  (a live stage's top-level handles are numbered again after lowering).

Nothing is split or guessed past that; a row with no such op stays on the ``program``
stage only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etviz_lsp.graph.core import model
from etviz_lsp.graph.overlays import numeric, stage_latency
from etviz_lsp.graph.overlays.numeric_gap import EXACT_DB, Gap
from etviz_lsp.graph.readers.links import Links

WORST = 3  # rows sent to the editor as diagnostics
ATTR = "runtime numeric gap"


@dataclass(slots=True)
class StageGap:
    """Node data (graph id -> results) and the worst rows at an op with a line."""

    node_data: dict[str, model.Json] = field(default_factory=dict)
    worst: list[dict[str, object]] = field(default_factory=list)

    def add(self, graph_id: str, node_id: str, snr_db: float) -> None:
        entry = self.node_data.setdefault(
            graph_id, {"results": {}, "gradient": numeric.SQNR_GRADIENT})
        entry["results"].setdefault(node_id, {"value": round(snr_db, 3)})  # worst first


def _group(
    gap: Gap, graph: model.Graph, program: model.Graph, links: Links,
    cpu: dict[int, model.Node],
) -> list[model.Node]:
    """The stage ops the gap's instruction ran, its output op last."""
    instruction = int(gap.node.removeprefix("instruction_"))
    node = next((n for n in program.nodes if n["id"] == gap.node), None)
    if node is None:
        return []
    if not node.get("subgraphIds") and model.node_attr(node, "backend") is None:
        return [cpu[instruction]] if instruction in cpu else []
    handles = set(links.handles.get(gap.graph_id, {}).get(instruction, []))
    by_handle = stage_latency.stage_ops(graph, delegated_only=True)
    inside = {op["id"] for h in handles for op in by_handle.get(h, [])}
    return [op for op in graph.nodes if op["id"] in inside]


def onto_stages(
    gaps: list[Gap], program: model.GraphCollection, links: Links, stages: list[model.Graph],
) -> StageGap:
    """``gaps`` (worst first, on ``program``'s method graphs) onto each of ``stages``
    (annotated in place: an attr on each op); node data and the worst rows."""
    found = StageGap()
    by_id = {g.id: g for g in program.graphs}
    for graph in stages:
        for node in graph.nodes:  # an earlier profile's (a profile rewrites the same graph)
            node["attrs"] = [a for a in node["attrs"] if a["key"] != ATTR]
        cpus: dict[str, dict[int, model.Node]] = {}
        for gap in gaps:
            method = by_id.get(gap.graph_id)
            if method is None:
                continue
            cpu = cpus.setdefault(gap.graph_id, stage_latency.cpu_ops(graph, method))
            ops = _group(gap, graph, method, links, cpu)
            for op in ops:
                op["attrs"].append({"key": ATTR, "value": _said(gap)})
                found.add(graph.id, op["id"], gap.snr_db)
            # the lines of the first stage only: the next one's ops are on the same lines
            if ops and gap.snr_db < EXACT_DB and graph is stages[0]:
                output = _output_op(ops)
                found.worst.append({"graph": graph.id, "node": output["id"],
                                    "target": output["label"], "runtime_ops": gap.runtime_ops,
                                    "snr_db": round(gap.snr_db, 3)})
    del found.worst[WORST:]  # gaps come worst first
    return found


def _output_op(ops: list[model.Node]) -> model.Node:
    """The op that makes the group's compared output: its last compute op."""
    return stage_latency.carrier_of(list(reversed(ops)))


def _said(gap: Gap) -> str:
    if gap.snr_db >= EXACT_DB:
        return f"equal to the reference ({gap.runtime_ops})"
    return f"SNR {gap.snr_db:.1f} dB ({gap.runtime_ops})"

