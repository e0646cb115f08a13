"""Structural checks of a graph collection as written: what Model Explorer relies on.

Unique graph ids, unique node ids in each graph, every edge from a node of that graph,
every ``subgraphIds`` entry a graph of the collection, namespaces that Model Explorer
splits into the layers meant (no empty segment, no ``;``). The builder makes these true
by construction; the test suite runs this check on every graph JSON it writes
(``writer`` does when ``CHECK_ENV`` is set), so a violation fails the suite, not a
user's view. One pass over nodes and edges: cheap next to building the graph.
"""

from __future__ import annotations

from typing import Any

# Set (to a report file's path) in the test suite: the writer then checks every graph
# collection it writes, appends what it finds to that file and refuses the write.
CHECK_ENV = "ETVIZ_CHECK_GRAPHS"


def problems(data: Any) -> list[str]:
    """What is wrong with a graph collection (``{"label", "graphs"}`` or a list of
    graphs); empty when nothing is. Data of another shape is not a collection: []."""
    graphs = data.get("graphs") if isinstance(data, dict) else data
    if not isinstance(graphs, list):
        return []
    found: list[str] = []
    graph_ids = [g.get("id") for g in graphs if isinstance(g, dict)]
    found.extend(f"graph id {i!r} repeated" for i in _repeated(graph_ids))
    known_graphs = set(graph_ids)
    for graph in graphs:
        if isinstance(graph, dict):
            found.extend(_graph_problems(graph, known_graphs))
    return found


def _graph_problems(graph: dict[str, Any], known_graphs: set[Any]) -> list[str]:
    where = f"graph {graph.get('id')!r}"
    nodes = [n for n in graph.get("nodes", []) if isinstance(n, dict)]
    node_ids = [n.get("id") for n in nodes]
    found = [f"{where}: node id {i!r} repeated" for i in _repeated(node_ids)]
    known = set(node_ids)
    namespaces: set[str] = set()
    for node in nodes:
        for edge in node.get("incomingEdges", []):
            if edge.get("sourceNodeId") not in known:
                found.append(
                    f"{where}: edge into {node.get('id')!r} from missing node "
                    f"{edge.get('sourceNodeId')!r}"
                )
        for sub in node.get("subgraphIds", []):
            if sub not in known_graphs:
                found.append(f"{where}: node {node.get('id')!r} links missing graph {sub!r}")
        namespaces.add(node.get("namespace", ""))
    namespaces.update(k for k in graph.get("groupNodeAttributes", {}) if k)
    found.extend(f"{where}: {p}" for ns in namespaces if (p := namespace_problem(ns)))
    return found


def namespace_problem(namespace: Any) -> str | None:
    """Why Model Explorer would not read ``namespace`` as the layers meant, or None."""
    if not isinstance(namespace, str):
        return f"namespace {namespace!r} is not text"
    if not namespace:
        return None
    if ";" in namespace:  # Model Explorer keeps only the text after the last ";"
        return f"namespace {namespace!r} holds ';'"
    pieces = namespace.replace("\\/", "\x00").split("/")
    if any(not piece for piece in pieces):
        return f"namespace {namespace!r} has an empty layer name"
    return None


def _repeated(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    repeated: list[Any] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated
