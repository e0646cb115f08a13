"""Graphs the server may show live in its cache folder: the guard reads nothing else.

``publish`` copies a graph JSON there atomically; ``cache_path_for`` names the cache file
for a source, so a producer (the worker) can write its output there directly and skip the
copy. One source always maps to the same cache file, so re-showing it is a refresh of the
same URL, and the open tab keeps its expanded layers.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from etviz_lsp import atomic_file, graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.explorer import locations

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def cache_path_for(source: Path) -> Path:
    """``<cache>/<name>-<12 hex of the absolute source path>.json``."""
    absolute = os.path.abspath(source)
    digest = hashlib.sha256(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = Path(absolute).name.removesuffix(".json")
    name = _UNSAFE.sub("_", name)[:80] or "graph"
    return locations.cache_dir() / f"{name}-{digest}.json"


def in_cache(path: Path) -> bool:
    cache = os.path.realpath(locations.cache_dir())
    return os.path.realpath(path).startswith(cache + os.sep)


def publish(json_path: Path) -> Path:
    """Copy ``json_path`` into the cache (atomically) and return the cache path.

    A file already in the cache is returned as it is.
    """
    if in_cache(json_path):
        return Path(os.path.realpath(json_path))
    payload = _read(json_path, "graph")
    target = cache_path_for(json_path)
    atomic_file.write_bytes(target, payload)
    return target


def publish_beside(path: Path, graph: Path) -> Path:
    """Copy a file that goes with a published ``graph`` (a node-data overlay) next to it.

    Into the graph's data folder in the cache, by the name Model Explorer lists it by
    (``graph_files.data_folder`` / ``data_name``: ``m.data/latency-avg.json``): one graph's
    overlays never collide with another's, and re-publishing one replaces it (same URL, a
    refresh).
    """
    if in_cache(path):
        return Path(os.path.realpath(path))
    payload = _read(path, "node data")
    folder = graph_files.data_folder(graph)
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / _UNSAFE.sub("_", graph_files.data_name(path))
    atomic_file.write_bytes(target, payload)
    return target


def _read(path: Path, what: str) -> bytes:
    """A file to copy into the cache; unreadable is the one-line error naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EtvizError(str(path), f"cannot read {what}: {exc.strerror}") from exc
