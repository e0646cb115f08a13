"""Which graph nodes a line of code made, and which line made a node: the map behind
navigation between the editor and the graph.

Built from the manifest the worker wrote beside the graph JSON (``graph_files.Navigation``:
nothing else, no torch, no program, no graph JSON to parse again): each graph's id, each
node's id and, for a node with a ``source`` attr (``file:line``, the deepest frame in the
user's own files), that text and its namespace. Node and graph ids are opaque: nodes of
delegated partitions or QDQ clusters (``lowered_module_0/...``) map like any other.

Files are located once per distinct recorded path. A recorded path that does not exist
here (a ``.pt2`` saved on another machine or in another checkout) is matched against the
given roots by its longest trailing part (``/home/a/proj/models/net.py`` ->
``ROOT/models/net.py``), so a shared archive still navigates to the workspace copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from etviz_lsp.graph_files import Manifest, Navigation

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True, slots=True)
class NodeRef:
    graph_id: str
    node_id: str
    namespace: str  # Model Explorer's layer path (``stages/0 (Block)/body (Sequential)``)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a node came from: the recorded ``file:line`` and, when found here, the file."""

    recorded: str
    path: Path | None
    line: int  # 0-based, as LSP counts


class SourceMap:
    """line -> nodes (per file, per graph, in graph order) and node -> line, for one
    graph collection. Immutable once built; a re-run builds a new one."""

    def __init__(self, label: str = "") -> None:
        self.label = label  # the collection's label (Model Explorer's uiState wants it)
        self.graph_ids: list[str] = []
        # file -> 0-based line -> graph id -> nodes; dicts keep graph and node order
        self._lines: dict[Path, dict[int, dict[str, list[NodeRef]]]] = {}
        # graph id -> node id -> origin (None: the node has no recorded source)
        self._origins: dict[str, dict[str, Origin | None]] = {}

    # -- queries ----------------------------------------------------------------------

    @property
    def files(self) -> list[Path]:
        return list(self._lines)

    def nodes_at(self, path: Path, line: int) -> dict[str, list[NodeRef]]:
        """Graph id -> nodes made by ``path`` at 0-based ``line`` (collection order)."""
        return self._lines.get(path, {}).get(line, {})

    def lines_of(self, path: Path) -> dict[int, dict[str, list[NodeRef]]]:
        """0-based line -> graph id -> nodes, for every mapped line of ``path``."""
        return self._lines.get(path, {})

    def node_count(self, graph_id: str) -> int:
        return len(self._origins.get(graph_id, {}))

    def has_graph(self, graph_id: str) -> bool:
        return graph_id in self._origins

    def has_node(self, graph_id: str, node_id: str) -> bool:
        return node_id in self._origins.get(graph_id, {})

    def origin(self, graph_id: str, node_id: str) -> Origin | None:
        """The node's origin; None for an unknown node or one with no recorded source."""
        return self._origins.get(graph_id, {}).get(node_id)

    def graphs_with(self, node_id: str) -> list[str]:
        """Graphs holding a node with this id (ids repeat across stages of one script)."""
        return [g for g, nodes in self._origins.items() if node_id in nodes]

    # -- building ---------------------------------------------------------------------

    def _add_graph(self, graph_id: str) -> dict[str, Origin | None]:
        if graph_id not in self._origins:
            self.graph_ids.append(graph_id)
        return self._origins.setdefault(graph_id, {})


def from_manifest(manifest: Manifest, roots: Sequence[Path] = ()) -> SourceMap:
    """The map of the collection a manifest describes."""
    return from_navigation(manifest.label, manifest.navigation, roots)


def build(data: Any, roots: Sequence[Path] = ()) -> SourceMap:
    """The map of a graph collection as JSON data (``{label, graphs}`` or a list of graphs),
    for a collection no manifest describes; raises ValueError when ``data`` is no graphs."""
    label, graphs = _graphs_of(data)
    navigation = Navigation.of((str(g.get("id", "")), g.get("nodes") or ()) for g in graphs)
    return from_navigation(label, navigation, roots)


