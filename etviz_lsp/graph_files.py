"""Every file that belongs to a graph JSON: named here, and listed in a manifest beside it.

A graph JSON ``m.json`` (the CLI's output, or the editor's file in the graph cache) has
files beside it, each named by one rule here and nowhere else:

- ``m.partial.json``: a run's stages so far, a graph collection of its own (marked partial
  by the worker's caller when the run fails). Named here, never listed: it belongs to a
  run in progress or one that failed, not to the finished graph;
- ``m.correspondence.json``: stage to stage (``graph/overlays/correspondence.py``);
- ``m.<overlay>-<metric>.json``: Model Explorer node data (latency, numeric, memory);
- ``m.memory.svg``: the memory timeline (or where ``--memory-svg`` says);
- ``m.profile/``: the program a profile runs later (``worker/profile_run.py``);
- ``m.data/``: the cache's copies of the node data, beside a cached graph
  (``explorer/publish.py``); never listed: made later, when a page loads them;
- ``m.manifest.json``: what is listed, written last and atomically by :meth:`GraphFiles.finish`:
  the collection's label, each graph's id with its node, op and layer counts, what the
  language server's line <-> node map reads (:class:`Navigation`), the files with the run
  that made each, the node data in the order a page loads it.

The manifest is the truth about the graph's files: a node-data file it does not list is an
earlier run's and is not shown (its node ids may be gone); a file an earlier manifest listed
and this one does not is removed. The worker returns the manifest with its answer; the
language server, the explorer, ``once`` and the CLI read it, never the graph JSON itself.

One writer path per kind of file: graph collections (the graph JSON, the partial stages)
through ``graph.core.writer.write_json_atomic``, which the test suite has check their
structure; every side file here through :func:`write_side` (``atomic_file``, no check: node
data keyed by graph id, a correspondence or a manifest is no collection, and a node-data
file for a graph named ``graphs`` would even be mistaken for one).

Torch-free, the ground floor: the worker's child and its caller, ``once``, the language
server and the explorer all import it. msgspec is imported when used (the warm worker
imports this module before it checks the user's interpreter).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etviz_lsp import atomic_file
from etviz_lsp.errors import EtvizError

VERSION = 1

# What a listed file is.
GRAPH, CORRESPONDENCE, KEPT_PROGRAM, MEMORY_SVG, OVERLAY = (
    "graph", "correspondence", "kept-program", "memory-svg", "overlay",
)
_ROLES = (GRAPH, CORRESPONDENCE, KEPT_PROGRAM, MEMORY_SVG, OVERLAY)  # the manifest's order

# Model Explorer colours the graph by the node data it loaded last: these go last, in this
# order (a profile's average latency wins over the numeric overlay, which wins over the
# bytes alive of a memory plan, when they exist together).
LAST = ("memory-live", "numeric-sqnr", "latency-avg")

SOURCE_ATTR = "source"  # the node attr with the user's ``file:line`` (graph/core/builder.py)


# -- names --------------------------------------------------------------------------------


def _stem(graph_json: Path) -> str:
    return graph_json.name.removesuffix(".json")


def _beside(graph_json: Path, suffix: str) -> Path:
    return graph_json.with_name(_stem(graph_json) + suffix)


# The two a run names by its output's ``Path.stem`` (so ``-o m.txt`` -> ``m.partial.json``).
def partial_path(output: Path) -> Path:
    """Where a run's stages so far go: beside its final graph, never the same file."""
    return output.with_name(f"{output.stem}.partial.json")


def correspondence_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.correspondence.json")


def overlay_path(graph_json: Path, overlay: str, metric: str) -> Path:
    """``m.json`` + ``latency``, ``avg`` -> ``m.latency-avg.json``."""
    return _beside(graph_json, f".{overlay}-{metric}.json")


def manifest_path(graph_json: Path) -> Path:
    return _beside(graph_json, ".manifest.json")


def memory_svg_path(graph_json: Path) -> Path:
    return _beside(graph_json, ".memory.svg")


def kept_folder(graph_json: Path) -> Path:
    """``m.profile/``: what a later profile of that graph runs."""
    return _beside(graph_json, ".profile")


def data_folder(graph_json: Path) -> Path:
    """``m.data/``: a cached graph's copies of its node data."""
    return _beside(graph_json, ".data")


