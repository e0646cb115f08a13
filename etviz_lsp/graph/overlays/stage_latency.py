"""Latency on the stages users read: a ``.pte``'s attributed times moved onto the edge and
lowered stages of the same program, by debug handle (issue 28).

The ``.pte``'s overlay (``latency.attribute``) puts each event on the node that ran it: a
CPU kernel on its instruction, each delegate kernel on the backend's op inside the delegate
(XNNPACK's XNN node). Those nodes name the edge ops they came from by debug handle: an
instruction through the ETRecord's ``debug_handle_map`` (``Links.handles``), an op inside
a delegate by its own handle (XNNPACK) or its key in the delegate map (Vulkan, Core ML:
``Links.delegate_ids``). Here each such time goes onto the op of a stage graph with those
handles (and, when the graph says, the same instruction):

- one kernel, several ops (a conv with its quantize / dequantize, one handle): the time is
  on the compute op (the first op that is not a quantize / dequantize), the others say
  where it is (``latency in``); nothing is split by a guess, nothing counted twice;
- what no op ran (kernels the runtime inserted, handle 65535; the call's overhead) stays on
  the delegate: the partition layer gets the delegate call's time and the part on its ops;
- layers (partition and module) and the graph show the sum of their ops.

So the ops of a delegate's partition sum to at most its call's time, as on the ``.pte``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.backends import registry
from etviz_lsp.graph.core import model
from etviz_lsp.graph.overlays import latency
from etviz_lsp.graph.overlays.latency import GRADIENT, METRICS, layer_sums
from etviz_lsp.graph.readers.etdump import ETDump
from etviz_lsp.graph.readers.links import Links

_QDQ = ("quantize_per", "dequantize_per", "choose_qparams")


@dataclass(slots=True)
class _Time:
    """One timed node of the program: its instruction, the handles it ran, per metric."""

    instruction: int
    handles: list[int]
    values: dict[str, float]
    delegated: bool
    label: str = ""  # the program's op (``aten::cumsum``)


@dataclass(slots=True)
class StageLatency:
    """What :func:`onto_stages` found: node data per metric (stage graph id -> results)."""

    node_data: dict[str, dict[str, model.Json]] = field(default_factory=dict)
    placed: int = 0  # program nodes whose time is on a stage op
    unplaced: int = 0  # program nodes with a time and handles no stage op has

    def line(self) -> str:
        graphs = sorted({g for data in self.node_data.values() for g in data})
        return (f"on {', '.join(graphs) or 'no stage'}: {self.placed} timed ops placed by "
                f"debug handle, {self.unplaced} with no op of their handles")


def _values(
    node_data: dict[str, dict[str, model.Json]], graph_id: str
) -> dict[str, dict[str, float]]:
    """node id -> metric -> value, for one graph of the program's node data."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for metric, graphs in node_data.items():
        for node_id, result in (graphs.get(graph_id) or {}).get("results", {}).items():
            found[node_id][metric] = float(result["value"])
    return found


def _instruction(node: model.Node) -> int | None:
    text = model.node_attr(node, "instruction") or ""
    return int(text) if text.isdigit() else None


def program_times(
    program: model.GraphCollection, node_data: dict[str, dict[str, model.Json]],
    links: Links, method: str,
) -> tuple[list[_Time], dict[int, dict[str, float]]]:
    """The timed nodes of ``method``'s graph with their handles; each delegate call's time."""
    by_id = {g.id: g for g in program.graphs}
    top = by_id.get(method)
    times: list[_Time] = []
    calls: dict[int, dict[str, float]] = {}
    if top is None:
        return times, calls
    values = _values(node_data, method)
    handles = links.handles.get(method, {})
    for node in top.nodes:
        instruction = _instruction(node)
        if instruction is None:
            continue
        if node.get("subgraphIds") or model.node_attr(node, "backend") is not None:
            if node["id"] in values:
                calls[instruction] = values[node["id"]]
            for sub in node.get("subgraphIds", []):
                if sub in by_id:
                    times += _inner_times(by_id[sub], node_data, links, method, instruction)
        elif node["id"] in values:
            times.append(_Time(instruction, handles.get(instruction, []), values[node["id"]],
                               delegated=False, label=node["label"]))
    return times, calls


