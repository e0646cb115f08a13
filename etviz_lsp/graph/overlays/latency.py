"""Where the time goes: an ETDump's profile events attributed to a ``.pte``'s graphs.

Attribution, per run of the method:

- ``DELEGATE_CALL`` -> the delegate call's node (``instruction_<i>``);
- a delegate's own kernel events (XNNPACK logs each kernel, in execution order, with no
  debug handle: ``Convolution (NHWC, QS8) IGEMM #1``) -> the op nodes of the delegate's
  nested graph, by order and op kind: the longest in-order matching of event kinds to
  node kinds, the kinds as the backend's module matches them (``registry.Backend.
  kernel_match``; a backend without one keeps its kernels on the call's node, listed as
  not matched). Ops the lowering fused are one XNN node, so they get the kernel once. A
  kernel with no XNN node of its kind at that place (one the runtime inserted: a
  ``Convert (NC)`` or ``Transpose (ND, X8)``) stays on the delegate's node, listed as
  runtime-inserted;
- any other event of an instruction (``native_call_cumsum.out``, ``OPERATOR_CALL``) -> that
  instruction's node; ``OPERATOR_CALL`` (the wrapper around a CPU kernel) is shown as an
  attribute, not added to the kernel's value;
- method-level events (``Method::execute``, instruction -1) -> the graph's attributes.

Nothing is dropped silently: an event whose instruction is not in the program (another
program's ETDump) is counted on the graph as not attributed. Values are milliseconds;
over the runs: average, median (p50), min, max, one Model Explorer node-data file each
(``{graphId: {results: {nodeId: {value}}, gradient}}``). Layers (namespaces) and graphs
show sums of their nodes.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from etviz_lsp.graph.backends import registry
from etviz_lsp.graph.backends.registry import KernelMatch
from etviz_lsp.graph.core import model
from etviz_lsp.graph.readers.etdump import ETDump, ProfileEvent

DELEGATE_CALL = "DELEGATE_CALL"
OPERATOR_CALL = "OPERATOR_CALL"
METRICS: dict[str, Callable[[list[float]], float]] = {
    "avg": statistics.fmean, "p50": statistics.median, "min": min, "max": max,
}  # fmt: skip
# Node data colours: light for the fast nodes, dark red for the slowest.
GRADIENT = [{"stop": 0, "bgColor": "#fff5eb"}, {"stop": 0.5, "bgColor": "#fd8d3c"},
            {"stop": 1, "bgColor": "#7f0000"}]  # fmt: skip
MAX_ALIGN_CELLS = 1_000_000  # events x nodes of one delegate call; past it: greedy in order

def align(events: list[str], targets: list[str], matches: KernelMatch) -> list[int | None]:
    """For each event, the index of its node in ``targets`` (in order), or None.

    ``matches`` is the backend's (``registry.Backend.kernel_match``): whether a kernel
    event runs a node of that label."""
    n, m = len(events), len(targets)
    if n * m > MAX_ALIGN_CELLS:
        return _greedy(events, targets, matches)
    # Longest common subsequence under ``matches``: runtime-inserted kernels and fused
    # (kernel-less) nodes are the gaps.
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if matches(events[i], targets[j]):
                best[i][j] = best[i + 1][j + 1] + 1
            else:
                best[i][j] = max(best[i + 1][j], best[i][j + 1])
    out: list[int | None] = []
    i = j = 0
    while i < n:
        if j < m and matches(events[i], targets[j]) and best[i][j] == best[i + 1][j + 1] + 1:
            out.append(j)
            i, j = i + 1, j + 1
        elif j < m and best[i][j + 1] >= best[i + 1][j]:
            j += 1
        else:
            out.append(None)
            i += 1
    return out


def _greedy(events: list[str], targets: list[str], matches: KernelMatch) -> list[int | None]:
    out: list[int | None] = []
    j = 0
    for event in events:
        k = next((k for k in range(j, len(targets)) if matches(event, targets[k])), None)
        out.append(k)
        if k is not None:
            j = k + 1
    return out


@dataclass(slots=True)
class _Samples:
    """Per (graph, node): one value per run; the graph's other findings."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    wrappers: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    inserted: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # call -> kernels
    method: list[float] = field(default_factory=list)
    attributed: int = 0
    method_level: int = 0


@dataclass(slots=True)
class Overlay:
    """What :func:`attribute` found: node data per metric, and the counts it reports."""

    node_data: dict[str, dict[str, model.Json]]  # metric -> graph id -> results + gradient
    runs: int
    attributed: int
    unattributed: int
    method_level: int


