"""Which nodes of one stage became which nodes of the next (issue 18).

Computed where the programs live (the worker child, as each stage is captured), from the
live FX graphs, because a later step rewrites a program in place. Each op node gets its
*origins*: the nodes at the far end of its ``node.meta["from_node"]`` provenance (torch
records a chain of ``NodeSource`` per pass; its leaves are the nodes of the first program
the run traced). Two nodes of different stages correspond when their origins meet, which
makes the mapping many-to-many by construction: a decomposed op (``linear`` ->
``permute_copy`` + ``addmm``) shares its origin with each part, a fused op holds several
origins, and a delegated op inside ``lowered_module_N`` keeps the origin of the op it was.
A node without provenance falls back to a node of the previous stage with the same debug
handle, else the same name and target; else it is its own origin (new).

The result travels beside the graph JSON (``m.correspondence.json``, named, written and
listed in the manifest by ``graph_files``: :meth:`RunCorrespondence.to_json` is what goes
there) so every client can read it: the stages in order with each op's origins and
kind, and per pair of consecutive stages the links and what changed. The later graph of
each pair also carries the counts in its graph info and the changes on its nodes
(attr ``change``, a border colour), so Model Explorer shows them with no extra file.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from etviz_lsp.graph.core import model

VERSION = 1
DELEGATE_CALL = "executorch_call_delegate"

# What a node is, for the change report.
OP, QDQ, WRAPPER, MEMORY = "op", "qdq", "wrapper", "memory"

# Change kinds of a later stage's nodes, and the border that marks them (None: attr only;
# delegated ops already wear their partition's fill).
CHANGE_BORDERS: dict[str, str | None] = {
    "new q/dq": "#c2185b",
    "decomposed": "#1565c0",
    "fused": "#6a1b9a",
    "on CPU": "#d84315",
    "delegate wrapper": "#757575",
    "added": "#2e7d32",
    "delegated": None,
}


@dataclass(slots=True)
class StageIndex:
    """One stage's op nodes (graph node ids): origins, kind, delegated or not."""

    graph_id: str
    stage: str
    origins: dict[str, frozenset[str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    delegated: set[str] = field(default_factory=set)
    wrappers_hidden: int = 0  # delegate calls the graph replaces by their ops
    handles: dict[int, frozenset[str]] = field(default_factory=dict)
    names: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @property
    def has_delegates(self) -> bool:
        return bool(self.delegated) or self.wrappers_hidden > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "graphId": self.graph_id,
            "stage": self.stage,
            "nodes": {
                node: {
                    "origins": sorted(self.origins[node]),
                    "kind": self.kinds[node],
                    "delegated": node in self.delegated,
                }
                for node in self.origins
            },
        }


class Origins:
    """Names the origin nodes of one run: ``<node name>@<n>``, n counting the FX graphs met
    (``id()`` of a graph is what ``NodeSource`` records; it is not stable across runs)."""

    def __init__(self) -> None:
        self._graphs: dict[int, int] = {}

    def key(self, name: str, graph_id: int) -> str:
        number = self._graphs.setdefault(graph_id, len(self._graphs))
        return f"{name}@{number}"

    def of(self, node: Any) -> frozenset[str]:
        """The leaves of the node's provenance; empty when it records none."""
        found: set[str] = set()
        stack = list(node.meta.get("from_node") or [])
        while stack:
            source = stack.pop()
            parents = getattr(source, "from_node", None) or []
            if parents:
                stack.extend(parents)
            elif getattr(source, "name", None) is not None:
                found.add(self.key(str(source.name), int(getattr(source, "graph_id", 0))))
        return frozenset(found)


def index_program(
    program: Any,
    graph: model.Graph,
    stage: str,
    origins: Origins,
    previous: StageIndex | None,
) -> StageIndex:
    """The op nodes of ``program`` that ``graph`` shows, with their origins."""
    shown = {node["id"] for node in graph.nodes}
    index = StageIndex(graph.id, stage)
    for node_id, node, delegated in _op_nodes(program.graph_module):
        if _is_delegate_call(node):
            index.wrappers_hidden += 1
            continue
        found = origins.of(node) or _fallback(node, origins, previous)
        handle = node.meta.get("debug_handle")
        if isinstance(handle, int):
            index.handles.setdefault(handle, found)
        index.names.setdefault((node.name, str(node.target)), found)
        if node_id not in shown:
            continue
        index.origins[node_id] = found
        index.kinds[node_id] = _kind(node)
        if delegated:
            index.delegated.add(node_id)
    return index


def _op_nodes(graph_module: Any) -> Iterator[tuple[str, Any, bool]]:
    """(graph node id, FX node, inside a delegate) for every call, delegates expanded
    as ``partitions.expand_delegates`` names them: ``<get_attr name>/<inner name>``."""
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        yield node.name, node, False
        if not _is_delegate_call(node) or not node.args:
            continue
        holder = node.args[0]
        lowered = getattr(graph_module, str(getattr(holder, "target", "")), None)
        inner = getattr(lowered, "original_module", None)
        if inner is None:
            continue
        for op in inner.graph_module.graph.nodes:
            if op.op == "call_function":
                yield f"{holder.name}/{op.name}", op, True


def _is_delegate_call(node: Any) -> bool:
    return DELEGATE_CALL in str(node.target)


def _kind(node: Any) -> str:
    target = str(node.target)
    if "quantize_per_" in target:
        return QDQ
    if node.target is operator.getitem and node.args and _is_delegate_call(node.args[0]):
        return WRAPPER
    if getattr(node.target, "__module__", "") == "executorch.exir.memory":
        return MEMORY  # the planner's buffers (alloc) of the executorch stage
    return OP


def _fallback(node: Any, origins: Origins, previous: StageIndex | None) -> frozenset[str]:
    if previous is not None:
        handle = node.meta.get("debug_handle")
        if isinstance(handle, int) and handle in previous.handles:
            return previous.handles[handle]
        named = previous.names.get((node.name, str(node.target)))
        if named is not None:
            return named
    return frozenset({origins.key(node.name, id(node.graph))})


@dataclass(slots=True)
class Pair:
    """What changed from stage ``before`` to stage ``after``."""

    before: str
    after: str
    links: dict[str, list[str]]  # node of `after` -> its counterparts in `before`
    changes: dict[str, list[str]]  # change kind -> nodes of `after`
    removed: list[str]  # ops of `before` with no counterpart in `after`
    hidden_wrappers: int

    def counts(self) -> dict[str, int]:
        counts = {kind: len(nodes) for kind, nodes in self.changes.items()}
        counts["added"] = counts.get("added", 0) + self.hidden_wrappers
        counts["removed"] = len(self.removed)
        return counts

    def to_json(self) -> dict[str, Any]:
        forward: dict[str, list[str]] = {}
        for node, sources in self.links.items():
            for source in sources:
                forward.setdefault(source, []).append(node)
        return {
            "from": self.before,
            "to": self.after,
            "forward": forward,
            "backward": self.links,
            "changes": self.changes,
            "removed": self.removed,
            "counts": self.counts(),
        }


def compare(before: StageIndex, after: StageIndex) -> Pair:
    by_origin: dict[str, list[str]] = {}
    for node, found in before.origins.items():
        if before.kinds[node] != WRAPPER:
            for origin in found:
                by_origin.setdefault(origin, []).append(node)
    order = {node: i for i, node in enumerate(before.origins)}
    links: dict[str, list[str]] = {}
    for node, found in after.origins.items():
        if after.kinds[node] == WRAPPER:
            continue
        matches = {source for origin in found for source in by_origin.get(origin, ())}
        if matches:
            links[node] = sorted(matches, key=order.__getitem__)
    changes = _changes(before, after, links)
    reached = {source for sources in links.values() for source in sources}
    removed = [
        node for node in before.origins
        if node not in reached and before.kinds[node] != WRAPPER
    ]
    return Pair(before.graph_id, after.graph_id, links, changes, removed, after.wrappers_hidden)


def _changes(
    before: StageIndex, after: StageIndex, links: dict[str, list[str]]
) -> dict[str, list[str]]:
    changes: dict[str, list[str]] = {kind: [] for kind in CHANGE_BORDERS}
    # One op of `before` that became several ops (q/dq aside) of `after`: a decomposition.
    parts: dict[str, list[str]] = {}
    for node, sources in links.items():
        if after.kinds[node] == OP:
            for source in sources:
                if before.kinds[source] == OP:
                    parts.setdefault(source, []).append(node)
    for node, kind in after.kinds.items():
        sources = links.get(node, [])
        ops_before = [s for s in sources if before.kinds[s] == OP]
        if kind == WRAPPER:
            changes["delegate wrapper"].append(node)
            changes["added"].append(node)
        elif kind == QDQ and not any(before.kinds[s] == QDQ for s in sources):
            changes["new q/dq"].append(node)
            changes["added"].append(node)
        elif not sources:
            changes["added"].append(node)
        if kind == OP and any(len(parts.get(s, ())) > 1 for s in ops_before):
            changes["decomposed"].append(node)
        if kind == OP and len(ops_before) > 1:
            changes["fused"].append(node)
        if node in after.delegated and not any(s in before.delegated for s in sources):
            changes["delegated"].append(node)
        if after.has_delegates and kind == OP and node not in after.delegated:
            changes["on CPU"].append(node)
    return changes


def annotate(graph: model.Graph, pair: Pair) -> None:
    """The changes on the later graph: counts in its graph info, ``change`` on its nodes."""
    counts = pair.counts()
    info = graph.group_attrs.setdefault("", {})
    info["compared with"] = pair.before
    for kind in ("added", "removed", "delegated"):
        info[f"ops {kind}"] = str(counts[kind])
    for kind in ("new q/dq", "decomposed", "fused", "on CPU"):
        info[kind] = str(counts[kind])
    per_node: dict[str, list[str]] = {}
    for kind, node_ids in pair.changes.items():
        for node_id in node_ids:
            per_node.setdefault(node_id, []).append(kind)
    for shown in graph.nodes:
        kinds = per_node.get(shown["id"])
        if not kinds:
            continue
        shown["attrs"].append({"key": "change", "value": ", ".join(kinds)})
        border = next((CHANGE_BORDERS[k] for k in kinds if CHANGE_BORDERS[k]), None)
        if border is not None:
            shown["style"] = {**shown.get("style", {}), "borderColor": border}


@dataclass(slots=True)
class RunCorrespondence:
    """The stages of one run in capture order, and the pairs of consecutive ones."""

    origins: Origins = field(default_factory=Origins)
    stages: list[StageIndex] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)

    def add_stage(self, program: Any, graph: model.Graph, stage: str) -> None:
        """Index a stage just captured; compare it with the one before and mark its graph.

        A stage that shares no origin with the previous one (another model of the same
        script) starts a new chain: no pair.
        """
        previous = self.stages[-1] if self.stages else None
        index = index_program(program, graph, stage, self.origins, previous)
        self.stages.append(index)
        if previous is None or not _share_origins(previous, index):
            return
        pair = compare(previous, index)
        self.pairs.append(pair)
        annotate(graph, pair)

    def to_json(self, label: str = "") -> dict[str, Any]:
        return {
            "version": VERSION,
            "label": label,  # the graph collection's, which Model Explorer's view state names
            "stages": [stage.to_json() for stage in self.stages],
            "pairs": [pair.to_json() for pair in self.pairs],
        }


def _share_origins(before: StageIndex, after: StageIndex) -> bool:
    seen = {origin for found in before.origins.values() for origin in found}
    return any(origin in seen for found in after.origins.values() for origin in found)