def data_name(overlay: Path) -> str:
    """``m.latency-avg.json`` -> ``latency-avg.json``: the name Model Explorer lists it by."""
    return ".".join(overlay.name.split(".")[-2:])


def new_run_id() -> str:
    """A run's id in the manifest: when it started, and a few random bytes."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


# -- what the manifest holds --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphInfo:
    """A graph of the collection (the worker's answer, the manifest): id and counts."""

    id: str
    node_count: int
    op_nodes: int = 0  # operator calls among the nodes
    layers: int = 0  # module layers (collapsible groups)


@dataclass(frozen=True, slots=True)
class FileEntry:
    role: str
    path: Path
    run: str  # the run that wrote it
    kind: str = ""  # a node-data file's ``<overlay>-<metric>``


@dataclass(frozen=True, slots=True)
class NodeData:
    """What a page loads with its graph: the node-data files in order, and the label of the
    collection they apply to (Model Explorer's ``nodeDataTargets``)."""

    label: str = ""
    files: tuple[Path, ...] = ()


@dataclass(slots=True)
class Navigation:
    """What the language server's line <-> node map reads of a collection, and no more:
    every node id of each graph in graph order (a node with no source still exists) and,
    for a node with a ``source`` attr, that text (unparsed) and its namespace. Both are kept
    once in a table (a layer's nodes share them): a row is ``[id]`` or ``[id, source,
    namespace]`` by index."""

    sources: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    graphs: dict[str, list[list[Any]]] = field(default_factory=dict)
    _index: dict[tuple[int, str], int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, graphs: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]) -> Navigation:
        navigation = cls()
        for graph_id, nodes in graphs:
            navigation.add(graph_id, nodes)
        return navigation

    def add(self, graph_id: str, nodes: Iterable[Mapping[str, Any]]) -> None:
        rows = self.graphs.setdefault(graph_id, [])
        for node in nodes:
            node_id = str(node.get("id", ""))
            source = _source_attr(node.get("attrs"))
            if source is None:
                rows.append([node_id])
                continue
            namespace = str(node.get("namespace") or "")
            rows.append([node_id, self._at(0, source), self._at(1, namespace)])

    def nodes(self, graph_id: str) -> Iterable[tuple[str, str | None, str]]:
        """(node id, recorded source or None, namespace) of one graph, in graph order."""
        for row in self.graphs.get(graph_id, ()):
            if len(row) == 1:
                yield str(row[0]), None, ""
            else:
                yield str(row[0]), self.sources[row[1]], self.namespaces[row[2]]

    def to_json(self) -> dict[str, Any]:
        return {"sources": self.sources, "namespaces": self.namespaces, "graphs": self.graphs}

    @classmethod
    def from_json(cls, data: Any) -> Navigation:
        sources, namespaces = data.get("sources") or [], data.get("namespaces") or []
        graphs = data.get("graphs") or {}
        for rows in graphs.values():
            for row in rows:
                if len(row) != 1 and not (
                    len(row) == 3 and 0 <= row[1] < len(sources) and 0 <= row[2] < len(namespaces)
                ):
                    raise ValueError(f"bad navigation row {row!r}")
        return cls([str(s) for s in sources], [str(n) for n in namespaces], dict(graphs))

    def _at(self, table: int, text: str) -> int:
        key = (table, text)
        if key not in self._index:
            values = self.sources if table == 0 else self.namespaces
            self._index[key] = len(values)
            values.append(text)
        return self._index[key]


def _source_attr(attrs: Any) -> str | None:
    for attr in attrs or ():
        if isinstance(attr, Mapping) and attr.get("key") == SOURCE_ATTR:
            value = attr.get("value")
            return value if isinstance(value, str) and value else None
    return None