def _inner_times(
    sub: model.Graph, node_data: dict[str, dict[str, model.Json]], links: Links, method: str,
    instruction: int,
) -> list[_Time]:
    """The ops inside one delegate call with a time, by their own handle or delegate id."""
    values = _values(node_data, sub.id)
    keys = links.delegate_ids.get(method, {}).get(instruction, {})
    found: list[_Time] = []
    for node in sub.nodes:
        if node["id"] not in values:
            continue
        handle = model.node_attr(node, "debug_handle") or ""
        key = model.node_attr(node, registry.DELEGATE_DEBUG_ID) or ""
        handles = [int(handle)] if handle.isdigit() else keys.get(key, [])
        found.append(_Time(instruction, handles, values[node["id"]], delegated=True))
    return found


def carrier_of(ops: list[model.Node]) -> model.Node:
    """The op that shows a kernel's time: the compute op, not its quantize / dequantize."""
    return next((op for op in ops if not op["label"].startswith(_QDQ)), ops[0])


def stage_ops(graph: model.Graph, delegated_only: bool) -> dict[int, list[model.Node]]:
    """The graph's ops by debug handle (only those inside a partition: ``delegated_only``)."""
    by_handle: dict[int, list[model.Node]] = defaultdict(list)
    for node in graph.nodes:
        text = model.node_attr(node, "debug_handle") or ""
        inside = model.node_attr(node, "partition") is not None
        if text.isdigit() and model.node_attr(node, "kind") == "op" and (
            inside or not delegated_only
        ):
            by_handle[int(text)].append(node)
    return by_handle


def _cpu_by_order(graph: model.Graph, times: list[_Time]) -> dict[int, list[model.Node]]:
    """A live program's CPU kernels -> its ops outside partitions, in order and by op (its
    top-level ops are numbered again after lowering: their handles are not the map's)."""
    ops = [n for n in graph.nodes if model.node_attr(n, "kind") == "op"
           and model.node_attr(n, "partition") is None and n["label"] != "getitem"]
    cpu = [t for t in times if not t.delegated]
    places = latency.align([t.label.split("::")[-1] for t in cpu], [n["label"] for n in ops],
                           lambda kernel, op: kernel == op)
    return {id(t): [ops[p]] for t, p in zip(cpu, places, strict=True) if p is not None}


def cpu_ops(graph: model.Graph, program: model.Graph) -> dict[int, model.Node]:
    """A live stage's op each CPU kernel of ``program`` (a method's graph) ran, by
    instruction: kernels and ops aligned in order and by op, as the latency is."""
    times = [
        _Time(i, [], {}, delegated=False, label=node["label"]) for node in program.nodes
        if (i := _instruction(node)) is not None and not node.get("subgraphIds")
        and model.node_attr(node, "backend") is None
    ]
    placed = _cpu_by_order(graph, times)
    return {t.instruction: placed[id(t)][0] for t in times if id(t) in placed}


@dataclass(slots=True)
class _Placed:
    """A stage graph's times per op, which op shows a shared kernel, per delegate call."""

    totals: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    pointers: dict[str, str] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)  # partition key -> instruction
    on_ops: dict[int, float] = field(default_factory=lambda: defaultdict(float))


