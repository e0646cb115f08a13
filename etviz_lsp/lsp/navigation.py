"""Navigation between code and graph: what ``nodeAt``, ``sourceOf`` and ``showInGraph``
answer, and the "Show in Graph" lenses and hovers.

Holds the source map of every graph shown (the last good one per visualized file, most
recent first) and, per file, the graph the user last navigated in (a node selected in the
webview, a "Show in Graph"): a line that made ops in several stages (exported, quantized,
lowered) resolves to that graph first, else to the first graph of the collection that
has ops on the line. The ``Navigator`` knows nothing of LSP transport; the commands'
argument checks and the ``etviz/selectNodes`` notification are the functions below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygls import uris
from pygls.lsp.server import LanguageServer

from etviz_lsp import explorer
from etviz_lsp.lsp.commands import SHOW_IN_GRAPH, SOURCE_OF, RequestFailed
from etviz_lsp.lsp.paths import path_of
from etviz_lsp.lsp.source_map import NodeRef, SourceMap

SELECT_NODES = "etviz/selectNodes"
NO_SOURCE = "no recorded source"
UNKNOWN_NODE = "unknown node"
_HOVER_NAMES = 8

# (graph JSON, uiState) -> a Model Explorer URL, or None while no server is known
UrlMaker = Callable[[Path, dict[str, Any]], "str | None"]


@dataclass(frozen=True, slots=True)
class Mapped:
    source: Path  # the visualized file (script or .pt2)
    graph_file: Path  # its graph JSON
    source_map: SourceMap


@dataclass(frozen=True, slots=True)
class Hit:
    """Nodes one line made, in the graph chosen for it."""

    mapped: Mapped
    graph_id: str
    nodes: list[NodeRef]
    graphs: dict[str, list[NodeRef]]  # every graph with nodes on the line


class Navigator:
    def __init__(self, url_maker: UrlMaker | None = None) -> None:
        self._url_maker = url_maker
        self._mapped: dict[Path, Mapped] = {}  # insertion order = least recent first
        self._current_graph: dict[Path, str] = {}

    def graph_shown(self, mapped: Mapped) -> None:
        """A run of ``mapped.source`` succeeded: its map replaces the previous one."""
        self._mapped.pop(mapped.source, None)
        self._mapped[mapped.source] = mapped
        current = self._current_graph.get(mapped.source)
        if current is not None and not mapped.source_map.has_graph(current):
            del self._current_graph[mapped.source]

    def _recent_first(self, source: Path | None = None) -> Iterator[Mapped]:
        if source is not None:
            found = self._mapped.get(source)
            if found is not None:
                yield found
            return
        yield from reversed(list(self._mapped.values()))

    # -- code to graph ----------------------------------------------------------------

    def hit(self, path: Path, line: int, graph_id: str | None = None) -> Hit | None:
        """The nodes ``path`` made at 0-based ``line``: in the most recently shown graph
        collection that has any, in ``graph_id`` when it has them, else in the graph the
        user last navigated in, else in the first graph with nodes there."""
        for mapped in self._recent_first():
            graphs = mapped.source_map.nodes_at(path, line)
            if graphs:
                chosen = self._choose(mapped.source, graphs, graph_id)
                return Hit(mapped, chosen, graphs[chosen], graphs)
        return None

    def _choose(self, source: Path, graphs: dict[str, list[NodeRef]], wanted: str | None) -> str:
        for candidate in (wanted, self._current_graph.get(source)):
            if candidate is not None and candidate in graphs:
                return candidate
        return next(iter(graphs))

    def node_at(self, path: Path, line: int, graph_id: str | None = None) -> dict[str, Any]:
        """``etviz.server.nodeAt``'s answer (empty ``nodeIds`` when the line made none)."""
        return self._answer(self.hit(path, line, graph_id))

    def show_in_graph(self, path: Path, line: int, graph_id: str | None = None) -> dict[str, Any]:
        """Like ``node_at``; the chosen graph becomes the one navigated in."""
        hit = self.hit(path, line, graph_id)
        if hit is not None:
            self._current_graph[hit.mapped.source] = hit.graph_id
        return self._answer(hit)

    def _answer(self, hit: Hit | None) -> dict[str, Any]:
        if hit is None:
            return {"source": None, "graphId": None, "nodeIds": [], "namespaces": [],
                    "graphs": []}
        payload = _selection(hit)
        url = self._reveal_url(hit)
        if url is not None:
            payload["url"] = url
        return payload

    def _reveal_url(self, hit: Hit) -> str | None:
        """The graph with the first node selected and its layers expanded (for a client
        that cannot post messages into the page)."""
        if self._url_maker is None:
            return None
        first = hit.nodes[0]
        state = reveal_state(hit.mapped.source_map.label, hit.graph_id, first)
        return self._url_maker(hit.mapped.graph_file, state)

    # -- graph to code ----------------------------------------------------------------

    def source_of(
        self, graph_id: str | None, node_id: str, source: Path | None = None
    ) -> dict[str, Any]:
        """``etviz.server.sourceOf``'s answer: ``{uri, line, graphId, nodeId}`` or
        ``{uri: null, reason}``. Without a graph id (the page's selection message carries
        none) the node is looked up in the graph navigated in, then in collection order."""
        candidates = list(self._recent_first(source))
        if graph_id:  # the collection that holds the graph first (ids may repeat elsewhere)
            candidates.sort(key=lambda m: not m.source_map.has_graph(graph_id))
        for mapped in candidates:
            found = self._graph_holding(mapped, graph_id, node_id)
            if found is None:
                continue
            self._current_graph[mapped.source] = found
            answer: dict[str, Any] = {"graphId": found, "nodeId": node_id,
                                      "source": uris.from_fs_path(str(mapped.source))}
            origin = mapped.source_map.origin(found, node_id)
            if origin is None:
                return answer | {"uri": None, "reason": NO_SOURCE}
            if origin.path is None:
                return answer | {"uri": None, "recorded": origin.recorded,
                                 "reason": f"source file not found: {origin.recorded}"}
            return answer | {"uri": uris.from_fs_path(str(origin.path)), "line": origin.line}
        return {"uri": None, "reason": UNKNOWN_NODE, "graphId": graph_id, "nodeId": node_id}

    def _graph_holding(self, mapped: Mapped, graph_id: str | None, node_id: str) -> str | None:
        source_map = mapped.source_map
        if graph_id and source_map.has_node(graph_id, node_id):
            return graph_id
        if graph_id and source_map.has_graph(graph_id):
            return None  # the graph is this collection's, the node is not in it
        holding = source_map.graphs_with(node_id)
        current = self._current_graph.get(mapped.source)
        if current in holding:
            return current
        return holding[0] if holding else None

    # -- lenses and hovers ------------------------------------------------------------

    def line_counts(self, path: Path) -> dict[int, tuple[str, int]]:
        """0-based line -> (graph id, node count) for every mapped line of ``path``, each
        counted in the graph ``showInGraph`` would pick."""
        counts: dict[int, tuple[str, int]] = {}
        for mapped in self._recent_first():
            for line, graphs in mapped.source_map.lines_of(path).items():
                if line not in counts:
                    chosen = self._choose(mapped.source, graphs, None)
                    counts[line] = (chosen, len(graphs[chosen]))
        return dict(sorted(counts.items()))

    def hover_text(self, path: Path, line: int) -> str | None:
        hit = self.hit(path, line)
        if hit is None:
            return None
        rows = [f"**etviz**: {_ops(len(hit.nodes))} in `{hit.graph_id}`"]
        for graph_id, nodes in hit.graphs.items():
            names = ", ".join(f"`{n.node_id}`" for n in nodes[:_HOVER_NAMES])
            more = f" and {len(nodes) - _HOVER_NAMES} more" if len(nodes) > _HOVER_NAMES else ""
            rows.append(f"- `{graph_id}`: {names}{more}")
        return "\n".join(rows)