class _Method:
    """One top-level graph (a method) with its instruction nodes and delegate graphs."""

    def __init__(self, graph: model.Graph, by_id: dict[str, model.Graph]) -> None:
        self.graph = graph
        self.ids = {node["id"] for node in graph.nodes}
        self.nested: dict[str, model.Graph] = {}
        for node in graph.nodes:
            for sub in node.get("subgraphIds", []):
                if sub in by_id:
                    self.nested[node["id"]] = by_id[sub]
        self.xnodes = {  # the ops inside each delegate (XNN nodes, Vulkan ops ...)
            call: [n for n in sub.nodes if model.node_attr(n, "kind") == "op"]
            for call, sub in self.nested.items()
        }
        self.backends = {
            node["id"]: model.node_attr(node, "backend") or "" for node in graph.nodes
        }
        # Every run logs the same kernels: each call's sequence is aligned once.
        self.alignments: dict[tuple[str, tuple[str, ...]], list[int | None]] = {}

    def align(self, call: str, names: tuple[str, ...]) -> list[int | None]:
        """Each kernel's op node; all None when the backend says nothing of its kernels."""
        key = (call, names)
        if key not in self.alignments:
            matches = registry.get(self.backends.get(call, "")).kernel_match
            targets = [n["label"] for n in self.xnodes.get(call, [])]
            found: list[int | None] = [None] * len(names)
            if matches is not None:
                found = align(list(names), targets, matches)
            self.alignments[key] = found
        return self.alignments[key]

    def fits(self, events: list[ProfileEvent]) -> bool:
        return all(
            f"instruction_{e.instruction}" in self.ids
            and (e.name != DELEGATE_CALL or f"instruction_{e.instruction}" in self.nested
                 or _is_call(self.graph, e.instruction))
            for e in events if e.instruction >= 0
        )


def _is_call(graph: model.Graph, instruction: int) -> bool:
    node = next((n for n in graph.nodes if n["id"] == f"instruction_{instruction}"), None)
    return node is not None and model.node_attr(node, "backend") is not None


def attribute(collection: model.GraphCollection, dump: ETDump) -> Overlay:
    """Attribute ``dump``'s events to ``collection``'s nodes; graphs get the attributes."""
    by_id = {graph.id: graph for graph in collection.graphs}
    nested_ids = {
        sub for graph in collection.graphs for node in graph.nodes
        for sub in node.get("subgraphIds", [])
    }  # fmt: skip
    methods = [_Method(g, by_id) for g in collection.graphs if g.id not in nested_ids]
    samples = {method.graph.id: _Samples() for method in methods}
    runs = dump.executions()
    unplaced = 0
    for run in runs:
        method = next((m for m in methods if m.fits(run.events)), None)
        if method is None:  # not this program's run: every event counted as not attributed
            unplaced += len(run.events)
            continue
        _attribute_run(method, run.events, samples[method.graph.id])
    node_data: dict[str, dict[str, model.Json]] = {name: {} for name in METRICS}
    for method in methods:
        _annotate(method, samples[method.graph.id], by_id, node_data, dump, len(runs))
        # Counted on every method's graph: nothing says which method an unplaced run was.
        method.graph.group_attrs[""]["events not attributed"] = (
            f"{unplaced} (runs whose instructions are not this program's)" if unplaced else "0"
        )
    return Overlay(
        node_data={k: v for k, v in node_data.items() if v},
        runs=len(runs),
        attributed=sum(s.attributed for s in samples.values()),
        unattributed=unplaced,
        method_level=sum(s.method_level for s in samples.values()),
    )


def _attribute_run(method: _Method, events: list[ProfileEvent], samples: _Samples) -> None:
    run_values: dict[tuple[str, str], float] = defaultdict(float)
    run_wrappers: dict[tuple[str, str], float] = defaultdict(float)
    delegated: dict[int, list[ProfileEvent]] = defaultdict(list)
    top = method.graph.id
    for event in events:
        if event.instruction < 0:
            samples.method_level += 1
            if event.name == "Method::execute":
                samples.method.append(event.ms)
            continue
        node = f"instruction_{event.instruction}"
        if event.delegated:
            delegated[event.instruction].append(event)
        elif event.name == OPERATOR_CALL:
            run_wrappers[(top, node)] += event.ms
            samples.attributed += 1
        else:
            run_values[(top, node)] += event.ms
            samples.attributed += 1
    for instruction, kernels in delegated.items():
        _attribute_kernels(method, f"instruction_{instruction}", kernels, run_values, samples)
    for key, value in run_values.items():
        samples.values[key].append(value)
    for key, value in run_wrappers.items():
        samples.wrappers[key].append(value)


