"""The stages a run made before it failed: kept beside its output, marked partial.

While a script runs, its child rewrites ``<output stem>.partial.json`` (named by
``graph_files.partial_path``) with the stages made so far (``script_run``'s stage sender,
atomically after each one); the output itself is
written only by a run that succeeds, so a good graph there is never replaced by a partial
one. When a run raises, times out or is stopped, the caller (``warm_worker``) marks that
file here: the collection's label and each graph's info (graph attribute ``partial``) say
the run did not finish and why. The caller does it, not the child: a child killed at its
timeout can mark nothing, and its last atomic write is whole.

Torch-free (the language server and the CLI import it); msgspec only when marking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etviz_lsp import atomic_file
from etviz_lsp.errors import EtvizError
from etviz_lsp.worker.script_error import PartialStages, ScriptError

PARTIAL_KEY = "partial"  # the graph-info attribute that says a graph is a partial run's


class Snapshot:
    """The partial file as it was before a run: what the run wrote there is new."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._before = _identity(path) if path is not None else None

    def written(self) -> bool:
        """True when the run (re)wrote the file: an atomic write is a new inode."""
        if self.path is None:
            return False
        now = _identity(self.path)
        return now is not None and now != self._before


def failure_line(error: ScriptError) -> str:
    """``timeout at export.py:12: timed out after 5 s; ...``: kind, where, what."""
    where = Path(error.file).name or error.file
    if error.line:
        where = f"{where}:{error.line}"
    return f"{error.kind} at {where}: {error.headline}"


def mark(path: Path, error: ScriptError) -> PartialStages:
    """Mark the stages in ``path`` as a run's that failed with ``error``; raises EtvizError
    when the file cannot be read or written back.

    Nodes stay raw JSON text: decoding an LLM's 17k nodes into objects only to write them
    back cost 0.8 s; only the label and each graph's info are decoded."""
    # Imported here: the warm worker imports this module (through warm_worker) before it
    # checks that the user's interpreter has what a run needs.
    import msgspec

    try:
        collection: dict[str, Any] = msgspec.json.decode(
            path.read_bytes(), type=dict[str, msgspec.Raw])
        graphs = msgspec.json.decode(collection["graphs"], type=list[dict[str, msgspec.Raw]])
        label = msgspec.json.decode(collection["label"]) if "label" in collection else ""
        failure = failure_line(error)
        collection["label"] = f"{label or 'run'} (partial: {failure})"
        counts = _mark_graphs(graphs, failure)
        collection["graphs"] = graphs
        atomic_file.write_bytes(path, msgspec.json.encode(collection))
    except (OSError, KeyError, TypeError, msgspec.DecodeError) as exc:
        raise EtvizError(str(path), f"cannot mark the partial stages: {exc}") from exc
    return PartialStages(path, tuple(counts), failure)


def _mark_graphs(graphs: list[dict[str, Any]], failure: str) -> list[tuple[str, int]]:
    """Adds ``partial`` to each graph's info (attributes of group ""); their ids and sizes."""
    import msgspec

    groups_of = msgspec.json.Decoder(dict[str, dict[str, str]]).decode
    nodes_of = msgspec.json.Decoder(list[msgspec.Raw]).decode
    counts = []
    for graph in graphs:
        groups = groups_of(graph.get("groupNodeAttributes", b"{}"))
        groups.setdefault("", {})[PARTIAL_KEY] = failure
        graph["groupNodeAttributes"] = msgspec.Raw(msgspec.json.encode(groups))
        graph_id = msgspec.json.decode(graph["id"], type=str)
        counts.append((graph_id, len(nodes_of(graph.get("nodes", b"[]")))))
    return counts


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns
