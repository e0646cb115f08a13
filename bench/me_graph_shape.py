"""What Model Explorer has to lay out first for a graph: the items at its top level and the
edges between them.

Model Explorer 0.1.34 lays out only the top level when a graph opens (dagre, in its web
worker; a layer's inside waits until it is expanded). dagre puts every node on a rank and a
dummy node on each rank a long edge crosses, so an edge from an input every block reads to
the last of 300 blocks side by side costs ~300 nodes: ``span`` counts them. The renderer
then draws each edge as ~50 instanced segments per rank it crosses. Expanding a layer lays
out its children the same way: ``inner_span`` is the largest such cost inside a layer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class GraphShape:
    graph_id: str
    nodes: int
    top_level: int  # nodes with namespace "" plus distinct first namespace segments
    layers: int  # distinct namespaces, every level
    edges: int
    attrs: int  # node attributes, input and output metadata entries
    top_edges: int  # distinct (item, item) pairs the top level's edges join
    span: int  # ranks those edges cross, summed (longest-path ranks): dagre's dummy nodes
    inner_span: int  # the same inside the layer where it is largest (paid when expanded)
    inner_layer: str


def split_namespace(namespace: str) -> list[str]:
    """Model Explorer's segments: ``/`` separates, ``\\/`` is a slash inside a name."""
    return [piece.replace("\x00", "\\/") for piece in namespace.replace("\\/", "\x00").split("/")]


def shape_of(graph: dict[str, Any]) -> GraphShape:
    nodes = graph.get("nodes", [])
    path_of = {node["id"]: _pieces(node) for node in nodes}
    namespaces = {"/".join(p[: i + 1]) for p in path_of.values() for i in range(len(p))}
    edges = attrs = 0
    for node in nodes:
        edges += len(node.get("incomingEdges", []))
        attrs += len(node.get("attrs", []))
        for side in ("inputsMetadata", "outputsMetadata"):
            attrs += sum(len(meta.get("attrs", [])) for meta in node.get(side, []))
    by_layer = layer_edges(nodes, path_of)
    spans = {layer: rank_span(pairs) for layer, pairs in by_layer.items()}
    inner = max((layer for layer in spans if layer), key=lambda layer: spans[layer], default=None)
    return GraphShape(
        graph_id=str(graph.get("id", "")),
        nodes=len(nodes),
        top_level=len({_item(path, 0, node_id) for node_id, path in path_of.items()}),
        layers=len(namespaces),
        edges=edges,
        attrs=attrs,
        top_edges=len(by_layer.get("", ())),
        span=spans.get("", 0),
        inner_span=0 if inner is None else spans[inner],
        inner_layer=inner or "",
    )


def _pieces(node: dict[str, Any]) -> tuple[str, ...]:
    namespace = node.get("namespace", "")
    return tuple(split_namespace(namespace)) if namespace else ()


def _item(path: tuple[str, ...], depth: int, node_id: str) -> str:
    """What a node is drawn as inside the layer ``path[:depth]``: a child layer, or itself."""
    return f"layer {path[depth]}" if len(path) > depth else f"node {node_id}"


def layer_edges(
    nodes: list[dict[str, Any]], path_of: dict[str, tuple[str, ...]]
) -> dict[str, set[tuple[str, str]]]:
    """Each layer's edges between its items (``""``: the top level): an edge is drawn in the
    deepest layer holding both its ends, between the items there that hold them."""
    layers: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for node in nodes:
        target = path_of[node["id"]]
        for edge in node.get("incomingEdges", []):
            source_id = edge.get("sourceNodeId")
            source = path_of.get(source_id)
            if source is None or source_id == node["id"]:
                continue
            depth = 0
            while depth < min(len(source), len(target)) and source[depth] == target[depth]:
                depth += 1
            pair = (_item(source, depth, source_id), _item(target, depth, node["id"]))
            if pair[0] != pair[1]:
                layers["/".join(target[:depth])].add(pair)
    return layers


def rank_span(pairs: set[tuple[str, str]]) -> int:
    """Ranks by longest path once the edges that close a cycle are dropped (dagre reverses
    them), then the ranks each edge crosses, summed."""
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(pairs):
        successors[source].append(target)
    order, closing = _order(successors)
    rank: dict[str, int] = dict.fromkeys(order, 0)
    for item in order:
        for child in successors[item]:
            if (item, child) not in closing:
                rank[child] = max(rank[child], rank[item] + 1)
    return sum(rank[t] - rank[s] for s, t in pairs if (s, t) not in closing)


def _order(successors: dict[str, list[str]]) -> tuple[list[str], set[tuple[str, str]]]:
    """Depth-first: a topological order of the items and the edges that close cycles."""
    state: dict[str, bool] = {}  # False while on the stack, True when done
    order: list[str] = []
    closing: set[tuple[str, str]] = set()
    items = list(successors) + [t for targets in list(successors.values()) for t in targets]
    for root in items:
        if root in state:
            continue
        state[root] = False
        stack = [(root, iter(successors[root]))]
        while stack:
            item, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[item] = True
                order.append(item)
                stack.pop()
            elif child not in state:
                state[child] = False
                stack.append((child, iter(successors[child])))
            elif state[child] is False:
                closing.add((item, child))
    order.reverse()
    return order, closing