def from_navigation(label: str, navigation: Navigation, roots: Sequence[Path] = ()) -> SourceMap:
    """The map of one collection's navigation rows.

    Relative recorded paths are taken relative to ``roots`` (the first that has the file);
    absolute ones that do not exist are matched against ``roots`` by their trailing part.
    """
    source_map = SourceMap(label)
    locate = FileLocator(roots)
    # nodes of one line share their ``file:line`` text: parse and locate each text once
    parsed: dict[str, Origin | None] = {}
    for graph_id in navigation.graphs:
        origins = source_map._add_graph(graph_id)
        for node_id, recorded, namespace in navigation.nodes(graph_id):
            if recorded is None:
                origins[node_id] = None
                continue
            if recorded not in parsed:
                parsed[recorded] = _origin(recorded, locate)
            origin = origins[node_id] = parsed[recorded]
            if origin is None or origin.path is None:
                continue
            ref = NodeRef(graph_id, node_id, namespace)
            by_graph = source_map._lines.setdefault(origin.path, {}).setdefault(origin.line, {})
            by_graph.setdefault(graph_id, []).append(ref)
    return source_map


def _graphs_of(data: Any) -> tuple[str, list[dict[str, Any]]]:
    """The three shapes Model Explorer reads: a collection, a list of graphs, or a list of
    collections (``[{label, subgraphs}]``)."""
    if isinstance(data, dict):
        return str(data.get("label", "")), list(data.get("graphs") or ())
    if isinstance(data, list):
        graphs: list[dict[str, Any]] = []
        for item in data:
            if isinstance(item, dict) and "subgraphs" in item:
                graphs.extend(item.get("subgraphs") or ())
            elif isinstance(item, dict):
                graphs.append(item)
        return "", graphs
    raise ValueError("not a Model Explorer graph JSON")


def _origin(recorded: str, locate: FileLocator) -> Origin | None:
    """``file:line`` (1-based, as tracebacks count) -> Origin; None when it does not parse."""
    file, sep, line_text = recorded.rpartition(":")
    if not sep or not file or not line_text.isdigit() or int(line_text) < 1:
        return None
    return Origin(recorded, locate(file), int(line_text) - 1)


class FileLocator:
    """Recorded path -> a file that exists here (resolved), or None. Each distinct
    recorded path is looked up once: nodes of one layer share a file."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self._roots = _unique(r.resolve() for r in roots)
        self._found: dict[str, Path | None] = {}

    def __call__(self, recorded: str) -> Path | None:
        if recorded not in self._found:
            self._found[recorded] = self._locate(recorded)
        return self._found[recorded]

    def _locate(self, recorded: str) -> Path | None:
        parts = _parts(recorded)
        if not parts:
            return None
        absolute = recorded.startswith("/") or bool(_WINDOWS_DRIVE.match(recorded))
        if recorded.startswith("/"):
            here = Path(recorded)
            if here.is_file():
                return here.resolve()
        elif not absolute:  # relative to the folder the script ran in (a root)
            for root in self._roots:
                if (root / recorded).is_file():
                    return (root / recorded).resolve()
        # a relative path is tried whole first; an absolute one from its second part on
        for start in range(1 if absolute else 0, len(parts)):
            tail = parts[start:]
            for root in self._roots:
                candidate = root.joinpath(*tail)
                if candidate.is_file():
                    return candidate.resolve()
        return None


def _parts(recorded: str) -> tuple[str, ...]:
    """Path pieces without the anchor, for POSIX and Windows spellings alike."""
    text = recorded.replace("\\", "/")
    if _WINDOWS_DRIVE.match(text):
        text = text[2:]
    return tuple(p for p in PurePosixPath(text).parts if p not in ("/", "", ".", ".."))


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: dict[Path, None] = {}
    for path in paths:
        seen.setdefault(path, None)
    return list(seen)