def position_args(command: str, args: tuple[Any, ...]) -> tuple[Path, int, str | None]:
    """``[uri, line, graphId?]`` -> (resolved path, 0-based line, graph id)."""
    path = path_of(args[0]) if args else None
    line = args[1] if len(args) > 1 else None
    graph_id = args[2] if len(args) > 2 and isinstance(args[2], str) and args[2] else None
    if path is None or not isinstance(line, int) or isinstance(line, bool) or line < 0:
        raise RequestFailed(f"{command}: expected [fileUri, line (0-based), graphId?], got {args}")
    return path, line, graph_id


def source_of_args(args: tuple[Any, ...]) -> tuple[str | None, str, Path | None]:
    """``[graphId, nodeId, sourceUri?]`` -> (graph id or None, node id, visualized file)."""
    if len(args) < 2 or not isinstance(args[1], str) or not isinstance(args[0], str | None):
        raise RequestFailed(f"{SOURCE_OF}: expected [graphId, nodeId, sourceUri?], got {args}")
    return args[0] or None, args[1], path_of(args[2]) if len(args) > 2 else None


def show_in_graph(
    server: LanguageServer, navigator: Navigator, args: tuple[Any, ...]
) -> dict[str, Any]:
    """``etviz.server.showInGraph``: answer the line's nodes and have the client select
    them (``etviz/selectNodes``), so a lens click selects without a client round trip."""
    path, line, graph_id = position_args(SHOW_IN_GRAPH, args)
    answer = navigator.show_in_graph(path, line, graph_id)
    if answer["nodeIds"]:
        selection = ("source", "graphId", "nodeIds", "namespaces", "url")
        server.protocol.notify(SELECT_NODES, {k: answer[k] for k in selection if k in answer})
    return answer


def lens_title(count: int) -> str:
    return f"Show in Graph ({_ops(count)})"


def reveal_state(label: str, graph_id: str, node: NodeRef) -> dict[str, Any]:
    """Model Explorer's uiState selecting ``node`` with every layer above it expanded."""
    return explorer.ui_state(
        graph_id, collection_label=label, expanded_layers=layer_prefixes(node.namespace),
        selected_node_id=node.node_id,
    )


def layer_prefixes(namespace: str) -> list[str]:
    """``a/b/c`` -> ``[a, a/b, a/b/c]``: the layers to expand to see a node in ``c``."""
    pieces = [p for p in namespace.split("/") if p]
    return ["/".join(pieces[: i + 1]) for i in range(len(pieces))]


def _selection(hit: Hit) -> dict[str, Any]:
    return {
        "source": uris.from_fs_path(str(hit.mapped.source)),
        "graphId": hit.graph_id,
        "nodeIds": [n.node_id for n in hit.nodes],
        "namespaces": [n.namespace for n in hit.nodes],
        "graphs": [{"graphId": g, "count": len(nodes)} for g, nodes in hit.graphs.items()],
    }


def _ops(count: int) -> str:
    return f"{count} op" if count == 1 else f"{count} ops"