def _attribute_kernels(
    method: _Method, call: str, kernels: list[ProfileEvent],
    run_values: dict[tuple[str, str], float], samples: _Samples,
) -> None:
    xnodes = method.xnodes.get(call, [])
    places = method.align(call, tuple(k.name for k in kernels))
    inserted = samples.inserted.setdefault(call, defaultdict(list))
    run_inserted: dict[str, float] = defaultdict(float)
    for kernel, place in zip(kernels, places, strict=True):
        samples.attributed += 1
        if place is None:
            run_inserted[kernel.name] += kernel.ms
        else:
            run_values[(method.nested[call].id, xnodes[place]["id"])] += kernel.ms
    for name, value in run_inserted.items():
        inserted[name].append(value)


def _stat(values: list[float], metric: str) -> float:
    return METRICS[metric](values) if values else 0.0


def _ms(value: float) -> str:
    return f"{value:.4f}"


def _annotate(
    method: _Method, samples: _Samples, by_id: dict[str, model.Graph],
    node_data: dict[str, dict[str, model.Json]], dump: ETDump, runs: int,
) -> None:
    per_graph: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for (graph_id, node_id), values in samples.values.items():
        per_graph[graph_id][node_id] = values
    for graph_id, nodes in per_graph.items():
        graph = by_id[graph_id]
        for metric in METRICS:
            results = {node: {"value": round(_stat(v, metric), 6)} for node, v in nodes.items()}
            node_data[metric][graph_id] = {"results": results, "gradient": GRADIENT}
        _node_attrs(graph, nodes, samples)
        layer_sums(graph, nodes)
    for call in {*method.nested, *samples.inserted}:
        sub = method.nested.get(call)
        kernels = per_graph.get(sub.id, {}) if sub is not None else {}
        _delegate_attrs(method, call, sub, samples, kernels)
    summary = method.graph.group_attrs.setdefault("", {})
    summary["etdump"] = f"{dump.source} ({runs} runs)"
    if samples.method:
        summary["Method::execute avg (ms)"] = _ms(statistics.fmean(samples.method))
    summary["events attributed"] = str(samples.attributed)
    summary["method-level events"] = str(samples.method_level)


def _node_attrs(graph: model.Graph, nodes: dict[str, list[float]], samples: _Samples) -> None:
    for node in graph.nodes:
        values = nodes.get(node["id"])
        if values is None:
            continue
        node["attrs"].extend(
            {"key": f"latency {metric} (ms)", "value": _ms(_stat(values, metric))}
            for metric in METRICS
        )
        wrapper = samples.wrappers.get((graph.id, node["id"]))
        if wrapper:
            node["attrs"].append(
                {"key": "OPERATOR_CALL avg (ms)", "value": _ms(statistics.fmean(wrapper))}
            )


def layer_sums(graph: model.Graph, nodes: dict[str, list[float]]) -> None:
    """Each layer (and the graph, ``""``) gets the sum of its nodes' averages."""
    sums: dict[str, float] = defaultdict(float)
    for node in graph.nodes:
        values = nodes.get(node["id"])
        if values is None:
            continue
        parts = [p for p in re.split(r"(?<!\\)/", node["namespace"]) if p]
        for depth in range(len(parts) + 1):
            sums["/".join(parts[:depth])] += statistics.fmean(values)
    for namespace, total in sums.items():
        graph.group_attrs.setdefault(namespace, {})["latency sum avg (ms)"] = _ms(total)


def _delegate_attrs(
    method: _Method, call: str, sub: model.Graph | None, samples: _Samples,
    kernels: dict[str, list[float]],
) -> None:
    """On the delegate's node and graph: its call, its kernels, what they leave over."""
    call_values = samples.values.get((method.graph.id, call), [])
    if not call_values:
        return
    inserted = samples.inserted.get(call, {})
    kernel_sum = sum(statistics.fmean(v) for v in kernels.values())
    inserted_sum = sum(statistics.fmean(v) for v in inserted.values())
    call_avg = statistics.fmean(call_values)
    matched = registry.get(method.backends.get(call, "")).kernel_match is not None
    left = "runtime-inserted kernels" if matched else "kernels not matched to ops"
    facts = {
        "delegate call avg (ms)": _ms(call_avg),
        "kernels on XNN nodes avg (ms)": _ms(kernel_sum),
        f"{left} avg (ms)": _ms(inserted_sum),
        left: ", ".join(
            f"{name} {_ms(statistics.fmean(v))}" for name, v in inserted.items()
        ) or "(none)",
        "call overhead avg (ms)": _ms(call_avg - kernel_sum - inserted_sum),
    }
    node = next(n for n in method.graph.nodes if n["id"] == call)
    node["attrs"].extend(model.kv(facts))
    if sub is not None:
        sub.group_attrs.setdefault("", {}).update(facts)
