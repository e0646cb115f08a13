"""Why ops stayed on the CPU, kept beside an ETRecord for its ``.pte`` (issue 26).

A script run hears each partitioner's reasons (``worker/not_delegated.py``); when the script
saves the ETRecord of that lowering, the run writes them, keyed by the edge ops' debug
handles, to ``<folder>/.etviz/<name>.etrecord.not-delegated.json`` (etviz's own folder, as
``--once`` output goes). Opening the ``.pte`` later with that ETRecord, the reader puts
them on the CPU kernels whose handles name those ops. The file records the ETRecord's size
and modification time: an ETRecord saved again without etviz makes it stale, and then it
is not used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FOLDER = ".etviz"
SUFFIX = ".not-delegated.json"
MAX_BYTES = 64 << 20  # an LLM's few thousand CPU ops take well under a megabyte
VERSION = 1

# debug handle -> [(edge op node name, op name, one line per partitioner)]
ByHandle = dict[int, list[tuple[str, str, list[str]]]]


def path_for(etrecord: Path) -> Path:
    return etrecord.parent / FOLDER / f"{etrecord.name}{SUFFIX}"


def content(etrecord: Path, ops: list[dict[str, Any]]) -> dict[str, Any]:
    """What is written for the ETRecord just saved at ``etrecord``; ``ops``: dicts with
    ``handle``, ``node``, ``op``, ``reasons``."""
    stat = etrecord.stat()
    return {
        "version": VERSION, "etrecord": etrecord.name, "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns, "ops": ops,
    }  # fmt: skip


def read(etrecord: Path) -> ByHandle:
    """The reasons kept for this ETRecord; empty when there are none, the file is damaged
    or over its limit, or the ETRecord changed since they were written."""
    path = path_for(etrecord)
    try:
        if path.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(path.read_bytes())
        stat = etrecord.stat()
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    if data.get("size") != stat.st_size or data.get("mtime_ns") != stat.st_mtime_ns:
        return {}
    return _by_handle(data.get("ops"))


def _by_handle(ops: object) -> ByHandle:
    found: ByHandle = {}
    for entry in ops if isinstance(ops, list) else []:
        if not isinstance(entry, dict):
            continue
        handle, reasons = entry.get("handle"), entry.get("reasons")
        if not isinstance(handle, int) or not isinstance(reasons, list):
            continue
        lines = [str(line) for line in reasons]
        found.setdefault(handle, []).append((str(entry.get("node")), str(entry.get("op")), lines))
    return found