def onto_graph(
    graph: model.Graph, times: list[_Time], calls: dict[int, dict[str, float]],
    found: StageLatency, *, live: bool = False,
) -> None:
    """Each time onto its op of ``graph``; attributes, layer sums and node data. ``live``:
    a script run's stage (CPU kernels placed by order, not by handle)."""
    _clear(graph)
    by_handle = stage_ops(graph, delegated_only=live)
    by_order = _cpu_by_order(graph, times) if live else {}
    placed = _Placed()
    for time in times:
        ops = by_order.get(id(time), []) if live and not time.delegated else [
            op for h in dict.fromkeys(time.handles) for op in by_handle.get(h, [])
            if _instruction(op) in (None, time.instruction)
        ]
        if not ops:
            found.unplaced += bool(time.handles)
            continue
        found.placed += 1
        carrier = carrier_of(ops)
        for metric, value in time.values.items():
            placed.totals[carrier["id"]][metric] += value
        placed.pointers.update({op["id"]: carrier["id"] for op in ops if op is not carrier})
        if time.delegated:
            placed.partitions[model.node_attr(carrier, "partition") or ""] = time.instruction
            placed.on_ops[time.instruction] += time.values.get("avg", 0.0)
    _annotate(graph, placed.totals, placed.pointers)
    _partition_facts(graph, calls, placed)
    for metric in METRICS:
        results = {node: {"value": round(v.get(metric, 0.0), 6)}
                   for node, v in placed.totals.items()}
        if results:
            found.node_data.setdefault(metric, {})[graph.id] = {
                "results": results, "gradient": GRADIENT}


_LAYER_FACTS = ("latency sum avg (ms)", "delegate call avg (ms)", "on its ops avg (ms)",
                "left on the delegate avg (ms)")


def _clear(graph: model.Graph) -> None:
    """An earlier profile's latency off the graph (a profile again rewrites the same one)."""
    for node in graph.nodes:
        node["attrs"] = [a for a in node["attrs"] if not a["key"].startswith("latency ")]
    for attrs in graph.group_attrs.values():
        for key in _LAYER_FACTS:
            attrs.pop(key, None)


def _annotate(
    graph: model.Graph, totals: dict[str, dict[str, float]], pointers: dict[str, str]
) -> None:
    for node in graph.nodes:
        values = totals.get(node["id"])
        if values is not None:
            node["attrs"].extend(
                {"key": f"latency {metric} (ms)", "value": f"{values.get(metric, 0.0):.4f}"}
                for metric in METRICS
            )
        elif node["id"] in pointers:
            node["attrs"].append({"key": "latency in", "value": pointers[node["id"]]})
    layer_sums(graph, {node: [v.get("avg", 0.0)] for node, v in totals.items()})


def _partition_facts(
    graph: model.Graph, calls: dict[int, dict[str, float]], placed: _Placed
) -> None:
    """On each delegate's partition layer: its call's time and the part its ops carry."""
    for attrs in graph.group_attrs.values():
        instruction = placed.partitions.get(attrs.get("partition", ""))
        if instruction is None or instruction not in calls:
            continue
        call, ops = calls[instruction].get("avg", 0.0), placed.on_ops[instruction]
        attrs.update({
            "delegate call avg (ms)": f"{call:.4f}",
            "on its ops avg (ms)": f"{ops:.4f}",
            "left on the delegate avg (ms)": f"{call - ops:.4f}",
        })  # fmt: skip


def onto_stages(
    program: model.GraphCollection, node_data: dict[str, dict[str, model.Json]],
    links: Links, stages: dict[str, list[model.Graph]],
) -> StageLatency:
    """``program``'s latency (its ``latency.attribute`` node data) onto ``stages`` (method
    -> the stage graphs of that method), by debug handle through ``links``."""
    found = StageLatency()
    for method, graphs in stages.items():
        times, calls = program_times(program, node_data, links, method)
        for graph in graphs:
            onto_graph(graph, times, calls, found)
    return found