@dataclass(frozen=True, slots=True)
class Manifest:
    """The files of one graph JSON, as its manifest lists them."""

    graph_json: Path
    label: str
    run: str  # the run that wrote the graph JSON last
    graphs: tuple[GraphInfo, ...] = ()
    files: tuple[FileEntry, ...] = ()  # the graph JSON first, node data in loading order
    navigation: Navigation = field(default_factory=Navigation)

    @property
    def overlays(self) -> list[Path]:
        """The node-data files, in the order a page loads them (the colouring one last)."""
        return [f.path for f in self.files if f.role == OVERLAY]

    @property
    def node_data(self) -> NodeData:
        return NodeData(self.label, tuple(self.overlays))

    def file(self, role: str, kind: str = "") -> Path | None:
        """The listed file of that role (and node-data kind); None when not listed."""
        return next((f.path for f in self.files if f.role == role and f.kind == kind), None)

    def to_json(self) -> dict[str, Any]:
        folder = self.graph_json.parent
        return {
            "version": VERSION,
            "graph": self.graph_json.name,
            "label": self.label,
            "run": self.run,
            "graphs": [
                {"id": g.id, "node_count": g.node_count, "op_nodes": g.op_nodes,
                 "layers": g.layers} for g in self.graphs
            ],
            "files": [_file_json(f, folder) for f in self.files],
            "navigation": self.navigation.to_json(),
        }

    @classmethod
    def from_json(cls, graph_json: Path, data: Any, *, navigation: bool = True) -> Manifest:
        """Raises :class:`EtvizError` naming the manifest when ``data`` is not one."""
        where = str(manifest_path(graph_json))
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise EtvizError(where, f"not a version {VERSION} graph manifest")
        try:
            graphs = tuple(
                GraphInfo(str(g["id"]), int(g["node_count"]), int(g["op_nodes"]),
                          int(g["layers"])) for g in data["graphs"]
            )
            files = tuple(_file_entry(f, graph_json) for f in data["files"])
            mapped = Navigation.from_json(data["navigation"]) if navigation else Navigation()
            return cls(graph_json, str(data["label"]), str(data["run"]), graphs, files, mapped)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EtvizError(where, f"damaged graph manifest: {exc!r}") from None


def _file_json(entry: FileEntry, folder: Path) -> dict[str, str]:
    # beside the graph: its name; elsewhere (a --memory-svg path): the whole path
    path = entry.path.name if entry.path.parent == folder else str(entry.path)
    out = {"role": entry.role, "path": path, "run": entry.run}
    return out | ({"kind": entry.kind} if entry.kind else {})


def _file_entry(data: Any, graph_json: Path) -> FileEntry:
    role, name = str(data["role"]), str(data["path"])
    if role not in _ROLES:
        raise ValueError(f"unknown role {role!r}")
    # Only a timeline may lie elsewhere: node data a page loads never comes from outside.
    if role != MEMORY_SVG and (Path(name).name != name or name in ("", ".", "..")):
        raise ValueError(f"{role} {name!r} is not beside the graph")
    return FileEntry(role, graph_json.parent / name, str(data["run"]), str(data.get("kind", "")))


# -- reading ------------------------------------------------------------------------------


def read(graph_json: Path, *, navigation: bool = True) -> Manifest | None:
    """The manifest beside ``graph_json``; None when there is none (a graph written before
    manifests, or by the Python API); :class:`EtvizError` naming it when it is damaged.
    ``navigation=False`` skips decoding the map (a few MB at 20k nodes)."""
    import msgspec

    path = manifest_path(graph_json)
    try:
        raw = msgspec.json.decode(path.read_bytes(), type=dict[str, msgspec.Raw])
        data = {key: msgspec.json.decode(value) for key, value in raw.items()
                if navigation or key != "navigation"}
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, RecursionError) as exc:
        raise EtvizError(str(path), f"cannot read the graph manifest: {exc}") from None
    if not navigation:
        data["navigation"] = {}
    return Manifest.from_json(graph_json, data, navigation=navigation)


def node_data_of(graph_json: Path) -> NodeData:
    """The node data a page of ``graph_json`` loads: the files its manifest lists; none when
    it has no readable manifest (a run's partial stages, a damaged file: the graph alone)."""
    try:
        manifest = read(graph_json, navigation=False)
    except EtvizError:
        return NodeData()
    return manifest.node_data if manifest is not None else NodeData()


# -- writing ------------------------------------------------------------------------------


def write_side(path: Path, data: Any) -> Path:
    """A side file's JSON (no graph collection), atomically."""
    import msgspec

    atomic_file.write_bytes(path, msgspec.json.encode(data))
    return path


