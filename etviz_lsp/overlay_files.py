"""Where a graph's overlays live: Model Explorer node-data files beside its graph JSON.

One naming rule for every writer (the CLI's ``--etdump``, a script run's numeric overlay, a
profile run in the editor) and the one reader (the URL that opens a graph): ``m.json`` ->
``m.<overlay>-<metric>.json``. A file older than its graph belongs to an earlier run (its
node ids may be gone), so it is not shown: the graph JSON is rewritten on every run, an
overlay made for it afterwards (or with it) is as new or newer.

Torch-free and free of every room: the graph writers, the worker child and the explorer
URLs all import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# Model Explorer colours the graph by the node data it loaded last: these go last, in this
# order (a profile's average latency wins over the numeric overlay, which wins over the
# bytes alive of a memory plan, when they exist together).
LAST = ("memory-live", "numeric-sqnr", "latency-avg")


def overlay_path(graph_json: Path, overlay: str, metric: str) -> Path:
    """``m.json`` + ``latency``, ``avg`` -> ``m.latency-avg.json``, beside it."""
    stem = graph_json.name.removesuffix(".json")
    return graph_json.with_name(f"{stem}.{overlay}-{metric}.json")


def current_overlays(graph_json: Path) -> list[Path]:
    """The overlay files made for this graph JSON (not older than it), in loading order:
    by name, the ones in ``LAST`` at the end."""
    try:
        graph_time = graph_json.stat().st_mtime_ns
    except OSError:
        return []
    stem = graph_json.name.removesuffix(".json")
    found = []
    for path in graph_json.parent.glob(f"{_glob_escape(stem)}.*-*.json"):
        kind = path.name[len(stem) + 1 : -len(".json")]
        if "." in kind or "-" not in kind:  # another graph's file (m.v2.json), not an overlay
            continue
        try:
            if path.stat().st_mtime_ns >= graph_time:
                found.append(path)
        except OSError:  # removed meanwhile
            continue
    return sorted(found, key=lambda p: (_rank(p.name[len(stem) + 1 : -5]), p.name))


def rewrite_keeping_overlays(graph_json: Path, write: Callable[[], object]) -> None:
    """Rewrite a graph JSON whose node ids stay (graphs added to it, e.g. a profile's
    program stage): the overlays current before stay current after."""
    current = current_overlays(graph_json)
    write()
    for path in current:
        try:
            os.utime(path)
        except OSError:  # removed meanwhile: nothing to keep
            continue


def _rank(kind: str) -> int:
    return LAST.index(kind) + 1 if kind in LAST else 0


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