def from_etrecord(
    collection: model.GraphCollection, etrecord_path: Path, pte: Path, dump: ETDump
) -> tuple[latency.Overlay, StageLatency]:
    """An ETRecord's stages (``read_etrecord``'s collection, annotated in place) with the
    latency of ``dump``, a run of ``pte``, the program that ETRecord was written with.

    The events are attributed to the ``.pte``'s graphs first (the program that ran: its
    delegate kernels matched to the backend's ops), then moved onto each method's stages."""
    from etviz_lsp.graph.readers import etrecord
    from etviz_lsp.graph.readers.pte_reader import read_pte

    links = etrecord.links(etrecord_path)
    program = read_pte(pte, etrecord=etrecord_path)
    found = latency.attribute(program, dump)
    stages: dict[str, list[model.Graph]] = defaultdict(list)
    for graph in collection.graphs:
        method, _, stage = graph.id.rpartition(" (")
        if method in links.handles and stage.rstrip(")") in ("edge", "lowered"):
            stages[method].append(graph)
    return found, onto_stages(program, found.node_data, links, stages)


def onto_exported(
    graph: model.Graph, edge: model.Graph, edge_data: dict[str, dict[str, model.Json]],
    handles: dict[str, int], found: StageLatency,
) -> None:
    """The edge stage's times (``edge_data``, placed by :func:`onto_stages`) onto ``graph``,
    the exported program the edge program was made from, by the debug handles propagated
    back to its ops (``handles``: op name -> handle, ``etrecord.exported_handles``; each op
    gets its handle as an attribute). Same rules: one handle's time on its compute op."""
    for node in graph.nodes:
        if node["id"] in handles and model.node_attr(node, "kind") == "op":
            node["attrs"].append({"key": "debug_handle", "value": str(handles[node["id"]])})
    values = _values(edge_data, edge.id)
    times = [
        _Time(-1, [int(text)], values[node["id"]], delegated=False) for node in edge.nodes
        if node["id"] in values and (text := model.node_attr(node, "debug_handle") or "").isdigit()
    ]
    onto_graph(graph, times, {}, found)


def from_exported(
    collection: model.GraphCollection, source: Path, etrecord_path: Path, pte: Path,
    dump: ETDump,
) -> tuple[latency.Overlay, StageLatency]:
    """A ``.pt2``'s graph (``collection``, annotated in place) with the latency of ``dump``,
    a run of ``pte`` lowered from it with ``etrecord_path`` written. Sound only if the
    ``.pt2`` is the program the ETRecord recorded: its ops (names and targets) must be the
    ETRecord's exported program's, else one line says which differs."""
    from etviz_lsp.graph.readers import etrecord

    recorded = etrecord.read_etrecord(etrecord_path)
    exported = next((g for g in recorded.graphs if g.id.endswith(" (exported)")), None)
    graph = next((g for g in collection.graphs if "/" not in g.id), None)
    if exported is None or graph is None:
        raise EtvizError(str(etrecord_path), "an ETRecord with no exported program to match")
    _check_same_ops(graph, exported, source, etrecord_path)
    found, placed = from_etrecord(recorded, etrecord_path, pte, dump)
    edge = next((g for g in recorded.graphs if g.id.endswith(" (edge)")), None)
    on_program = StageLatency()
    if edge is not None:
        edge_data = {m: {edge.id: d[edge.id]} for m, d in placed.node_data.items() if edge.id in d}
        onto_exported(graph, edge, edge_data, etrecord.exported_handles(etrecord_path),
                      on_program)
    on_program.unplaced = placed.unplaced
    return found, on_program


def _ops(graph: model.Graph) -> dict[str, str]:
    return {n["id"]: n["label"] for n in graph.nodes if model.node_attr(n, "kind") == "op"}


def _check_same_ops(
    graph: model.Graph, exported: model.Graph, source: Path, etrecord_path: Path
) -> None:
    mine, recorded = _ops(graph), _ops(exported)
    if mine == recorded:
        return
    differs = sorted(set(mine.items()) ^ set(recorded.items()))[0]
    raise EtvizError(
        str(source), f"not the program {etrecord_path.name} recorded (op {differs[0]} "
        f"{differs[1]} is in only one of them): the ETDump's latency cannot be placed on it")