class GraphFiles:
    """The files one run writes for ``graph_json``: each named and recorded here as it is
    written; :meth:`finish` writes the manifest, last."""

    def __init__(self, graph_json: Path, *, run: str | None = None,
                 kept: Manifest | None = None) -> None:
        self.graph_json = graph_json
        self.run = run or new_run_id()
        self._label = kept.label if kept is not None else ""
        self._graphs = kept.graphs if kept is not None else ()
        self._navigation = kept.navigation if kept is not None else Navigation()
        self._files = {(f.role, f.kind): f for f in kept.files} if kept is not None else {}

    @classmethod
    def amend(cls, graph_json: Path) -> GraphFiles:
        """For a rewrite that keeps the node ids (a profile adds its program stage): what
        the manifest lists stays listed, under the runs that made it."""
        return cls(graph_json, kept=read(graph_json))

    @property
    def kept_folder(self) -> Path:
        return kept_folder(self.graph_json)

    def record(self, role: str, path: Path, kind: str = "") -> Path:
        """A file (or, for the kept program, a folder) this run wrote."""
        self._files[(role, kind)] = FileEntry(role, path, self.run, kind)
        return path

    def wrote_graph(
        self, label: str, graphs: Iterable[tuple[GraphInfo, Iterable[Mapping[str, Any]]]]
    ) -> None:
        """The graph JSON is written (by ``graph.core.writer``): its label, graphs, nodes."""
        entries, navigation = [], Navigation()
        for entry, nodes in graphs:
            entries.append(entry)
            navigation.add(entry.id, nodes)
        self._label, self._graphs, self._navigation = label, tuple(entries), navigation
        self.record(GRAPH, self.graph_json)

    def write_overlay(self, overlay: str, metric: str, data: Any) -> Path:
        path = write_side(overlay_path(self.graph_json, overlay, metric), data)
        return self.record(OVERLAY, path, f"{overlay}-{metric}")

    def write_correspondence(self, data: Any) -> Path:
        return self.record(CORRESPONDENCE, write_side(correspondence_path(self.graph_json), data))

    def write_memory_svg(self, text: str, path: Path | None = None) -> Path:
        """The timeline, beside the graph unless ``path`` says where."""
        path = path or memory_svg_path(self.graph_json)
        atomic_file.write_bytes(path, text.encode())
        return self.record(MEMORY_SVG, path)

    def finish(self) -> Manifest:
        """Write the manifest (last, atomically), then remove what an earlier manifest
        listed beside the graph and this one does not; the manifest written."""
        if (GRAPH, "") not in self._files:
            raise EtvizError(str(self.graph_json), "no graph written: no manifest to write")
        manifest = Manifest(self.graph_json, self._label, self.run, self._graphs,
                            tuple(sorted(self._files.values(), key=_order)), self._navigation)
        earlier = self._earlier()
        write_side(manifest_path(self.graph_json), manifest.to_json())
        listed = {f.path for f in manifest.files}
        for entry in earlier:
            if entry.path not in listed:
                _remove(entry, self.graph_json)
        return manifest

    def _earlier(self) -> tuple[FileEntry, ...]:
        try:
            manifest = read(self.graph_json, navigation=False)
        except EtvizError:  # damaged: nothing of it is trusted, so nothing is removed
            return ()
        return manifest.files if manifest is not None else ()


def _order(entry: FileEntry) -> tuple[int, int, str]:
    """The manifest's order: the graph, other files, then node data in loading order."""
    rank = LAST.index(entry.kind) + 1 if entry.kind in LAST else 0
    return _ROLES.index(entry.role), rank, entry.path.name


def _remove(entry: FileEntry, graph_json: Path) -> None:
    """An earlier run's file this run did not make again: only one of this graph's names
    beside it (never a ``--memory-svg`` elsewhere, never the graph or its manifest)."""
    path = entry.path
    ours = path.parent == graph_json.parent and path.name.startswith(f"{_stem(graph_json)}.")
    if not ours or path in (graph_json, manifest_path(graph_json)):
        return
    with contextlib.suppress(OSError):
        if entry.role == KEPT_PROGRAM and path == kept_folder(graph_json):
            shutil.rmtree(path)
        elif not path.is_dir():
            path.unlink()
